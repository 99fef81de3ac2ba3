"""Engine and session factory. The database is reached only through sessions made here."""

from __future__ import annotations

import ast
import collections
import functools
import logging
import sqlite3
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from fedsph.config import Settings, package_data_dir
from fedsph.core.files import private_dir, protect_database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

def migrations_dir() -> Path:
    """Alembic's folder (env.py, versions/): the checkout's or the installed package's."""
    return package_data_dir("migrations")


class NotMigrated(RuntimeError):
    """The database has no schema, or an old one."""


# one_at_a_time's PostgreSQL advisory locks: the first of two int4 keys, any constant ("caps").
CAP_LOCKS = 0x63617073
# SQLite connections kept open: the worker's readers and writer, the web side's, with room.
SQLITE_POOL = 12
# The versions OneHopDBAPI (below) was written and tested against: it subclasses their private
# parts. With others installed, SQLAlchemy's own adapter is used (slower, never wrong).
ONE_HOP_VERSIONS = {"sqlalchemy": "2.1.", "aiosqlite": "0.22."}
# SQLite's own memory (page caches above all) for the whole process, in bytes (_sqlite_pragmas).
SQLITE_HEAP_LIMIT = 16 * 1024 * 1024


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(settings: Settings) -> AsyncEngine:
    """Create the engine; SQLite gets WAL and a busy timeout so the CLI and server can share it."""
    url = settings.effective_database_url
    if is_sqlite(url):
        private_dir(Path(settings.data_dir))
        protect_database(url)  # a database made by an older fedsph may still be 0644
        # Connections kept open as for PostgreSQL: SQLAlchemy's default keeps 5 and closes any
        # more on return, and the worker reads through 8 at once (fedsph/worker_sessions.py):
        # each closed one is a new connection, its own aiosqlite thread and pragmas, per session.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=SQLITE_POOL,
                                     **_sqlite_adapter())
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


# id(URL) -> (the URL, its text): database_name below.
_NAMES: dict[int, tuple[object, str]] = {}


def database_name(bind) -> str:
    """`str(bind.url)`, the key of this process's per-database caches (the inbox's keys and
    blocks), remembered per URL object: rendering a URL costs some µs, and the inbox asks on
    every request. The entry holds its URL, so no other object can take its id meanwhile."""
    url = bind.url
    known = _NAMES.get(id(url))
    if known is None or known[0] is not url:
        known = _NAMES[id(url)] = (url, str(url))
    return known[1]


# -- SQLite statements in one hop to its thread ------------------------------------------------
#
# aiosqlite runs each connection's calls in a thread of its own, and every call is a round trip
# to it and back (a queue, a wakeup of the event loop: some 60 µs of CPU on a small VM).
# SQLAlchemy's adapter makes four per statement (make a cursor, execute, fetch the rows, close
# it); the worker runs some 40 statements per Join (bench/README.md section 4). These classes
# do the four in one call on the connection's thread: the rows, the description, the row count
# and the last row id come back together. The rest (transactions, errors, the pool) is
# SQLAlchemy's adapter unchanged; aiosqlite and SQLAlchemy are pinned (requirements.lock),
# and every test on SQLite runs through this.


@functools.cache
def _sqlite_adapter() -> dict:
    """create_async_engine's `module` argument: OneHopDBAPI where the versions it was made for
    are installed, else nothing (SQLAlchemy's own adapter), said once in the log."""
    installed = {name: metadata.version(name) for name in ONE_HOP_VERSIONS}
    if all(installed[name].startswith(prefix) for name, prefix in ONE_HOP_VERSIONS.items()):
        return {"module": OneHopDBAPI(aiosqlite, sqlite3)}
    logging.getLogger("fedsph.db").warning(
        "SQLite through SQLAlchemy's own aiosqlite adapter (slower): fedsph's faster one is made "
        "for %s, these are %s", ONE_HOP_VERSIONS, installed)
    return {}


