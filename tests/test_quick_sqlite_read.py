"""fedsph.db.QuickSQLiteRead: the one-row read the hub's page cache makes on the event loop's
thread (SQLite only). It sees every commit at once, cannot write, and never waits (None at once
when the file is locked, or always when the file is not in WAL mode), so the loop is never held up
and the caller reads the usual way."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import text

from fedsph.db import QuickSQLiteRead

pytestmark = pytest.mark.sqlite

READ = text("SELECT generation FROM state WHERE id = 1")


def _database(path, journal: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute("CREATE TABLE state (id INTEGER PRIMARY KEY, generation INTEGER)")
    conn.execute("INSERT INTO state VALUES (1, 7)")
    return conn


@pytest.fixture
def wal(tmp_path):
    path = tmp_path / "quick.db"
    conn = _database(path, "WAL")
    yield path, conn
    conn.close()


def test_a_commit_by_another_connection_is_seen_at_the_next_read(wal):
    path, writer = wal
    quick = QuickSQLiteRead(f"sqlite+aiosqlite:///{path}", READ)
    try:
        assert quick.value() == 7
        writer.execute("UPDATE state SET generation = 8 WHERE id = 1")
        assert quick.value() == 8
        writer.execute("BEGIN")
        writer.execute("UPDATE state SET generation = 9 WHERE id = 1")
        assert quick.value() == 8  # not committed yet: not seen, and not waited for
        writer.execute("COMMIT")
        assert quick.value() == 9
    finally:
        quick.close()


def test_it_cannot_write(wal):
    path, writer = wal
    quick = QuickSQLiteRead(f"sqlite+aiosqlite:///{path}",
                            text("UPDATE state SET generation = 0 WHERE id = 1"))
    try:
        assert quick.value() is None
        assert writer.execute("SELECT generation FROM state").fetchone() == (7,)
    finally:
        quick.close()


def test_a_locked_file_gives_none_at_once(wal):
    path, writer = wal
    writer.execute("PRAGMA locking_mode=EXCLUSIVE")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE state SET generation = 8 WHERE id = 1")
    quick = QuickSQLiteRead(f"sqlite+aiosqlite:///{path}", READ)
    try:
        started = time.monotonic()
        assert quick.value() is None
        # no busy wait (5 s at least) on the loop's thread; 3 s leaves room for a loaded machine
        assert time.monotonic() - started < 3
    finally:
        writer.execute("COMMIT")
        quick.close()


def test_a_file_not_in_wal_mode_is_never_read_this_way(tmp_path):
    path = tmp_path / "journal.db"
    writer = _database(path, "DELETE")  # rollback journal: a writer would lock readers out
    quick = QuickSQLiteRead(f"sqlite+aiosqlite:///{path}", READ)
    try:
        assert quick.value() is None
        assert quick.value() is None and quick.usable is False
    finally:
        quick.close()
        writer.close()
