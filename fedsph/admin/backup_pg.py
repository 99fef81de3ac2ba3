"""The PostgreSQL part of `fedsph backup` and `fedsph restore`: the database as a pg_dump
custom-format file, put back with pg_restore (the archive around it: fedsph/admin/backup.py).

pg_dump, pg_restore and psql are PostgreSQL's own tools (Debian's postgresql-client package): found
on PATH, else in /usr/lib/postgresql/*/bin (the newest, which can read older servers). They are
told where the database is through PG* environment variables, so the password from
FEDSPH_DATABASE_URL never appears on a command line (where any user could see it in `ps`) nor in
an error message; without a password in the URL they read ~/.pgpass as usual.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.config import Settings
from fedsph.db import current_revision
from fedsph.errors import UserError

# Where Debian puts each major version's client tools; newest first when several are installed.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
CLIENT_PACKAGE = "postgresql-client"
TIMEOUT = 6 * 3600  # a large node's dump takes long; only a hung tool is stopped


class PostgresBackupError(UserError):
    """pg_dump or pg_restore cannot do it; the message says why and what to do."""


def find_tool(name: str) -> str:
    """The path of pg_dump or pg_restore, or a clear error naming the package to install."""
    found = shutil.which(name)
    if found:
        return found
    candidates = [Path(folder) / name for folder in glob.glob(PG_BIN_GLOB)]
    candidates = [path for path in candidates if os.access(path, os.X_OK)]
    if candidates:
        return str(max(candidates, key=lambda path: _major(path.parent.parent.name)))
    raise PostgresBackupError(f"{name} was not found: install PostgreSQL's client tools "
                              f"(on Debian or Ubuntu: apt install {CLIENT_PACKAGE})")


def _major(version: str) -> int:
    return int(version) if version.isdigit() else 0


def connection_env(database_url: str) -> tuple[dict[str, str], str]:
    """(environment for the tools, the database's name) from an SQLAlchemy URL. What the URL
    leaves out stays as the environment has it (PGPASSFILE, PGSSLROOTCERT…), as for asyncpg."""
    url = make_url(database_url)
    env = dict(os.environ)
    host = url.host or url.query.get("host")  # ?host=/run/postgresql: a Unix socket
    for name, value in (("PGHOST", host), ("PGPORT", url.port), ("PGUSER", url.username),
                        ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if isinstance(value, str | int):
            env[name] = str(value)
    ssl = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(ssl, str):  # asyncpg's ssl=require is libpq's sslmode=require
        env["PGSSLMODE"] = {"true": "require", "false": "disable"}.get(ssl, ssl)
    return env, url.database or ""


def _run(tool: str, args: list[str], env: dict[str, str]) -> str:
    """Run the tool; its error output, turned into a clear message, if it fails."""
    try:
        result = subprocess.run([find_tool(tool), *args], env=env, capture_output=True,
                                text=True, check=False, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresBackupError(f"{tool} could not run ({exc})") from None
    said = result.stderr.strip()
    if result.returncode == 0:
        return said
    password = env.get("PGPASSWORD")
    if password:  # libpq never prints it, but a message must not depend on that
        said = said.replace(password, "***")
    if "version mismatch" in said:
        raise PostgresBackupError(
            f"{tool} is older than the database server ({said}); install the client tools of "
            f"the server's version (on Debian: apt install {CLIENT_PACKAGE}-N, N the server's "
            f"major version)")
    if "unsupported version" in said:
        raise PostgresBackupError(
            f"{tool} cannot read this dump ({said}): it is damaged, or was made by a newer "
            f"pg_dump; install the client tools of the version the backup was made with")
    raise PostgresBackupError(f"{tool} failed: {said or f'exit code {result.returncode}'}")


async def _facts(database_url: str) -> tuple[str, str | None, int]:
    """(server version, schema revision, number of tables in the public schema)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar()
            tables = (await conn.execute(text(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))).scalar()
        return version, (await current_revision(engine)) if tables else None, tables
    finally:
        await engine.dispose()


def _database_facts(database_url: str) -> tuple[str, str | None, int]:
    try:
        return asyncio.run(_facts(database_url))
    except (SQLAlchemyError, OSError) as exc:  # refused, unknown database, wrong password…
        message = str(exc)
        password = make_url(database_url).password
        if password:
            message = message.replace(password, "***")
        raise PostgresBackupError(f"cannot reach the database: {message}") from None


def dump(settings: Settings, target: Path) -> dict:
    """Write the database to `target` (pg_dump's custom format); returns the manifest's facts."""
    url = settings.effective_database_url
    version, revision, tables = _database_facts(url)
    if not tables:
        raise PostgresBackupError("the database has no tables: nothing to back up")
    env, name = connection_env(url)
    # No owners or grants: the restore may be done by another role, on another server.
    _run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges",
                     f"--file={target}", f"--dbname={name}"], env)
    return {"engine": "postgresql", "server_version": version, "revision": revision}


def load(settings: Settings, source: Path, force: bool) -> None:
    """Restore the dump at `source` into the configured database, which must be empty (with
    `force`, whatever it holds is dropped first, in the restore's own transaction)."""
    url = settings.effective_database_url
    env, name = connection_env(url)
    # The whole dump is read into SQL first (beside it, in the restore's private scratch
    # directory): a truncated or foreign file stops here, before anything is touched.
    script = source.with_name(source.name + ".sql")
    _run("pg_restore", ["--no-owner", "--no-privileges", f"--file={script}", str(source)], env)
    _version, _revision, tables = _database_facts(url)
    if tables and not force:
        raise PostgresBackupError(f"the database {name} already has {tables} table(s): stop the "
                                  "node and add --force to replace them")
    # Emptied and filled in ONE transaction: if anything fails, the database is as it was. The
    # whole public schema goes, not only the tables the dump names, so nothing a newer fedsph
    # made is left behind when going back to an older backup.
    empty_first = ["--command=DROP SCHEMA public CASCADE",
                   "--command=CREATE SCHEMA public"] if tables else []
    _run("psql", ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction",
                  *empty_first, f"--file={script}", f"--dbname={name}"], env)


def is_postgresql(settings: Settings) -> bool:
    return bool(re.match(r"postgres(ql)?(\+\w+)?://", settings.effective_database_url))
