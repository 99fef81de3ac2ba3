"""`fedsph backup` and `fedsph restore` on a PostgreSQL node: the database as a pg_dump file in
the same archive as SQLite's, with the photos; put back into an emptied database, and a real node
serves what was backed up. Refusals (the other engine's archive, a damaged one, no pg_dump)
change nothing."""

from __future__ import annotations

import json
import tarfile
import urllib.request

import orjson
import pytest

from fedsph.admin import backup_pg
from fedsph.db import head_revision
from tests.processes import NodeProcess
from tests.support import testdb
from tests.support.backups import write_archive

pytestmark = pytest.mark.postgres

PHOTO = "Ab3dEf6hIj9kLm0n-320.webp"


def _node_with_data(data_dir) -> NodeProcess:
    node = NodeProcess(data_dir)
    node.cli("migrate")
    node.cli("project", "create", "coop", "--name", "Cooperativa Ñandé")
    node.cli("post", "coop", "--text", "Techamos hoy")
    (data_dir / "media").mkdir(parents=True, exist_ok=True)
    (data_dir / "media" / PHOTO).write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 photo")
    return node


def _posts(node: NodeProcess) -> int:
    return testdb.sql(node.data_dir, "SELECT count(*) FROM objects")[0][0]


def _wipe(node: NodeProcess) -> None:
    testdb.sql(node.data_dir, "DROP SCHEMA public CASCADE")
    testdb.sql(node.data_dir, "CREATE SCHEMA public")
    (node.data_dir / "media" / PHOTO).unlink()


def test_a_postgresql_backup_comes_back_into_an_emptied_database_and_is_served(tmp_path):
    # The commands as README's "Backups" and "Upgrading" sections give them.
    node = _node_with_data(tmp_path / "node")
    archive = tmp_path / "fedsph-before-upgrade.tar.gz"
    out = node.cli("backup", str(archive)).stdout
    assert "1 media file" in out and archive.stat().st_mode & 0o077 == 0
    with tarfile.open(archive) as opened:
        assert {"fedsph-backup.json", "fedsph.pgdump", f"media/{PHOTO}"} <= set(opened.getnames())
        manifest = json.loads(opened.extractfile("fedsph-backup.json").read())
    assert manifest["engine"] == "postgresql" and manifest["revision"] == head_revision()
    assert manifest["server_version"].startswith("15")

    _wipe(node)
    assert node.cli("restore", str(archive)).returncode == 0
    assert _posts(node) == 1
    refused = node.cli("restore", str(archive), check=False)  # no second restore over the data
    assert refused.returncode == 1 and "--force" in refused.stderr and _posts(node) == 1
    node.cli("post", "coop", "--text", "Después de la copia")
    assert node.cli("restore", str(archive), "--force").returncode == 0
    assert _posts(node) == 1  # exactly the backup's content again

    node.start()
    try:
        status, body = node.get("/actors/coop")
        assert status == 200 and orjson.loads(body)["name"] == "Cooperativa Ñandé"
        status, body = node.get("/actors/coop/outbox?page=1")
        items = orjson.loads(body)["orderedItems"]
        assert status == 200 and "Techamos hoy" in items[0]["object"]["content"]
        with urllib.request.urlopen(f"{node.base}/media/{PHOTO}", timeout=10) as response:
            assert response.read().startswith(b"RIFF")
    finally:
        node.stop()
    node.cli("post", "coop", "--text", "Y sigue publicando")  # ids continue past the restored ones
    assert _posts(node) == 2


