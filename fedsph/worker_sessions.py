"""The database sessions of the worker's concurrent items (fedsph/worker.py), so that dozens of
items at once neither queue in SQLite's busy handler nor churn PostgreSQL connections."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.config import Settings
from fedsph.db import is_sqlite

# Below the pool that fedsph/db.py keeps (10, room left for `fedsph serve`'s web side): more
# sessions at once would open and close a PostgreSQL connection each time.
PG_SESSIONS = 8


class FewSessions:
    """Sessions of `sessions`, at most `limit` open at once. On SQLite one writer (limit 1): each
    takes the only write lock (BEGIN IMMEDIATE), and dozens of items waiting for it in SQLite's
    busy handler would sleep in steps of up to 100 ms, and could run out its timeout ("database
    is locked"); an asyncio lock hands it on at once. No session is open across a fetch, and
    none is opened inside another (it could wait for itself)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], limit: int):
        self.sessions, self.limit = sessions, asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def __call__(self):
        async with self.limit, self.sessions() as db:
            yield db


def worker_sessions(settings: Settings, writers: async_sessionmaker[AsyncSession]):
    """(readers, writers) for the worker. Readers only read: on SQLite they need no write lock
    (in WAL mode a plain transaction reads beside the writer), so they skip the writers' queue
    (PG_SESSIONS readers at most, too); on PostgreSQL both share the PG_SESSIONS places."""
    if not is_sqlite(settings.effective_database_url):
        shared = FewSessions(writers, PG_SESSIONS)
        return shared, shared
    bind = getattr(writers, "kw", {}).get("bind")  # a test may pass another session factory
    writers_one_at_a_time = FewSessions(writers, 1)
    if bind is None:
        return writers_one_at_a_time, writers_one_at_a_time
    readers = async_sessionmaker(bind.execution_options(sqlite_immediate=False),
                                 expire_on_commit=False)
    return FewSessions(readers, PG_SESSIONS), writers_one_at_a_time
