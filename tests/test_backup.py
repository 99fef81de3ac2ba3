"""`fedsph backup FILE` and `fedsph restore FILE`: a node's database and photos in one file,
back on another machine (here: another data directory) with nothing lost."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
import tempfile

import pytest

from fedsph.admin import backup, backup_pg
from fedsph.db import head_revision
from tests.support.backups import archive_members, assert_unchanged, node_and_backup, write_archive
from tests.support.nodes import use_data_dir

# Backups of SQLite nodes (PostgreSQL's: tests/test_backup_pg.py).
pytestmark = pytest.mark.sqlite


def test_a_backup_restores_projects_updates_keys_and_photos(sqlite_fedsph, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    assert sqlite_fedsph(old, "migrate")[0] == 0
    assert sqlite_fedsph(old, "project", "create", "coop", "--name", "Cooperativa Ñandé")[0] == 0
    code, out = sqlite_fedsph(old, "post", "coop", "--text", "Techamos hoy")
    assert code == 0
    photo = old / "media" / "ab" / "abcdef-320.webp"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"RIFF....WEBP")

    archive = tmp_path / "fedsph-backup.tar.gz"
    code, out = sqlite_fedsph(old, "backup", str(archive))
    assert code == 0 and "1 media file" in out, out
    code, out = sqlite_fedsph(old, "backup", str(archive))
    assert code == 1 and "exists already" in out  # never overwritten
    with tarfile.open(archive) as opened:
        manifest = json.loads(opened.extractfile("fedsph-backup.json").read())
    assert manifest["engine"] == "sqlite" and manifest["revision"] == head_revision()

    code, out = sqlite_fedsph(new, "restore", str(archive))
    assert code == 0 and "warning" not in out, out
    assert (new / "media" / "ab" / "abcdef-320.webp").read_bytes() == b"RIFF....WEBP"
    code, out = sqlite_fedsph(new, "project", "list")
    assert code == 0 and "coop" in out and "Cooperativa Ñandé" in out
    # The restored node can still sign as the project: its key came with the database.
    code, out = sqlite_fedsph(new, "post", "coop", "--text", "Otra novedad")
    assert code == 0, out


def test_restore_refuses_to_replace_a_database_without_force(sqlite_fedsph, tmp_path):
    node = tmp_path / "node"
    sqlite_fedsph(node, "migrate")
    sqlite_fedsph(node, "project", "create", "coop", "--name", "Coop")
    archive = tmp_path / "b.tar.gz"
    sqlite_fedsph(node, "backup", str(archive))
    code, out = sqlite_fedsph(node, "restore", str(archive))
    assert code == 1 and "--force" in out and out.count("\n") == 1
    code, out = sqlite_fedsph(node, "restore", str(archive), "--force")
    assert code == 0, out


def _archive_with(path, name: str) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for member in ("fedsph.sqlite3", name):
            info = tarfile.TarInfo(member)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"xx"))


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/evil", "config.toml"])
def test_restore_refuses_an_archive_that_writes_elsewhere(sqlite_fedsph, tmp_path, name):
    archive = tmp_path / "evil.tar.gz"
    _archive_with(archive, name)
    code, out = sqlite_fedsph(tmp_path / "node", "restore", str(archive))
    assert code == 1 and "does not belong" in out
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "node" / "fedsph.sqlite3").exists()


def test_backup_and_restore_explain_what_they_cannot_do(sqlite_fedsph, tmp_path, monkeypatch):
    code, out = sqlite_fedsph(tmp_path / "empty", "backup", str(tmp_path / "b.tar.gz"))
    assert code == 1 and "nothing to back up" in out
    (tmp_path / "not-a-backup.tar.gz").write_text("hello")
    code, out = sqlite_fedsph(tmp_path / "empty", "restore", str(tmp_path / "not-a-backup.tar.gz"))
    assert code == 1 and "not a readable fedsph backup" in out
    code, out = sqlite_fedsph(tmp_path / "empty", "restore", str(tmp_path / "missing.tar.gz"))
    assert code == 1 and "no file" in out
    monkeypatch.setenv("FEDSPH_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db")
    code, out = sqlite_fedsph(tmp_path / "empty", "backup", str(tmp_path / "b.tar.gz"))
    assert code == 1 and "cannot reach the database" in out
    assert not list(tmp_path.glob("b.tar.gz*"))


def test_a_restore_from_another_address_warns(sqlite_fedsph, tmp_path, monkeypatch):
    sqlite_fedsph(tmp_path / "a", "migrate")
    archive = tmp_path / "b.tar.gz"
    sqlite_fedsph(tmp_path / "a", "backup", str(archive))
    monkeypatch.setenv("FEDSPH_BASE_URL", "https://coop.example")
    code, out = sqlite_fedsph(tmp_path / "b", "restore", str(archive))
    assert code == 0 and "warning" in out and "FEDSPH_BASE_URL" in out


def test_restore_puts_the_database_where_the_node_is_configured_to_find_it(
        sqlite_fedsph, tmp_path, monkeypatch):
    sqlite_fedsph(tmp_path / "a", "migrate")
    sqlite_fedsph(tmp_path / "a", "project", "create", "coop", "--name", "Coop")
    archive = tmp_path / "b.tar.gz"
    sqlite_fedsph(tmp_path / "a", "backup", str(archive))
    elsewhere = tmp_path / "disk" / "node.sqlite3"
    monkeypatch.setenv("FEDSPH_DATABASE_URL", f"sqlite+aiosqlite:///{elsewhere}")
    code, out = sqlite_fedsph(tmp_path / "b", "restore", str(archive))
    assert code == 0, out
    assert elsewhere.exists() and not (tmp_path / "b" / "fedsph.sqlite3").exists()
    assert "coop" in sqlite_fedsph(tmp_path / "b", "project", "list")[1]


def test_a_postgresql_backup_is_not_put_into_a_sqlite_node(sqlite_fedsph, tmp_path):
    archive = tmp_path / "pg.tar.gz"
    with tarfile.open(archive, "w:gz") as opened:
        info = tarfile.TarInfo("fedsph.pgdump")
        info.size = 5
        opened.addfile(info, io.BytesIO(b"PGDMP"))
    code, out = sqlite_fedsph(tmp_path / "node", "restore", str(archive))
    assert code == 1 and "PostgreSQL node" in out and "FEDSPH_DATABASE_URL" in out
    assert not (tmp_path / "node" / "fedsph.sqlite3").exists()


def test_pg_tools_get_the_connection_from_the_url_through_their_environment(monkeypatch):
    monkeypatch.setenv("PGPASSFILE", "/home/fedsph/.pgpass")
    env, name = backup_pg.connection_env(
        "postgresql+asyncpg://fedsph:pa%40ss@db.internal:5433/fedsph_db?ssl=require")
    assert name == "fedsph_db" and env["PGPASSWORD"] == "pa@ss" and env["PGPORT"] == "5433"
    assert (env["PGHOST"], env["PGUSER"], env["PGSSLMODE"]) == ("db.internal", "fedsph", "require")
    assert env["PGPASSFILE"] == "/home/fedsph/.pgpass"  # kept for URLs without a password
    env, _ = backup_pg.connection_env("postgresql+asyncpg:///fedsph?host=/run/postgresql")
    assert env["PGHOST"] == "/run/postgresql"


def test_a_backup_made_by_a_newer_fedsph_is_refused_and_nothing_changes(sqlite_fedsph, tmp_path):
    node, archive = node_and_backup(sqlite_fedsph, tmp_path)
    members = archive_members(archive)
    manifest = json.loads(members["fedsph-backup.json"])
    newer = tmp_path / "newer.tar.gz"
    write_archive(newer, {**members, "fedsph-backup.json": json.dumps(
        {**manifest, "revision": "0099_future", "fedsph": "9.0"}).encode()})
    code, out = sqlite_fedsph(node, "restore", str(newer), "--force")
    assert code == 1 and "made by a newer fedsph (fedsph 9.0, revision 0099_future)" in out, out
    assert "nothing was restored" in out and "Traceback" not in out
    assert_unchanged(sqlite_fedsph, node)

    # An archive of the first versions, without a manifest: the copy itself says its revision.
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(members["fedsph.sqlite3"])
    db = sqlite3.connect(copy)
    db.execute("UPDATE alembic_version SET version_num = '0099_future'")
    db.commit()
    db.close()  # its write-ahead log folded into the file
    legacy = tmp_path / "legacy.tar.gz"
    write_archive(legacy, {"fedsph.sqlite3": copy.read_bytes()})
    code, out = sqlite_fedsph(node, "restore", str(legacy), "--force")
    assert code == 1 and "newer fedsph (revision 0099_future)" in out, out
    assert_unchanged(sqlite_fedsph, node)
    assert [p.name for p in node.iterdir() if p.name.startswith("tmp")] == []


def test_a_database_member_that_is_not_a_file_is_refused(sqlite_fedsph, tmp_path):
    node, _archive = node_and_backup(sqlite_fedsph, tmp_path)
    odd = tmp_path / "odd.tar.gz"
    with tarfile.open(odd, "w:gz") as opened:
        info = tarfile.TarInfo("fedsph.sqlite3")
        info.type = tarfile.DIRTYPE
        opened.addfile(info)
    code, out = sqlite_fedsph(node, "restore", str(odd), "--force")
    assert code == 1 and "does not belong" in out
    assert_unchanged(sqlite_fedsph, node)


def test_not_enough_space_is_said_before_anything_is_unpacked(sqlite_fedsph, tmp_path, monkeypatch):
    node, archive = node_and_backup(sqlite_fedsph, tmp_path)
    monkeypatch.setattr(backup.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        10**9, 10**9 - 1000, 1000))
    code, out = sqlite_fedsph(node, "restore", str(archive), "--force")
    assert code == 1 and "MB free; nothing was restored" in out, out
    assert_unchanged(sqlite_fedsph, node)


def test_photos_that_cannot_be_copied_are_told_apart_from_a_bad_archive(
        sqlite_fedsph, tmp_path, monkeypatch):
    node, _ = node_and_backup(sqlite_fedsph, tmp_path)
    (node / "media").mkdir(exist_ok=True)
    (node / "media" / "a-320.webp").write_bytes(b"RIFF")
    archive = tmp_path / "with-photo.tar.gz"
    assert sqlite_fedsph(node, "backup", str(archive))[0] == 0

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup, "_move", full_disk)
    code, out = sqlite_fedsph(tmp_path / "new", "restore", str(archive))
    assert code == 1 and "the database was restored; moving the photos failed" in out, out
    assert "restore --force again" in out and "not a readable" not in out
    monkeypatch.undo()  # space freed: the advice works
    use_data_dir(monkeypatch, tmp_path)
    code, out = sqlite_fedsph(tmp_path / "new", "restore", str(archive), "--force")
    assert code == 0 and (tmp_path / "new" / "media" / "a-320.webp").read_bytes() == b"RIFF"


def test_the_backup_is_assembled_beside_the_archive_not_in_tmp(sqlite_fedsph, tmp_path,
                                                                monkeypatch):
    node = tmp_path / "node"
    assert sqlite_fedsph(node, "migrate")[0] == 0
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    out_dir = tmp_path / "backups"
    out_dir.mkdir()
    code, out = sqlite_fedsph(node, "backup", str(out_dir / "b.tar.gz"))
    assert code == 0, out
    assert [p.name for p in out_dir.iterdir()] == ["b.tar.gz"]


def test_several_hosts_in_the_url_are_refused():
    for url in ("postgresql+asyncpg://u@h1:5432,h2:5432/db",
                "postgresql+asyncpg://u@/db?host=h1&host=h2"):
        with pytest.raises(backup_pg.PostgresBackupError, match="several hosts"):
            backup_pg.connection_env(url)
