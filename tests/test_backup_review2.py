"""`fedsph backup` and `restore` (issue 14, item 8), what a second review found: the photos moved
into place rather than copied (they need no second copy's space), the SQL script counted in
the space check, a manifest from elsewhere, scratch folders of killed backups, the schema the
revision is read from, which tool is too old, a range type under --force, and server children
of an uninstalled checkout. Every refusal checks that nothing changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

from fedsph.admin import backup, backup_pg, serve_group
from tests.support import testdb
from tests.support.backups import archive_members, assert_unchanged, node_and_backup, write_archive


@pytest.mark.sqlite
def test_photos_are_moved_into_place_not_copied(sqlite_fedsph, tmp_path, monkeypatch):
    node, _ = node_and_backup(sqlite_fedsph, tmp_path)
    (node / "media" / "ab").mkdir(parents=True)
    (node / "media" / "ab" / "a-320.webp").write_bytes(b"RIFF")
    archive = tmp_path / "with-photo.tar.gz"
    assert sqlite_fedsph(node, "backup", str(archive))[0] == 0

    def no_copies(*args, **kwargs):
        raise AssertionError("a photo was copied, needing its size twice")
    monkeypatch.setattr(backup.shutil, "copytree", no_copies)
    monkeypatch.setattr(backup.shutil, "copy2", no_copies)
    new = tmp_path / "new"
    code, out = sqlite_fedsph(new, "restore", str(archive))
    assert code == 0, out
    assert (new / "media" / "ab" / "a-320.webp").read_bytes() == b"RIFF"
    assert (new / "media").stat().st_mode & 0o077 == 0


def test_the_space_check_counts_the_sql_script_of_a_postgresql_dump(tmp_path, monkeypatch):
    members = [tarfile.TarInfo(backup.PG_DUMP), tarfile.TarInfo("media/a.webp")]
    members[0].size, members[1].size = 100 * 2**20, 10 * 2**20
    monkeypatch.setattr(backup.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        10**12, 10**12 - 500 * 2**20, 500 * 2**20))
    with pytest.raises(backup.BackupError, match="needs 610 MB unpacked"):
        backup._check_space(members, str(tmp_path))
    members[0].name = backup.DATABASE  # a SQLite copy is the database itself
    backup._check_space(members, str(tmp_path))


@pytest.mark.sqlite
@pytest.mark.parametrize("revision", [["0001"], {"a": 1}, 7])
def test_a_manifest_revision_that_is_no_string_is_refused(sqlite_fedsph, tmp_path, revision):
    node, archive = node_and_backup(sqlite_fedsph, tmp_path)
    members = archive_members(archive)
    manifest = json.loads(members["fedsph-backup.json"])
    odd = tmp_path / "odd.tar.gz"
    write_archive(odd, {**members, "fedsph-backup.json": json.dumps(
        {**manifest, "revision": revision}).encode()})
    code, out = sqlite_fedsph(node, "restore", str(odd), "--force")
    assert code == 1 and "names no readable revision" in out and "Traceback" not in out, out
    assert_unchanged(sqlite_fedsph, node)


@pytest.mark.sqlite
def test_scratch_folders_of_killed_backups_are_removed_after_a_day(sqlite_fedsph, tmp_path):
    node = tmp_path / "node"
    assert sqlite_fedsph(node, "migrate")[0] == 0
    out_dir = tmp_path / "backups"
    old, young = out_dir / ".fedsph-backup-killed01", out_dir / ".fedsph-backup-running"
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "fedsph.sqlite3").write_bytes(b"a copy with private keys")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    assert sqlite_fedsph(node, "backup", str(out_dir / "b.tar.gz"))[0] == 0
    assert sorted(p.name for p in out_dir.iterdir()) == [".fedsph-backup-running", "b.tar.gz"]


def test_the_revision_is_read_from_the_nodes_schema(tmp_path):
    script = tmp_path / "s.sql"
    script.write_text("COPY public.alembic_version (version_num) FROM stdin;\n0001_other\n\\.\n"
                      "COPY fedsph.alembic_version (version_num) FROM stdin;\n0018_user_email\n"
                      "\\.\n")
    assert backup_pg.script_revision(script, "fedsph") == "0018_user_email"
    assert backup_pg.script_revision(script, "public") == "0001_other"
    assert backup_pg.script_revision(script, "nowhere") is None


@pytest.mark.parametrize(("tool", "option", "needs"), [
    ("pg_dump", "--no-comments", "PostgreSQL 11 or newer"),
    ("pg_restore", "--restrict-key", "13.22, 14.19, 15.14, 16.10, 17.6 or newer")])
def test_a_tool_too_old_for_an_option_is_named_with_what_it_needs(tmp_path, monkeypatch, tool,
                                                                  option, needs):
    stand_in = tmp_path / tool
    stand_in.write_text(f"#!/bin/sh\necho \"{tool}: error: unrecognized option '{option}'\" >&2\n"
                        "exit 1\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(backup_pg.PostgresBackupError) as refused:
        backup_pg._run(tool, [option], {"PATH": str(tmp_path)})
    assert f"{tool} is too old" in str(refused.value) and needs in str(refused.value)


@pytest.mark.postgres
def test_force_empties_a_schema_holding_a_range_type(fedsph, tmp_path):
    assert fedsph("migrate")[0] == 0
    assert fedsph("project", "create", "coop", "--name", "Coop")[0] == 0
    archive = tmp_path / "b.tar.gz"
    assert fedsph("backup", str(archive))[0] == 0
    data = tmp_path / "data"
    testdb.sql(data, "CREATE TYPE floatspan AS RANGE (subtype = float8)")  # and its multirange
    testdb.sql(data, "CREATE TYPE mood AS ENUM ('ok')")
    testdb.sql(data, "CREATE DOMAIN good_mood AS mood")  # goes with the enum: skipped after it
    code, out = fedsph("restore", str(archive), "--force")
    assert code == 0, out
    assert testdb.sql(data, "SELECT count(*) FROM pg_type WHERE typname LIKE 'floatspan%' "
                            "OR typname IN ('mood', 'good_mood')") == [(0,)]
    assert "coop" in fedsph("project", "list")[1]


def test_server_children_find_the_parents_fedsph_outside_site_packages(tmp_path, monkeypatch):
    # As from an uninstalled checkout: a child (-P) would not find this fedsph by itself.
    monkeypatch.setattr(serve_group, "_child_finds_ours", lambda env: False)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = serve_group.child_env()
    root = os.path.dirname(os.path.dirname(os.path.abspath(serve_group.fedsph.__file__)))
    assert env["PYTHONPATH"] == os.pathsep.join([root, "/elsewhere"])
    # -P -S: no working directory, no site-packages; only PYTHONPATH can find it.
    found = subprocess.run([sys.executable, "-P", "-S", "-c",
                            "import fedsph; print(fedsph.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == serve_group.fedsph.__file__