def test_refused_archives_change_nothing(tmp_path):
    node = _node_with_data(tmp_path / "node")
    sqlite_archive, damaged, truncated = (tmp_path / name for name in ("s.tar.gz", "d.tar.gz",
                                                                        "t.tar.gz"))
    write_archive(sqlite_archive, {"fedsph.sqlite3": b"SQLite format 3\x00"})
    write_archive(damaged, {"fedsph-backup.json": b'{"engine": "postgresql"}',
                            "fedsph.pgdump": b"not a dump at all"})
    good = tmp_path / "good.tar.gz"
    node.cli("backup", str(good))
    truncated.write_bytes(good.read_bytes()[:2000])
    newer = tmp_path / "n.tar.gz"  # as pg_dump of a far newer version writes its header
    write_archive(newer, {"fedsph.pgdump": b"PGDMP\x20\x6e\x00\x04\x08\x01\x01"})
    evil = tmp_path / "evil.tar.gz"
    write_archive(evil, {"fedsph.pgdump": b"x", "../outside.txt": b"x"})

    for archive, said in ((sqlite_archive, "fedsph db copy"), (damaged, "pg_restore failed"),
                          (truncated, "not a readable fedsph backup"), (evil, "does not belong"),
                          (newer, "cannot read this dump")):
        result = node.cli("restore", str(archive), "--force", check=False)
        assert result.returncode == 1 and said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert _posts(node) == 1 and node.cli("project", "list").stdout.startswith("coop\t")
    assert not (tmp_path / "outside.txt").exists()

    # A PostgreSQL archive is not put into a SQLite node either.
    sqlite_node = NodeProcess(tmp_path / "lite", FEDSPH_DATABASE_URL=(
        f"sqlite+aiosqlite:///{tmp_path / 'lite' / 'fedsph.sqlite3'}"))
    result = sqlite_node.cli("restore", str(good), check=False)
    assert result.returncode == 1 and "PostgreSQL node" in result.stderr
    assert not (tmp_path / "lite" / "fedsph.sqlite3").exists()


def test_without_pg_dump_the_error_names_the_package_and_nothing_is_written(fedsph, tmp_path,
                                                                           monkeypatch):
    assert fedsph("migrate")[0] == 0
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(backup_pg, "PG_BIN_GLOB", str(tmp_path / "nothing" / "*" / "bin"))
    archive = tmp_path / "b.tar.gz"
    code, out = fedsph("backup", str(archive))
    assert code == 1 and "apt install postgresql-client" in out
    assert not archive.exists() and not list(tmp_path.glob("b.tar.gz*"))


def test_an_old_pg_dump_is_told_apart(fedsph, tmp_path, monkeypatch):
    # Only one PostgreSQL version is installed here: a stand-in answers as an older pg_dump does.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pg_dump").write_text(
        "#!/bin/sh\necho 'pg_dump: error: aborting because of server version mismatch' >&2\n"
        "echo 'pg_dump: detail: server version: 17.2; pg_dump version: 15.10' >&2\nexit 1\n")
    (bin_dir / "pg_dump").chmod(0o755)
    assert fedsph("migrate")[0] == 0
    monkeypatch.setenv("PATH", str(bin_dir))
    code, out = fedsph("backup", str(tmp_path / "b.tar.gz"))
    assert code == 1 and "older than the database server" in out and "17.2" in out
    assert not (tmp_path / "b.tar.gz").exists()


def test_the_password_is_never_on_a_command_line(fedsph, tmp_path, monkeypatch):
    assert fedsph("migrate")[0] == 0
    url = testdb.database_url_for(tmp_path / "data")
    monkeypatch.setenv("FEDSPH_DATABASE_URL", url.replace("postgres@", "postgres:s3cret-pw@"))
    seen = []
    real_run = backup_pg.subprocess.run

    def spy(args, **kwargs):
        seen.append((args, kwargs["env"].get("PGPASSWORD")))
        return real_run(args, **kwargs)

    monkeypatch.setattr(backup_pg.subprocess, "run", spy)
    code, out = fedsph("backup", str(tmp_path / "b.tar.gz"))
    assert code == 0 and "s3cret" not in out, out
    assert seen and all("s3cret" not in " ".join(args) and pw == "s3cret-pw" for args, pw in seen)


def test_a_restore_that_fails_halfway_leaves_the_database_as_it_was(tmp_path):
    node = _node_with_data(tmp_path / "node")
    # A dump that reads fine but fails while its rows go in: a CHECK calling a function whose
    # body names a table without its schema (pg_dump's scripts run with an empty search_path).
    for statement in ("CREATE TABLE extra (n int)",
                      ("CREATE FUNCTION extra_count() RETURNS bigint LANGUAGE sql "
                       "AS 'SELECT count(*) FROM extra'"),
                      "CREATE TABLE guarded (n int CHECK (extra_count() >= 0))",
                      "INSERT INTO guarded VALUES (1)"):
        testdb.sql(node.data_dir, statement)
    archive = tmp_path / "fails-late.tar.gz"
    node.cli("backup", str(archive))
    node.cli("post", "coop", "--text", "Después de la copia")

    result = node.cli("restore", str(archive), "--force", check=False)
    assert result.returncode == 1 and "psql failed" in result.stderr, result.stderr
    assert "extra" in result.stderr  # it failed on the rows, after the tables were dropped
    assert _posts(node) == 2  # what --force dropped came back with the rollback
    assert node.cli("project", "list").stdout.startswith("coop\t")
