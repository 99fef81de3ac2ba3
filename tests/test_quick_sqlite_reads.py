"""fedsph.db.QuickSQLiteReads: the one-row reads the hub's page cache makes on the event loop's
thread (SQLite only). They see every commit at once, cannot write, and give up (None) instead of
holding up the loop when the file is locked, so the caller reads the usual way."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from fedsph.db import QuickSQLiteReads

pytestmark = pytest.mark.sqlite


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "quick.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE state (id INTEGER PRIMARY KEY, generation INTEGER)")
    conn.execute("INSERT INTO state VALUES (1, 7)")
    yield path, conn
    conn.close()


READ = text("SELECT generation FROM state WHERE id = 1")


def test_a_commit_by_another_connection_is_seen_at_the_next_read(database):
    path, writer = database
    quick = QuickSQLiteReads(f"sqlite+aiosqlite:///{path}")
    try:
        assert quick.scalar(READ) == 7
        writer.execute("UPDATE state SET generation = 8 WHERE id = 1")
        assert quick.scalar(READ) == 8
        writer.execute("BEGIN")
        writer.execute("UPDATE state SET generation = 9 WHERE id = 1")
        assert quick.scalar(READ) == 8  # not committed yet: not seen, and not waited for
        writer.execute("COMMIT")
        assert quick.scalar(READ) == 9
    finally:
        quick.close()


def test_it_cannot_write(database):
    path, writer = database
    quick = QuickSQLiteReads(f"sqlite+aiosqlite:///{path}")
    try:
        assert quick.scalar(text("UPDATE state SET generation = 0 WHERE id = 1")) is None
        assert writer.execute("SELECT generation FROM state").fetchone() == (7,)
    finally:
        quick.close()


def test_a_locked_file_gives_none_quickly(database):
    path, writer = database
    writer.execute("PRAGMA locking_mode=EXCLUSIVE")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE state SET generation = 8 WHERE id = 1")
    quick = QuickSQLiteReads(f"sqlite+aiosqlite:///{path}")
    try:
        assert quick.scalar(READ) is None  # after its short busy timeout, not 30 s
    finally:
        writer.execute("COMMIT")
        quick.close()