def _run_statement(connection: sqlite3.Connection, operation: str, parameters, many: bool):
    """On the connection's thread: the statement run, its rows fetched, the cursor closed."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else ()
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds no driver cursor: each statement is one call to the thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection):
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # (the base class's close() has nothing to close then)
        self._soft_closed_memoized = {}
        self._rows = collections.deque()
        self._description, self._rowcount, self._lastrowid, self._arraysize = None, -1, None, 1

    @property
    def description(self):
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self):
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        pass  # the driver's cursor was closed with its statement

    async def _execute_async(self, operation, parameters):
        return await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation, seq_of_parameters):
        return await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation, parameters, many: bool):
        async with self._adapt_connection._execute_mutex:
            connection = self._connection
            description, self._rowcount, self._lastrowid, rows = await connection._execute(
                _run_statement, connection._conn, operation, parameters, many)
            self._description = description
            self._rows = collections.deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def rollback(self) -> None:
        # The pool rolls back every connection given back to it, also after a commit or after
        # the session's own rollback: with no transaction open SQLite's driver would do nothing
        # (sqlite3_get_autocommit, what `in_transaction` reads), so neither does the call to
        # the thread (five of the eight rollbacks per Join of bench/joins.py). Read without
        # waiting for the thread: nothing is queued there when the pool takes a connection back,
        # as a statement or commit cancelled midway makes SQLAlchemy invalidate the connection
        # (a disconnect) instead of returning it.
        driver = self._connection._connection  # None once closed: the base class says so
        if driver is not None and not driver.in_transaction:
            return
        super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DB-API adapter, its connections making OneHopCursors."""

    def connect(self, *arg, **kw) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def make_sync_sqlite_engine(url: str) -> Engine:
    """A synchronous engine on the same SQLite file, with the same pragmas, whose transactions
    take the write lock up front: for work done whole in one thread (the inbox's group commit,
    fedsph/federation/ingest.py), so a transaction never waits for the event loop between its
    statements."""
    engine = create_engine(make_url(url).set(drivername="sqlite"), connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


class QuickSQLiteRead:
    """One read of one row by its key (`statement`), on the event loop's own thread, SQLite only.

    Through aiosqlite every statement waits for a hop to the connection's thread and back, about
    1 ms against some 30 µs for the read itself; for the one read in front of a cached page (the
    hub directory's generation, fedsph/web/hub_pages.py) that hop was most of the request. The
    connection is read-only and in autocommit: each read sees the last commit of any process. It
    never waits, since it would hold up the whole loop: in WAL mode a reader does not wait for the
    writer, and when the file is busy anyway (a checkpoint) `value` answers None at once and the
    caller reads the usual way. Where WAL is not available (some network filesystems keep the
    rollback journal, whose writers lock readers out) it is never used: always None."""

    def __init__(self, url: str, statement):
        self.statement = statement
        self.engine = create_engine(make_url(url).set(drivername="sqlite"), pool_size=1,
                                    max_overflow=0, connect_args={"timeout": 0})
        event.listen(self.engine, "connect", self._pragmas)
        self.usable = None  # known at the first read: is the file in WAL mode?

    @staticmethod
    def _pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # autocommit: one SELECT, one snapshot
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    def value(self):
        if self.usable is False:
            return None
        try:
            with self.engine.connect() as conn:
                if self.usable is None:
                    mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                    self.usable = str(mode).lower() == "wal"
                    if not self.usable:
                        return None
                return conn.scalar(self.statement)
        except OperationalError:
            return None

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # We issue BEGIN ourselves (below) instead of letting the driver do it lazily.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Each pooled connection keeps its own page cache (2 MB by default), and under a burst of
    # directory pages 20 connections filled theirs: 20-25 MB of a hub's 150 MB budget. The
    # limit is SQLite's, for the whole process: past it, pages are reused instead of added
    # (they are still in the OS's file cache, so a re-read costs a copy, not a disk read).
    cursor.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_LIMIT}")
    cursor.close()


def _sqlite_begin(conn) -> None:
    # A deferred SQLite transaction that reads and then writes fails at once with "database is
    # locked" if another connection wrote in between (the busy timeout does not apply to it).
    # Sessions that will write (worker, CLI, inbox) therefore take the write lock up front.
    if conn.get_execution_options().get("sqlite_immediate"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_sessionmaker(engine: AsyncEngine, writer: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions for reading (web pages) or, with writer=True, for read-then-write work."""
    bind = engine.execution_options(sqlite_immediate=True) if writer else engine
    return async_sessionmaker(bind, expire_on_commit=False)


def alembic_config(database_url: str) -> AlembicConfig:
    # Imported here: Alembic (with Mako) costs some 12 MB resident, and `serve` never migrates.
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration, read from the scripts' `revision`/`down_revision` lines.

    Hand-written instead of Alembic's ScriptDirectory, which would keep Alembic loaded in every
    server process for this one check (see alembic_config). tests/test_scaleout_memory.py checks
    both give the same answer."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        values = _revision_lines(script)
        revisions.add(values["revision"])
        down = values.get("down_revision")
        parents.update(down if isinstance(down, tuple) else (down,) if down else ())
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations/versions has {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this fedsph's migrations know: a database at any other was made by a
    newer fedsph, and neither its code nor `fedsph migrate` can work with it."""
    return frozenset(_revision_lines(script)["revision"]
                     for script in (migrations_dir() / "versions").glob("*.py"))


def _revision_lines(script: Path) -> dict:
    values = {}
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    values[target.id] = ast.literal_eval(node.value)
    return values


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_read_revision)


def _read_revision(sync_conn) -> str | None:
    if not inspect(sync_conn).has_table("alembic_version"):
        return None
    return sync_conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


async def ensure_migrated(engine: AsyncEngine) -> None:
    """Raise NotMigrated with an actionable message unless the schema is at head."""
    current = await current_revision(engine)
    if current != head_revision():
        state = "has no schema" if current is None else f"is at revision {current}"
        raise NotMigrated(f"the database {state}; run `fedsph migrate` first")


def migrate(database_url: str) -> None:
    """Upgrade the database to the newest schema (synchronous; Alembic drives its own loop)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")
    protect_database(database_url)


async def one_at_a_time(db: AsyncSession, key: str) -> None:
    """The rest of this transaction runs alone among transactions that named the same key.

    For a limit that is checked and then filled (a cap per server on waiting requests): the
    concurrent worker runs different senders' activities side by side, and on PostgreSQL two
    transactions could both count below the cap and both insert. There a transaction-level
    advisory lock orders them; on SQLite the database's one write lock already does.

    The lock is held until the transaction (the worker's handler transaction) commits, so the
    rows it guards are visible before the next transaction counts; a rollback releases it
    together with the rows it guarded. Taken in a savepoint, it passes to the outer
    transaction when the savepoint is released; when the savepoint rolls back, PostgreSQL
    releases it with it (measured: pg_locks), so nothing counted is left unguarded.
    """
    if db.get_bind().dialect.name == "postgresql":
        # The two-int4 form: its key space is separate from the single-bigint one, so a key a
        # remote server chose (its domain) can never hash to the inbox claim's lock
        # (federation/queue.py INBOX_CLAIM_LOCK) and stall every worker's claims.
        await db.execute(text("SELECT pg_advisory_xact_lock(:kind, hashtext(:key))"),
                         {"kind": CAP_LOCKS, "key": key})
