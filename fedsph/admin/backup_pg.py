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
import secrets
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
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
    leaves out stays as the environment has it (PGPASSFILE, PGSSLROOTCERT…), as for asyncpg.
    The database goes in PGDATABASE only: a --dbname containing '=' would be read by libpq as a
    whole connection string."""
    try:
        url = make_url(database_url)
    except (ValueError, ArgumentError):  # h1:5432,h2:5432 is not one port
        url = None
    # ?host=/run/postgresql: a Unix socket
    host = None if url is None else url.host or url.query.get("host")
    if url is None or not isinstance(host, str | None) or "," in (host or ""):
        raise PostgresBackupError("FEDSPH_DATABASE_URL names several hosts: back up and restore "
                                  "with a URL naming the one primary server")
    env = dict(os.environ)
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
    if "unrecognized option" in said:  # pg_restore's --restrict-key came with 17.6, 16.10,
        # 15.14, 14.19, 13.22; pg_dump's --no-comments with 11
        needs = ("13.22, 14.19, 15.14, 16.10, 17.6 or newer" if tool == "pg_restore"
                 else "11 or newer")
        raise PostgresBackupError(
            f"{tool} is too old ({said}): it must be of PostgreSQL {needs}; update the client "
            f"tools (on Debian: apt install --only-upgrade {CLIENT_PACKAGE}*)")
    if "unsupported version" in said:
        raise PostgresBackupError(
            f"{tool} cannot read this dump ({said}): it is damaged, or was made by a newer "
            f"pg_dump; install the client tools of the version the backup was made with")
    raise PostgresBackupError(f"{tool} failed: {said or f'exit code {result.returncode}'}")


# The tables this database holds, in the schema the node's tables go into (its search_path's
# first); and the other sessions on it (a node still running would write on while it is
# replaced; the tools' own and the server's background workers are not sessions). Another
# role's session may show a NULL backend_type to a role without pg_read_all_stats: one with a
# user (usesysid) is a client's, as background workers have none.
TABLES = ("SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
          "AND relkind IN ('r', 'p')")
SESSIONS = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND (backend_type = 'client backend' "
            "OR (backend_type IS NULL AND usesysid IS NOT NULL))")


async def _facts(database_url: str) -> tuple[str, str | None, int, int]:
    """(server version, schema revision, tables in the current schema, other sessions)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar()
            tables = (await conn.execute(text(TABLES))).scalar()
            sessions = (await conn.execute(text(SESSIONS))).scalar()
        return version, (await current_revision(engine)) if tables else None, tables, sessions
    finally:
        await engine.dispose()


async def _schema(database_url: str) -> str:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(
                # quote_ident: quoted as pg_dump quotes it (a keyword such as "user" too)
                "SELECT quote_ident(current_schema())"))).scalar() or "public"
    finally:
        await engine.dispose()


def _database_facts(database_url: str) -> tuple[str, str | None, int, int]:
    connection_env(database_url)  # several hosts: refused before connecting to any
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
    version, revision, tables, _sessions = _database_facts(url)
    if not tables:
        raise PostgresBackupError("the database has no tables: nothing to back up")
    env, _name = connection_env(url)
    # No owners, grants or comments: the restore may be done by another role, on another
    # server, and COMMENT ON EXTENSION needs the extension's owner (often a superuser).
    _run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", "--no-comments",
                     f"--file={target}"], env)
    return {"engine": "postgresql", "server_version": version, "revision": revision}


def check_target(settings: Settings, force: bool) -> int:
    """Refuse, before anything is touched, a database in use or (without `force`) not empty;
    returns how many tables it holds."""
    _version, _revision, tables, sessions = _database_facts(settings.effective_database_url)
    if sessions:
        raise PostgresBackupError(f"stop the node first ({sessions} other connection(s) to the "
                                  "database); nothing was restored")
    if tables and not force:
        raise PostgresBackupError(f"the database already has {tables} table(s): stop the "
                                  "node and add --force to replace them; nothing was restored")
    return tables


