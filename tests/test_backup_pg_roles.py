"""`fedsph restore` on PostgreSQL as a node's role normally is: not a superuser, owning its
database but not the schema `public` (PostgreSQL 14 and older make it so; an administrator may
too), with pg_trgm created by a superuser. The documented rollback (back up, upgrade, restore
--force) leaves nothing of the newer schema; a backup of a newer fedsph, a running node and an
old pg_restore are refused, and every refusal changes nothing."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import uuid

import asyncpg
import pytest

from fedsph.admin import backup_pg
from fedsph.db import head_revision
from tests.processes import NodeProcess
from tests.support import testdb

pytestmark = pytest.mark.postgres

SCHEMA = "SELECT nspowner::regrole::text, nspacl::text FROM pg_namespace WHERE nspname = 'public'"
TRGM = "SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'pg_trgm'"


def _sql(url: str, *statements: str) -> list:
    async def run() -> list:
        conn = await asyncpg.connect(url)
        try:
            return [await conn.fetch(statement) for statement in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def _database_of_its_own(tmp_path, label: str) -> NodeProcess:
    """A node whose role is a plain LOGIN role owning its database; the schema public and
    pg_trgm (with its comment) belong to the superuser, as on PostgreSQL 14 and older."""
    server = testdb.current().server_url  # postgresql://postgres@127.0.0.1:PORT
    role, name = f"r_{uuid.uuid4().hex[:10]}", f"d_{uuid.uuid4().hex[:10]}"
    _sql(server + "/postgres", f'CREATE ROLE "{role}" LOGIN',
         f'CREATE DATABASE "{name}" OWNER "{role}"')
    _sql(f"{server}/{name}", "ALTER SCHEMA public OWNER TO postgres",
         f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"', "CREATE EXTENSION pg_trgm")
    url = server.replace("postgresql://postgres@", f"postgresql+asyncpg://{role}@") + "/" + name
    return NodeProcess(tmp_path / label, FEDSPH_DATABASE_URL=url)


def _url(node: NodeProcess) -> str:
    return node.env["FEDSPH_DATABASE_URL"].replace("+asyncpg", "")


def _superuser_url(node: NodeProcess) -> str:
    return testdb.current().server_url + "/" + _url(node).rsplit("/", 1)[1]


def _posts(node: NodeProcess) -> int:
    return _sql(_url(node), "SELECT count(*) FROM objects")[0][0][0]


def test_a_plain_role_restores_and_goes_back_from_an_upgrade(tmp_path):
    node = _database_of_its_own(tmp_path, "node")
    node.cli("migrate")
    node.cli("project", "create", "coop", "--name", "Cooperativa Ñandé")
    node.cli("post", "coop", "--text", "Techamos hoy")
    schema_before = _sql(_superuser_url(node), SCHEMA)[0]
    archive = tmp_path / "fedsph-before-upgrade.tar.gz"
    node.cli("backup", str(archive))

    # Into an empty database of the same kind (pg_trgm there already, made by the superuser).
    other = _database_of_its_own(tmp_path, "other")
    result = other.cli("restore", str(archive), check=False)
    assert result.returncode == 0, result.stderr
    assert _posts(other) == 1

    # The rollback README gives: a newer fedsph changed the schema (a table, a column, a
    # function, a type, its revision), then the backup goes back with --force.
    node.cli("post", "coop", "--text", "Después de actualizar")
    _sql(_url(node), "CREATE TABLE newer_feature (id serial PRIMARY KEY, note text)",
         "ALTER TABLE objects ADD COLUMN newer_column text",
         "CREATE TYPE newer_kind AS ENUM ('a', 'b')",
         "CREATE FUNCTION newer_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
         "UPDATE alembic_version SET version_num = '0099_newer'")
    result = node.cli("restore", str(archive), "--force", check=False)
    assert result.returncode == 0, result.stderr
    assert _posts(node) == 1
    tables, columns, types, functions, revision = (rows for rows in _sql(
        _url(node), "SELECT 1 FROM pg_tables WHERE tablename = 'newer_feature'",
        "SELECT 1 FROM information_schema.columns WHERE column_name = 'newer_column'",
        "SELECT 1 FROM pg_type WHERE typname = 'newer_kind'",
        "SELECT 1 FROM pg_proc WHERE proname = 'newer_fn'",
        "SELECT version_num FROM alembic_version"))
    assert not tables and not columns and not types and not functions
    assert revision[0][0] == head_revision()
    # The schema is still the superuser's with its grants, and so is pg_trgm.
    assert _sql(_superuser_url(node), SCHEMA)[0] == schema_before
    assert _sql(_url(node), TRGM)[0][0][0] == "postgres"
    node.cli("post", "coop", "--text", "Y sigue")  # ids go on past the restored ones
    assert _posts(node) == 2


def _rewritten(archive, target, **manifest_changes) -> None:
    with tarfile.open(archive) as opened:
        members = {m.name: opened.extractfile(m).read() for m in opened.getmembers() if m.isfile()}
    manifest = {k: v for k, v in {**json.loads(members["fedsph-backup.json"]),
                                  **manifest_changes}.items() if v is not None}
    members["fedsph-backup.json"] = json.dumps(manifest).encode()
    with tarfile.open(target, "w:gz") as opened:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            opened.addfile(info, io.BytesIO(data))


def test_refusals_before_anything_is_touched(tmp_path):
    node = NodeProcess(tmp_path / "node")
    node.cli("migrate")
    node.cli("project", "create", "coop", "--name", "Coop")
    node.cli("post", "coop", "--text", "Antes")
    good = tmp_path / "good.tar.gz"
    node.cli("backup", str(good))
    # A backup of a newer fedsph: named in the manifest, or (without it) in the dump itself.
    newer = tmp_path / "newer.tar.gz"
    _rewritten(good, newer, revision="0099_future")
    testdb.sql(node.data_dir, "UPDATE alembic_version SET version_num = '0099_future'")
    dumped_newer = tmp_path / "dumped-newer.tar.gz"
    node.cli("backup", str(dumped_newer))
    legacy = tmp_path / "legacy.tar.gz"
    _rewritten(dumped_newer, legacy, revision=None, fedsph=None)
    testdb.sql(node.data_dir, f"UPDATE alembic_version SET version_num = '{head_revision()}'")
    # Without --force a non-empty database is refused before a damaged dump is even read.
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as opened:
        info = tarfile.TarInfo("fedsph.pgdump")
        info.size = 4
        opened.addfile(info, io.BytesIO(b"junk"))
    node.cli("post", "coop", "--text", "Después")

    for archive, force, said in (
            (newer, "--force", "made by a newer fedsph (fedsph "),
            (legacy, "--force", "newer fedsph (revision 0099_future)"),
            (damaged, "--help-not", "add --force to replace them")):
        args = ("restore", str(archive), force) if force == "--force" else ("restore", str(archive))
        result = node.cli(*args, check=False)
        assert result.returncode == 1 and said in result.stderr, result.stderr
        assert "nothing was restored" in result.stderr and "Traceback" not in result.stderr
        assert testdb.sql(node.data_dir, "SELECT count(*) FROM objects")[0][0] == 2

    node.start()  # a running node: refused, its database untouched
    try:
        result = node.cli("restore", str(good), "--force", check=False)
    finally:
        node.stop()
    assert result.returncode == 1 and "stop the node first" in result.stderr, result.stderr
    assert testdb.sql(node.data_dir, "SELECT count(*) FROM objects")[0][0] == 2


def test_psql_gets_a_script_that_forbids_its_backslash_commands(fedsph, tmp_path, monkeypatch):
    assert fedsph("migrate")[0] == 0
    archive = tmp_path / "b.tar.gz"
    assert fedsph("backup", str(archive))[0] == 0
    first_lines = []
    real_run = backup_pg.subprocess.run

    def spy(args, **kwargs):
        result = real_run(args, **kwargs)
        if args[0].endswith("pg_restore"):
            key = next(a for a in args if a.startswith("--restrict-key=")).split("=", 1)[1]
            script = next(a for a in args if a.startswith("--file=")).split("=", 1)[1]
            with open(script) as lines:
                first = next(line for line in lines if line.strip() and not line.startswith("--"))
            first_lines.append((first.strip(), key))
        return result

    monkeypatch.setattr(backup_pg.subprocess, "run", spy)
    code, out = fedsph("restore", str(archive), "--force")
    assert code == 0, out
    [(first, key)] = first_lines
    assert first == f"\\restrict {key}" and len(key) == 64


def test_an_old_pg_restore_is_told_to_update(fedsph, tmp_path, monkeypatch):
    assert fedsph("migrate")[0] == 0
    archive = tmp_path / "b.tar.gz"
    assert fedsph("backup", str(archive))[0] == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pg_restore").write_text(
        "#!/bin/sh\necho \"pg_restore: error: unrecognized option '--restrict-key'\" >&2\nexit 1\n")
    (bin_dir / "pg_restore").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    code, out = fedsph("restore", str(archive), "--force")
    assert code == 1 and "update the client tools" in out and "postgresql-client" in out, out
    assert fedsph("project", "list")[0] == 0
