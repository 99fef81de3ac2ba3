"""fedsph's SQLite adapter (fedsph/db.py, OneHopDBAPI) answers as SQLAlchemy's own does, and is
used only with the library versions it was made for."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from fedsph import db as db_module
from fedsph.db import OneHopConnection, make_engine
from tests.support.nodes import make_settings

pytestmark = pytest.mark.sqlite

STATEMENTS = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
    "INSERT INTO t (name) VALUES ('a'), ('b'), ('c')",
    "UPDATE t SET name = name || '!' WHERE id > 1",
    "DELETE FROM t WHERE id = 3",
    "SELECT id, name FROM t ORDER BY id",
    "SELECT id FROM t WHERE id > 99",
    "PRAGMA journal_mode",
)


async def _answers(tmp_path, name: str) -> list:
    engine = make_engine(make_settings(tmp_path / name))
    answers = []
    try:
        async with engine.begin() as conn:
            driver = await conn.get_raw_connection()
            answers.append(isinstance(driver.dbapi_connection, OneHopConnection))
            for statement in STATEMENTS:
                result = await conn.execute(text(statement))
                answers.append((result.rowcount, list(result.keys()) if result.returns_rows else None,
                                result.all() if result.returns_rows else None))
            with pytest.raises(Exception) as refused:
                await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
            answers.append(type(refused.value).__name__)
    finally:
        await engine.dispose()
    return answers


async def test_the_adapter_answers_as_sqlalchemys_own(tmp_path, monkeypatch, caplog):
    db_module._sqlite_adapter.cache_clear()
    fast = await _answers(tmp_path, "fast")
    monkeypatch.setitem(db_module.ONE_HOP_VERSIONS, "sqlalchemy", "0.0.")  # "another version"
    db_module._sqlite_adapter.cache_clear()
    with caplog.at_level(logging.WARNING, logger="fedsph.db"):
        stock = await _answers(tmp_path, "stock")
    db_module._sqlite_adapter.cache_clear()
    assert fast[0] is True and stock[0] is False
    assert fast[1:] == stock[1:]
    assert fast[-1] == "IntegrityError"
    assert "SQLAlchemy's own aiosqlite adapter" in caplog.text
