"""Which database engine the suite runs on (FEDSPH_TEST_DATABASE), and on PostgreSQL the database
of each node a test creates.

With FEDSPH_TEST_DATABASE=postgresql every data dir a test uses (an in-process node, the `fedsph`
command, a `python -m fedsph` subprocess) gets its own database on the session's throwaway cluster
(tests/pgcluster.py): the same data dir always maps to the same database, so a node that restarts
finds its data, as it finds its SQLite file. Each database is a copy of a template migrated once per
session: `CREATE DATABASE … TEMPLATE` takes some 30 ms where running the migrations takes seconds.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.db import migrate

VARIABLE = "FEDSPH_TEST_DATABASE"
ENGINES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "pg": "postgresql"}


def engine() -> str:
    """'sqlite' (the default) or 'postgresql'."""
    value = os.environ.get(VARIABLE, "").strip().lower() or "sqlite"
    if value not in ENGINES:
        raise RuntimeError(f"{VARIABLE}={value!r}: use sqlite or postgresql")
    return ENGINES[value]


def on_postgresql() -> bool:
    return engine() == "postgresql"


def sqlite_run_only(why: str) -> pytest.MarkDecorator:
    """A mark for tests that do not depend on the database engine: they run once, in the SQLite
    run, and the PostgreSQL run says why it skips them."""
    return pytest.mark.skipif(on_postgresql(), reason=f"{why}: runs in the SQLite run")


def _execute(server_url: str, *statements: str) -> None:
    """Run statements on the cluster's `postgres` database (from sync code or a running loop)."""
    async def run() -> None:
        conn = await asyncpg.connect(server_url + "/postgres")
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    _run_in_thread(run())


def _run_in_thread(coroutine):
    """Run a coroutine to its end in a thread of its own, which works whether or not the caller is
    inside a running event loop (that loop cannot be re-entered)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class Databases:
    """The session's PostgreSQL databases, one per data dir, each cloned from a migrated template."""

    TEMPLATE = "fedsph_template"

    def __init__(self, server_url: str):
        self.server_url = server_url
        self.by_data_dir: dict[Path, str] = {}
        _execute(server_url, f'CREATE DATABASE "{self.TEMPLATE}"')
        migrate(self._url(self.TEMPLATE))

    def _url(self, name: str) -> str:
        return self.server_url.replace("postgresql://", "postgresql+asyncpg://") + "/" + name

    def for_data_dir(self, data_dir, migrated: bool = True) -> str:
        key = Path(data_dir).resolve()
        if key not in self.by_data_dir:
            name = "n_" + uuid.uuid4().hex[:16]
            template = f' TEMPLATE "{self.TEMPLATE}"' if migrated else ""
            _execute(self.server_url, f'CREATE DATABASE "{name}"{template}')
            self.by_data_dir[key] = self._url(name)
        return self.by_data_dir[key]

    def drop_all_but(self, kept: set[Path]) -> None:
        """Drop the databases of data dirs not in `kept` (the test that made them is over)."""
        gone = [key for key in self.by_data_dir if key not in kept]
        names = [self.by_data_dir.pop(key).rsplit("/", 1)[1] for key in gone]
        if names:
            _execute(self.server_url, *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names))


_databases: Databases | None = None


def start(server_url: str) -> Databases:
    global _databases
    _databases = Databases(server_url)
    return _databases


def current() -> Databases | None:
    return _databases


def database_url_for(data_dir) -> str:
    """The FEDSPH_DATABASE_URL of a node whose data dir is data_dir: '' (its SQLite file) on SQLite."""
    if not on_postgresql():
        return ""
    if _databases is None:
        raise RuntimeError("the PostgreSQL test databases are not set up (the fixture _test_databases)")
    return _databases.for_data_dir(data_dir)


def empty_database_url(data_dir) -> str:
    """A database without tables for data_dir, for tests that run migrations step by step."""
    if not on_postgresql():
        return f"sqlite+aiosqlite:///{Path(data_dir) / 'fedsph.sqlite3'}"
    if _databases is None:
        raise RuntimeError("the PostgreSQL test databases are not set up (the fixture _test_databases)")
    return _databases.for_data_dir(data_dir, migrated=False)


def node_env(data_dir) -> dict[str, str]:
    """Environment entries that point a `fedsph` command or process at data_dir's database: on
    PostgreSQL an empty one, as a fresh data dir has no SQLite file until `fedsph migrate`."""
    return {"FEDSPH_DATABASE_URL": empty_database_url(data_dir)} if on_postgresql() else {}


def sql(data_dir, statement: str, **params) -> list[tuple]:
    """Run one SQL statement (named :params) on data_dir's database, whichever the engine, and
    commit; the rows it returns. For tests that look at or set up rows behind the node's back.
    A datetime parameter is bound as a DateTime, so each engine stores it in its own format."""
    url = database_url_for(data_dir) or f"sqlite+aiosqlite:///{Path(data_dir) / 'fedsph.sqlite3'}"
    query = text(statement).bindparams(*(bindparam(name, type_=DateTime()) for name, value
                                         in params.items() if isinstance(value, datetime)))

    async def run() -> list[tuple]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(query, params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return _run_in_thread(run())
