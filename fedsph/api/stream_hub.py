"""One per serve process: reads the stream_events table while streams are open, and hands each
new row to the streams that may want it (fedsph/api/streaming.py renders and sends it).

The database is the queue (fedsph/projects/stream_events.py writes the rows), so an event made
by any process (another `fedsph serve`, the worker, the CLI) reaches every process's streams.
How a process learns of new rows: on PostgreSQL it LISTENs on one pooled connection and the
table's trigger NOTIFYs at each commit (a poll every NOTIFY_SAFETY_SECONDS covers a lost
connection); on SQLite it polls every SQLITE_POLL_SECONDS. Only while a stream is open: with no
stream the task ends, the connection goes back to the pool, and nothing is read.

PostgreSQL takes ids when rows are inserted, not when they are committed, so a row with a lower
id can become visible after a higher one: the ids skipped over are asked for again for
GAP_SECONDS (a gap that stays empty was a rolled-back insert). SQLite has one writer, so ids
become visible in order there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fedsph.models import StreamEvent

log = logging.getLogger("fedsph.streaming")

CHANNEL = "fedsph_stream_events"  # the trigger of migration 0017 notifies this channel
SQLITE_POLL_SECONDS = 0.25
NOTIFY_SAFETY_SECONDS = 5.0
GAP_SECONDS = 10.0
MAX_GAPS = 1000
READ_BATCH = 500
QUEUE_SIZE = 1000  # events waiting for one stream; a stream that falls this far behind closes
MAX_PER_TOKEN = 8
MAX_PER_ADDRESS = 32


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    ref_id: int
    actor_id: int


@dataclass(eq=False)
class Listener:
    """One open connection (WebSocket or server-sent events) and the rows waiting for it."""

    token_key: str | None
    address: str
    account_id: int | None = None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def offer(self, row: Row) -> None:
        if row.kind == "notification" and row.actor_id != self.account_id:
            return  # someone else's: decided here, without a query
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            # A stream this far behind would show stale events anyway; the app reconnects
            # and reloads its timeline (what Mastodon's apps do after any disconnect).
            self.overflowed = True


class StreamHub:
    def __init__(self, engine: AsyncEngine, readers: async_sessionmaker[AsyncSession]):
        self.engine, self.readers = engine, readers
        self.listeners: set[Listener] = set()
        self.per_token: Counter[str] = Counter()
        self.per_address: Counter[str] = Counter()
        self.task: asyncio.Task | None = None
        self.wake = asyncio.Event()
        self.last_id = 0
        self.gaps: dict[int, float] = {}  # id not yet seen -> monotonic time to stop asking
        self.closing = False
        self.ready = asyncio.Event()

    def admits(self, token_key: str | None, address: str) -> bool:
        """Room for one more connection of this token and address (MAX_PER_TOKEN/ADDRESS)."""
        if token_key is not None and self.per_token[token_key] >= MAX_PER_TOKEN:
            return False
        return self.per_address[address] < MAX_PER_ADDRESS

    async def add(self, listener: Listener) -> None:
        """Count the stream in; once this returns, every event committed after it reaches it
        (the task is listening and knows the newest id)."""
        self.listeners.add(listener)
        if listener.token_key is not None:
            self.per_token[listener.token_key] += 1
        self.per_address[listener.address] += 1
        if self.task is None:
            self.ready = asyncio.Event()
            self.task = asyncio.create_task(self._run(), name="fedsph-stream-hub")
        await self.ready.wait()

    def remove(self, listener: Listener) -> None:
        if listener not in self.listeners:
            return
        self.listeners.discard(listener)
        if listener.token_key is not None:
            self.per_token[listener.token_key] -= 1
            if self.per_token[listener.token_key] <= 0:
                del self.per_token[listener.token_key]
        self.per_address[listener.address] -= 1
        if self.per_address[listener.address] <= 0:
            del self.per_address[listener.address]
        self.wake.set()  # the task notices it has no listener left

    async def close(self) -> None:
        """At shutdown: streams end (their handlers see `closing`), the task stops."""
        self.closing = True
        self._end_streams()
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _end_streams(self) -> None:
        for listener in list(self.listeners):
            listener.overflowed = True  # its handler ends at its next look
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)  # wakes a handler waiting for a row

    async def _run(self) -> None:
        ready = self.ready  # this task's: a task started after it has its own
        try:
            while True:
                try:
                    async with self._notified() as notified:
                        await self._tail(notified, ready)
                    return
                except (OSError, SQLAlchemyError) as exc:  # the database went away for a while
                    log.warning("stream events: %s; trying again", exc)
                    await asyncio.sleep(1)
                except Exception:
                    # A bug, with its traceback: the streams end, so apps reconnect (and start
                    # a new task) rather than wait for events that will not come.
                    log.exception("stream events: reading failed; closing the streams")
                    self._end_streams()
                    return
                if not self.listeners or self.closing:
                    return
        finally:
            ready.set()  # a failed start leaves no stream waiting for it
            if self.task is asyncio.current_task():
                self.task = None

    @contextlib.asynccontextmanager
    async def _notified(self):
        """On PostgreSQL, LISTEN on a connection of the pool for as long as streams are open."""
        if self.engine.dialect.name != "postgresql":
            yield False
            return
        async with self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection

            def ping(*_args) -> None:
                self.wake.set()

            await driver.add_listener(CHANNEL, ping)
            try:
                yield True
            finally:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await driver.remove_listener(CHANNEL, ping)

    async def _tail(self, notified: bool, ready: asyncio.Event) -> None:
        async with self.readers() as db:
            self.last_id = await db.scalar(select(func.max(StreamEvent.id))) or 0
        self.gaps.clear()
        ready.set()
        wait = NOTIFY_SAFETY_SECONDS if notified else SQLITE_POLL_SECONDS
        while self.listeners and not self.closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)
            self.wake.clear()
            if not self.listeners:
                break
            await self._read()
        # Decided with no await since the check above: a stream added from now on starts
        # a new task (add() sees task None).
        self.task = None

    async def _read(self) -> None:
        now = time.monotonic()
        self.gaps = {i: until for i, until in self.gaps.items() if until > now}
        condition = StreamEvent.id > self.last_id
        if self.gaps:
            condition = or_(condition, StreamEvent.id.in_(list(self.gaps)))
        async with self.readers() as db:
            found = (await db.execute(
                select(StreamEvent.id, StreamEvent.kind, StreamEvent.ref_id,
                       StreamEvent.actor_id).where(condition)
                .order_by(StreamEvent.id).limit(READ_BATCH))).all()
        for id_, kind, ref_id, actor_id in found:
            self.gaps.pop(id_, None)
            if id_ > self.last_id + 1 and len(self.gaps) < MAX_GAPS:
                for missing in range(self.last_id + 1, min(id_, self.last_id + 1 + MAX_GAPS)):
                    self.gaps[missing] = now + GAP_SECONDS
            self.last_id = max(self.last_id, id_)
            row = Row(id_, kind, ref_id, actor_id)
            for listener in self.listeners:
                listener.offer(row)
        if len(found) == READ_BATCH:
            self.wake.set()  # more are waiting