def to_script(settings: Settings, source: Path) -> Path:
    """The dump at `source` as an SQL script beside it (in the restore's private scratch
    directory): a truncated or foreign file stops here, before anything is touched."""
    env, _name = connection_env(settings.effective_database_url)
    script = source.with_name(source.name + ".sql")
    # The script is run by psql, whose backslash commands could run programs. A crafted dump
    # could smuggle one in; --restrict-key makes psql refuse them all (pg_restore writes
    # \restrict with this key first), and the key is one no dump can know (letters and digits
    # only: pg_restore refuses token_urlsafe's - and _).
    _run("pg_restore", ["--no-owner", "--no-privileges", "--no-comments",
                        f"--restrict-key={secrets.token_hex(32)}", f"--file={script}",
                        str(source)], env)
    return script


def current_schema(settings: Settings) -> str:
    """The schema the node's tables go into (its search_path's first), as pg_restore's script
    names it: quoted by PostgreSQL's own quote_ident, the rule pg_dump follows."""
    try:
        return asyncio.run(_schema(settings.effective_database_url))
    except (SQLAlchemyError, OSError):
        raise PostgresBackupError("cannot reach the database") from None


def script_revision(script: Path, schema: str = "public") -> str | None:
    """The schema revision in a script made by to_script: the row of the alembic_version in
    `schema` (current_schema: pg_dump takes every schema, and another may hold its own)."""
    start = f"COPY {schema}.alembic_version "
    with script.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.startswith(start):
                row = next(lines, "").rstrip("\n")
                return None if row == "\\." else row
    return None


# --force empties the current schema of what this role owns (all fedsph made: its tables with
# their indexes and sequences, views, types, functions; pg_trgm when this role created it),
# not the schema itself: the role may not own it (PostgreSQL 14 and older, or a database made
# by an administrator), and a schema re-created would lose the grants it had. Extension
# members go with their extension, never one by one; a multirange type goes with its range
# type (dropping it alone is refused). CASCADE also drops what other roles built on these
# (their views of fedsph's tables): the restore replaces the database fedsph owns.
EMPTY_SCHEMA = """
DO $$
DECLARE
    item record;
    kinds CONSTANT jsonb := '{"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW",
                              "S": "SEQUENCE", "c": "TYPE"}';
BEGIN
    FOR item IN SELECT c.relname, c.relkind FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c') AND pg_has_role(c.relowner, 'USAGE')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                            AND d.objid = c.oid AND d.deptype = 'e')
            ORDER BY c.relkind DESC LOOP  -- views, tables, ..., sequences: IF EXISTS skips
            -- what an earlier CASCADE took (a table's own sequences)
        EXECUTE format('DROP %s IF EXISTS %I.%I CASCADE', kinds ->> item.relkind::text,
                       current_schema(), item.relname);
    END LOOP;
    FOR item IN SELECT t.oid FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace
            AND t.typtype IN ('e', 'd', 'r') AND pg_has_role(t.typowner, 'USAGE')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                            AND d.objid = t.oid AND d.deptype = 'e') LOOP
        -- (the loop's rows are read once: a domain over an enum went with the enum)
        IF EXISTS (SELECT 1 FROM pg_type WHERE oid = item.oid) THEN
            EXECUTE format('DROP TYPE %s CASCADE', item.oid::regtype);
        END IF;
    END LOOP;
    FOR item IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
            AND pg_has_role(p.proowner, 'USAGE')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                            AND d.objid = p.oid AND d.deptype = 'e') LOOP
        IF EXISTS (SELECT 1 FROM pg_proc WHERE oid = item.oid) THEN
            EXECUTE format('DROP ROUTINE %s CASCADE', item.oid::regprocedure);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'
               AND pg_has_role(extowner, 'USAGE')) THEN
        DROP EXTENSION pg_trgm CASCADE;
    END IF;
END $$"""


def load(settings: Settings, script: Path, force: bool) -> None:
    """Run `script` (to_script) in the configured database, which check_target accepted; with
    `force`, what it holds is dropped first, in the restore's own transaction."""
    env, _name = connection_env(settings.effective_database_url)
    check_target(settings, force)  # again: extracting a large archive takes a while
    # Emptied and filled in ONE transaction: if anything fails, the database is as it was. A
    # node that started meanwhile holds locks: waiting is bounded, then it all rolls back.
    empty_first = ["--command=SET lock_timeout = '10s'",
                   f"--command={EMPTY_SCHEMA}"] if force else []
    _run("psql", ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction",
                  *empty_first, f"--file={script}"], env)


def is_postgresql(settings: Settings) -> bool:
    return bool(re.match(r"postgres(ql)?(\+\w+)?://", settings.effective_database_url))
