"""`fedsph db copy --to postgresql+asyncpg://…`: move a SQLite node's database to PostgreSQL.

The target must be an empty database (made with `createdb`, or only migrated by fedsph). It is
migrated to the newest schema, then every table of fedsph's models is copied in foreign-key order
in batches, inside one transaction: if anything fails (or a row count differs at the end) nothing
is kept but the empty schema, and the copy can be run again. Afterwards each id sequence is set
past the largest id copied, so new rows do not collide.

Skipped: `alembic_version` (the migration writes its own) and every table that is not in the
models' metadata: SQLite-only helpers such as FTS5 full-text indexes and their shadow tables,
which the PostgreSQL migrations build their own way and which fill from the copied rows.

Media files are not in the database: they stay in FEDSPH_DATA_DIR/media, which the node keeps
using. The source is read in one transaction, a consistent snapshot; stop the node first anyway,
or what it writes after the snapshot is not copied.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterable

from sqlalchemy import Table, bindparam, func, inspect, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from fedsph.config import Settings
from fedsph.db import current_revision, head_revision, is_sqlite, make_engine, migrate
from fedsph.errors import UserError
from fedsph.models import Base

BATCH_ROWS = 1000
TARGET_SCHEME = "postgresql+asyncpg"


class CopyRefused(UserError):
    """The copy cannot start or did not finish; the message says why. Nothing was kept."""


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _deferred_columns(tables: Iterable[Table]) -> dict[str, list[str]]:
    """Foreign-key columns pointing at their own table or one copied later (a cycle): they are
    inserted empty and filled once every row exists. Each such column must be nullable."""
    done: set[str] = set()
    deferred: dict[str, list[str]] = {}
    for table in tables:
        late = [fk.parent for fk in table.foreign_keys if fk.column.table.name not in done
                or fk.column.table is table]
        for column in late:
            if not column.nullable:
                raise CopyRefused(f"cannot order {table.name}.{column.name} (a NOT NULL cycle)")
        if late:
            deferred[table.name] = sorted({column.name for column in late})
        done.add(table.name)
    return deferred


# Rows the migrations themselves write (0011's generation counter, 0015's status counter): a
# migrated target has them, so they do not make it "not empty", and the source's rows replace
# them.
SEEDED_BY_MIGRATIONS = {"hub_directory_state", "status_counter"}


async def _table_names(conn: AsyncConnection) -> set[str]:
    return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def _count(conn: AsyncConnection, table: Table) -> int:
    return await conn.scalar(select(func.count()).select_from(table))


async def _refuse_unless_empty(target_url: str) -> None:
    engine = create_async_engine(target_url)
    try:
        async with engine.connect() as conn:
            present = await _table_names(conn)
            unknown = present - set(Base.metadata.tables) - {"alembic_version"}
            if unknown:
                raise CopyRefused(f"the target database is not empty: it has tables fedsph does "
                                  f"not know ({', '.join(sorted(unknown))}); copy into a new "
                                  "database (createdb)")
            for table in Base.metadata.sorted_tables:
                if table.name in SEEDED_BY_MIGRATIONS:
                    continue
                if table.name in present and (rows := await _count(conn, table)):
                    raise CopyRefused(f"the target database is not empty: {table.name} has "
                                      f"{rows} row(s); nothing was copied. Copy into a new, "
                                      "empty database (createdb)")
    except OSError as exc:
        raise CopyRefused(f"cannot reach {_shown(target_url)}: {exc}") from None
    finally:
        await engine.dispose()


async def _copy_table(source: AsyncConnection, target: AsyncConnection, table: Table,
                      deferred: list[str]) -> int:
    copied = 0
    order = list(table.primary_key.columns)
    result = await source.stream(select(table).order_by(*order))
    async for batch in result.partitions(BATCH_ROWS):
        rows = [{**dict(row._mapping), **dict.fromkeys(deferred)} for row in batch]
        try:
            async with target.begin_nested():
                await target.execute(table.insert(), rows)
        except DBAPIError:
            await _name_the_refused_row(target, table, rows)
            raise
        copied += len(rows)
    return copied


async def _name_the_refused_row(target: AsyncConnection, table: Table, rows: list[dict]) -> None:
    """A batch PostgreSQL refused: find its first row PostgreSQL refuses on its own, and say
    which (SQLite keeps what PostgreSQL will not: a NUL in text, an over-long string)."""
    keys = [column.name for column in table.primary_key.columns]
    for row in rows:
        try:
            async with target.begin_nested():
                await target.execute(table.insert(), [row])
        except DBAPIError as exc:
            where = ", ".join(f"{k}={row[k]!r}" for k in keys)
            raise CopyRefused(
                f"PostgreSQL refuses the row of {table.name} with {where}: {exc.orig}. Nothing "
                "was kept. Correct or delete that row in the SQLite database (a value SQLite "
                "accepts but PostgreSQL does not, such as a NUL character in a text), then copy "
                "again") from None


async def _fill_deferred(source: AsyncConnection, target: AsyncConnection, table: Table,
                         columns: list[str]) -> None:
    keys = [column.name for column in table.primary_key.columns]
    wanted = [table.c[name] for name in keys + columns]
    statement = table.update().where(*(table.c[k] == bindparam(f"k_{k}") for k in keys)).values(
        {name: bindparam(f"v_{name}") for name in columns})
    result = await source.stream(select(*wanted).where(
        or_(*(table.c[name].is_not(None) for name in columns))))
    async for batch in result.partitions(BATCH_ROWS):
        await target.execute(statement, [
            {**{f"k_{k}": row._mapping[k] for k in keys},
             **{f"v_{c}": row._mapping[c] for c in columns}} for row in batch])


# Columns whose ids are drawn from another table's sequence: a boost's status id comes from the
# posts' (fedsph/models/status_ids.py), so that sequence must also pass the boosts' ids, and the
# SQLite counter's last number (that of an undone boost, say, which must not be given again).
ALSO_DRAWN = {"objects": (("reactions", "status_id"), ("status_counter", "n"))}


async def _reset_sequences(target: AsyncConnection, tables: Iterable[Table]) -> int:
    reset = 0
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not keys[0].autoincrement or keys[0].type.python_type is not int:
            continue
        sequence = await target.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                       {"t": table.name, "c": keys[0].name})
        if sequence:
            highest = [f'SELECT MAX("{keys[0].name}") AS n FROM "{table.name}"'] + [
                f'SELECT MAX("{column}") AS n FROM "{other}"'
                for other, column in ALSO_DRAWN.get(table.name, ())]
            await target.execute(text(
                f"SELECT setval(:s, (SELECT COALESCE(MAX(n), 0) + 1 "
                f"FROM ({' UNION ALL '.join(highest)}) AS highest), false)"), {"s": sequence})
            reset += 1
    return reset


async def copy_database(settings: Settings, target_url: str) -> list[str]:
    """Copy the node's SQLite database into the empty PostgreSQL database at target_url;
    returns the lines to print. Raises CopyRefused (nothing kept) when it cannot."""
    if not is_sqlite(settings.effective_database_url):
        raise CopyRefused("this node's database is not SQLite (FEDSPH_DATABASE_URL is set): "
                          "`fedsph db copy` moves a SQLite node to PostgreSQL")
    if make_url(target_url).drivername != TARGET_SCHEME:
        raise CopyRefused(f"--to takes a {TARGET_SCHEME}://user:password@host/database URL")
    source_engine = make_engine(settings)
    try:
        if await current_revision(source_engine) != head_revision():
            raise CopyRefused("the source database is not at the newest schema: run "
                              "`fedsph migrate` first")
        await _refuse_unless_empty(target_url)
        await asyncio.to_thread(migrate, target_url)
        return await _copy(source_engine, target_url)
    finally:
        await source_engine.dispose()


async def _copy(source_engine, target_url: str) -> list[str]:
    tables = Base.metadata.sorted_tables
    deferred = _deferred_columns(tables)
    lines = [f"target {_shown(target_url)} migrated to {head_revision()}"]
    target_engine = create_async_engine(target_url)
    try:
        async with source_engine.connect() as source, target_engine.begin() as target:
            await source.begin()  # one read transaction: a consistent snapshot of the source
            present = await _table_names(source)
            skipped = sorted(present - set(Base.metadata.tables))
            for name in SEEDED_BY_MIGRATIONS:
                await target.execute(Base.metadata.tables[name].delete())
            for table in tables:
                try:
                    copied = await _copy_table(source, target, table, deferred.get(table.name, []))
                except DBAPIError as exc:
                    raise CopyRefused(f"copying {table.name} failed, nothing was kept: "
                                      f"{exc.orig}") from None
                lines.append(f"copied {copied} row(s) of {table.name}")
            for name, columns in deferred.items():
                await _fill_deferred(source, target, Base.metadata.tables[name], columns)
            lines.append(f"reset {await _reset_sequences(target, tables)} id sequence(s)")
            for table in tables:
                expected, found = await _count(source, table), await _count(target, table)
                if expected != found:
                    raise CopyRefused(f"{table.name}: {found} row(s) copied of {expected}; "
                                      "nothing was kept")
            lines.append(f"verified the row counts of {len(tables)} tables")
            lines.append("skipped (not fedsph's model tables; the schema makes its own): "
                         + (", ".join(skipped) or "none"))
    finally:
        await target_engine.dispose()
    lines.append("done. Media files stay in FEDSPH_DATA_DIR/media: keep FEDSPH_DATA_DIR, set "
                 "FEDSPH_DATABASE_URL to the target and start the node")
    return lines


def _db_copy(settings: Settings, args) -> int:
    target = args.to or os.environ.get(TARGET_ENV, "")
    if not target:
        raise UserError(f"name the target database with --to URL or in {TARGET_ENV}")
    for line in asyncio.run(copy_database(settings, target)):
        print(line)
    return 0


# Where the target URL may come from instead of --to: a command line is visible to every local
# user (ps, /proc/PID/cmdline) and stays in the shell's history, and the URL has a password.
TARGET_ENV = "FEDSPH_COPY_TO_DATABASE_URL"
COMMANDS: dict = {}
WITHOUT_NODE: dict = {"db copy": _db_copy}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `fedsph db copy` to the `fedsph` parser."""
    db = sub.add_parser("db", help="move the database to another engine").add_subparsers(
        dest="db_command", required=True, metavar="ACTION")
    copy = db.add_parser("copy", help="copy this SQLite node into an empty PostgreSQL database "
                                      "(stop the node first)")
    copy.add_argument("--to", metavar="URL",
                      help="postgresql+asyncpg://user:password@host/database (empty); or set "
                           f"{TARGET_ENV}, which keeps a password out of the process list and "
                           "the shell's history")
