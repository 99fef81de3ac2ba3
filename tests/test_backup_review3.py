"""`fedsph backup` and `restore`, and `serve --processes`, what a third review found: the schema
named as pg_dump quotes it, stale scratch folders removed only when ours (owner and name shape),
the restore's own scratch named and cleaned up likewise, and the children's PYTHONPATH left
alone when they find the parent's fedsph by themselves."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import types

import pytest

from fedsph.admin import backup, backup_pg, serve_group
from tests.support import testdb

TWO_DAYS_AGO = time.time() - 2 * 86400


def _stale(folder, name: str, owner: int | None = None):
    scratch = folder / name
    scratch.mkdir(parents=True)
    (scratch / "fedsph.sqlite3").write_bytes(b"a copy with private keys")
    if owner is not None:
        os.chown(scratch, owner, owner)
    os.utime(scratch, (TWO_DAYS_AGO, TWO_DAYS_AGO))
    return scratch


def test_mkdtemp_names_are_what_scratch_name_matches(tmp_path):
    made = tempfile.mkdtemp(dir=tmp_path, prefix=backup.SCRATCH)
    assert backup.SCRATCH_NAME.fullmatch(os.path.basename(made))


def test_only_our_own_stale_scratch_folders_are_removed(tmp_path):
    ours = _stale(tmp_path, ".fedsph-backup-k1ll_d02")
    odd_names = [_stale(tmp_path, ".fedsph-backup-notes"), _stale(tmp_path, ".fedsph-backup-"
                                                                           "KILLED01"),
                 _stale(tmp_path, ".fedsph-backup-killed01.old")]
    others = [_stale(tmp_path, ".fedsph-backup-other001", owner=65534)] if os.geteuid() == 0 \
        else []
    (tmp_path / "target").mkdir()
    (tmp_path / ".fedsph-backup-link0001").symlink_to(tmp_path / "target")
    backup._remove_stale_scratch(tmp_path)
    assert not ours.exists()
    assert all(p.exists() for p in [*odd_names, *others, tmp_path / "target"])
    assert (tmp_path / ".fedsph-backup-link0001").is_symlink()


@pytest.mark.sqlite
def test_a_restore_cleans_up_stale_scratch_and_names_its_own(sqlite_fedsph, tmp_path,
                                                               monkeypatch):
    node = tmp_path / "node"
    assert sqlite_fedsph(node, "migrate")[0] == 0
    archive = tmp_path / "b.tar.gz"
    assert sqlite_fedsph(node, "backup", str(archive))[0] == 0
    new = tmp_path / "new"
    killed = _stale(new, ".fedsph-backup-killed01")
    made = []
    mkdtemp = tempfile.mkdtemp

    def watching(*args, **kwargs):
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]
    monkeypatch.setattr(tempfile, "mkdtemp", watching)
    code, out = sqlite_fedsph(new, "restore", str(archive))
    assert code == 0, out
    assert not killed.exists()
    assert made and all(os.path.dirname(m) == str(new)
                        and backup.SCRATCH_NAME.fullmatch(os.path.basename(m)) for m in made)
    assert not any(p.name.startswith(backup.SCRATCH) for p in new.iterdir())  # its own: gone


@pytest.mark.postgres
def test_the_schema_is_named_as_pg_dump_quotes_it(tmp_path):
    """A schema named "user" (a keyword: pg_dump quotes it though it is lower case) and the
    revision read from a script naming it so; public stays unquoted."""
    data = tmp_path / "data"
    settings = types.SimpleNamespace(effective_database_url=testdb.database_url_for(data))
    assert backup_pg.current_schema(settings) == "public"
    [(name,)] = testdb.sql(data, "SELECT current_database()")
    testdb.sql(data, 'CREATE SCHEMA "user"')
    testdb.sql(data, f'ALTER DATABASE "{name}" SET search_path = "user"')  # new connections
    try:
        schema = backup_pg.current_schema(settings)
    finally:
        testdb.sql(data, f'ALTER DATABASE "{name}" RESET search_path')
    assert schema == '"user"'
    script = tmp_path / "s.sql"
    script.write_text('COPY "user".alembic_version (version_num) FROM stdin;\n0018_user_email\n'
                      "\\.\n")
    assert backup_pg.script_revision(script, schema) == "0018_user_email"


def test_children_keep_the_parents_pythonpath_when_they_find_fedsph_by_themselves(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    # Here fedsph is installed (editable): a child started with -P finds this very fedsph.
    assert serve_group._child_finds_ours(dict(os.environ))
    assert serve_group.child_env()["PYTHONPATH"] == "/elsewhere"
    monkeypatch.delenv("PYTHONPATH")
    assert "PYTHONPATH" not in serve_group.child_env()


def test_a_child_that_would_not_find_the_parents_fedsph_gets_its_folder_first(tmp_path,
                                                                              monkeypatch):
    """A stand-in interpreter that finds another fedsph (or none): the probe says no, and the
    parent's folder goes first on PYTHONPATH, where a real child (-P -S) then finds it."""
    stand_in = tmp_path / "python"
    stand_in.write_text("#!/bin/sh\necho /elsewhere/fedsph/__init__.py\n")
    stand_in.chmod(0o755)
    monkeypatch.setattr(serve_group.sys, "executable", str(stand_in))
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = serve_group.child_env()
    monkeypatch.undo()
    root = os.path.dirname(os.path.dirname(os.path.abspath(serve_group.fedsph.__file__)))
    assert env["PYTHONPATH"] == os.pathsep.join([root, "/elsewhere"])
    found = subprocess.run([sys.executable, "-P", "-S", "-c",
                            "import fedsph; print(fedsph.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == serve_group.fedsph.__file__
