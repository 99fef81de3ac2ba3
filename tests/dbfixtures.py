"""Fixtures that run a test once on SQLite and once on PostgreSQL (a pytest plugin: fixtures only;
the row helpers are in tests/support/db.py).

`database_url` is a plain (synchronous) fixture on purpose: it asks for the asynchronous
`pg_database_url` through `request.getfixturevalue`, which pytest-asyncio can only run while no
event loop is running, i.e. not from inside another async fixture. The PostgreSQL cluster is only
started when a postgres case actually runs, so `-k sqlite` works without the server binaries.
"""

from __future__ import annotations

import pytest

from tests.support import testdb
from tests.support.nodes import make_settings, start_node

# Each case runs only in its own engine's run of the suite (see the `sqlite`/`postgres` markers).
DATABASES = [pytest.param("sqlite", marks=pytest.mark.sqlite),
             pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True, scope="session")
def _test_databases(request):
    """With FEDSPH_TEST_DATABASE=postgresql: the cluster and the migrated template every node's
    database is cloned from (tests/support/testdb.py). Nothing on SQLite."""
    if testdb.on_postgresql():
        testdb.start(request.getfixturevalue("pg_server"))


@pytest.fixture(autouse=True)
def _drop_test_databases(_test_databases):
    """Drop the databases a test created once it is over (a module's shared node keeps its own)."""
    databases = testdb.current()
    kept = set(databases.by_data_dir) if databases else set()
    yield
    if databases:
        databases.drop_all_but(kept)


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """An empty database: an SQLite file in tmp_path, or a fresh database on the test cluster."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'queue.sqlite3'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
async def db_node(tmp_path, database_url):
    """A migrated node (no background worker) on each database in turn."""
    running = await start_node(make_settings(tmp_path, database_url=database_url))
    yield running
    await running.runner.cleanup()


@pytest.fixture
async def pg_node(tmp_path, pg_database_url):
    """A migrated node on PostgreSQL only, for behaviour SQLite cannot show (row locks)."""
    running = await start_node(make_settings(tmp_path, database_url=pg_database_url))
    yield running
    await running.runner.cleanup()
