"""One per serve process: reads the stream_events table while streams are open, and hands each
new row to the streams that may want it (fedsph/api/streaming.py renders and sends it).

The database is the queue (fedsph/projects/stream_events.py writes the rows), so an event made
by any process (another `fedsph serve`, the worker, the CLI) reaches every process's streams.
How a process learns of new rows: it polls the table by primary key (id > the last one read)
every POLL_SECONDS, on both engines, and only while a stream is open: with no stream the task
ends and nothing is read. No LISTEN/NOTIFY: pg_notify serializes every commit of the cluster
that sends it (a global lock at commit), streamed or not.

PostgreSQL takes ids when rows are inserted, not when they are committed, so a row with a lower
id can become visible after a higher one. The rows are inserted just before the commit
(fedsph/projects/stream_events.py), so that window is short; the ids skipped over are asked for
again for GAP_SECONDS (a gap that stays empty was a rolled-back insert). SQLite has one writer,
so ids become visible in order there.

What one process may hold: MAX_STREAMS_TOTAL streams (at most half of them without a token),
MAX_PER_TOKEN per token and MAX_PER_ADDRESS per client address (an IPv6 /64 counts as one); at most RENDER_SLOTS streams
read the database at once to render events (well below the connection pool, so API requests
never wait for a burst of streams).
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

from fedsph.accounts import throttle_key
from fedsph.api.errors import ApiError
from fedsph.models import StreamEvent

log = logging.getLogger("fedsph.streaming")

POLL_SECONDS = 0.25
CHECK_RESET_SECONDS = 5.0  # a table restored or emptied under AUTOINCREMENT's back
GAP_SECONDS = 10.0
START_SECONDS = 5.0  # a stream that cannot start within this answers 503
START_LOOKBACK = 100  # ids below the newest at start that may still commit
MAX_GAPS = 1000
READ_BATCH = 500
QUEUE_SIZE = 1000  # events waiting for one stream; a stream that falls this far behind closes
MAX_PER_TOKEN = 8
MAX_PER_ADDRESS = 32
MAX_STREAMS_TOTAL = 1000
RENDER_SLOTS = 4
ANONYMOUS_CACHE = 256  # rendered payloads kept for streams without an account
RENDER_FAILED = object()  # a shared rendering's answer to its waiters when it raised


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    ref_id: int
    actor_id: int
    visibility: str | None = None
    local: bool | None = None
    shown: bool | None = None
    tags: str | None = None


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
        self.started = False  # the task knows the newest id
        self.ready = asyncio.Event()
        self.render = asyncio.Semaphore(RENDER_SLOTS)
        # (row id, language) -> payload rendered for nobody in particular (public and hashtag
        # streams)
        self.anonymous: dict[tuple[int, str | None], asyncio.Future] = {}
        self.after_reset = False  # the ids went back: the next row read opens no gaps

    def admits(self, token_key: str | None, address: str, account_id: int | None = None) -> bool:
        """Room for one more connection in this process, of this token and of this address."""
        if len(self.listeners) >= MAX_STREAMS_TOTAL:
            return False
        if token_key is not None and self.per_token[token_key] >= MAX_PER_TOKEN:
            return False
        # Streams of nobody's account (no token, or an app's own token, which anyone can get
        # from POST /api/v1/apps) get half the places: addresses and apps are cheap (one /48 is
        # 65536 /64s), so they must not be able to take the places of the members' apps.
        if account_id is None and sum(1 for listener in self.listeners
                                      if listener.account_id is None) >= (MAX_STREAMS_TOTAL + 1) // 2:
            return False
        return self.per_address[throttle_key(address)] < MAX_PER_ADDRESS

    async def add(self, listener: Listener) -> None:
        """Count the stream in; once this returns, every event committed after it reaches it
        (the task knows the newest id). 503 when the database does not answer in time."""
        listener.address = throttle_key(listener.address)
        self.listeners.add(listener)
        if listener.token_key is not None:
            self.per_token[listener.token_key] += 1
        self.per_address[listener.address] += 1
        if self.task is None:
            self.ready = asyncio.Event()
            self.task = asyncio.create_task(self._run(), name="fedsph-stream-hub")
        try:
            await asyncio.wait_for(self.ready.wait(), START_SECONDS)
        except TimeoutError:
            self.remove(listener)
            raise ApiError(503, "Streaming is not available right now") from None
        if not self.started:
            self.remove(listener)
            raise ApiError(503, "Streaming is not available right now")

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
        fresh = True  # the first start reads from the newest id; a retry keeps its place
        try:
            while True:
                try:
                    await self._tail(ready, fresh)
                    return
                except (OSError, SQLAlchemyError, TimeoutError) as exc:
                    # The database went away for a while (or the pool was exhausted).
                    log.warning("stream events: %s; trying again", exc)
                    fresh = not self.started
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
                self.started = False

    async def _newest(self) -> int:
        async with self.readers() as db:
            return await db.scalar(select(func.max(StreamEvent.id))) or 0

    async def _start(self) -> None:
        """Read from the newest id on; the ids below it not there yet (a transaction that took
        its id before a later one and commits after it) are gaps, asked for as any other."""
        async with self.readers() as db:
            newest = await db.scalar(select(func.max(StreamEvent.id))) or 0
            low = max(newest - START_LOOKBACK, 0)
            present = set(await db.scalars(select(StreamEvent.id).where(StreamEvent.id > low)))
        until = time.monotonic() + GAP_SECONDS
        self.last_id = newest
        self.gaps = {i: until for i in range(low + 1, newest) if i not in present}

    async def _tail(self, ready: asyncio.Event, fresh: bool) -> None:
        if fresh:
            await self._start()
        self.started = True
        ready.set()
        checked = time.monotonic()
        while self.listeners and not self.closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
            self.wake.clear()
            if not self.listeners:
                break
            if not await self._read() and time.monotonic() - checked > CHECK_RESET_SECONDS:
                checked = time.monotonic()
                newest = await self._newest()
                # An empty table is the hourly prune (ids go on above the last one, SQLite's
                # AUTOINCREMENT and PostgreSQL's sequence alike), not a reset.
                if newest and newest < self.last_id:  # the ids went back: read from there on
                    log.warning("stream events: ids went back from %s to %s",
                                self.last_id, newest)
                    self.last_id = newest
                    self.gaps.clear()
                    self.anonymous.clear()  # renderings keyed by ids that may come again
                    self.after_reset = True
        # Decided with no await since the check above: a stream added from now on starts
        # a new task (add() sees task None).
        self.task = None
        self.started = False

    async def _read(self) -> int:
        """Hand the new rows to the listeners; how many there were."""
        now = time.monotonic()
        self.gaps = {i: until for i, until in self.gaps.items() if until > now}
        condition = StreamEvent.id > self.last_id
        if self.gaps:
            condition = or_(condition, StreamEvent.id.in_(list(self.gaps)))
        async with self.readers() as db:
            found = (await db.execute(
                select(StreamEvent.id, StreamEvent.kind, StreamEvent.ref_id,
                       StreamEvent.actor_id, StreamEvent.visibility, StreamEvent.local,
                       StreamEvent.shown, StreamEvent.tags).where(condition)
                .order_by(StreamEvent.id).limit(READ_BATCH))).all()
        # After a reset the ids below the first one read are not known to be late commits.
        skip_gaps = self.after_reset
        self.after_reset = self.after_reset and not found
        for id_, *rest in found:
            self.gaps.pop(id_, None)
            if id_ > self.last_id + 1 and not skip_gaps:
                for missing in range(max(self.last_id + 1, id_ - MAX_GAPS), id_):
                    self.gaps[missing] = now + GAP_SECONDS
            skip_gaps = False
            self.last_id = max(self.last_id, id_)
            row = Row(id_, *rest)
            for listener in self.listeners:
                listener.offer(row)
        if len(self.gaps) > MAX_GAPS:  # the newest: the likeliest to be commits in flight
            for missing in sorted(self.gaps)[:len(self.gaps) - MAX_GAPS]:
                del self.gaps[missing]
        if len(found) == READ_BATCH:
            self.wake.set()  # more are waiting
        return len(found)

    async def anonymous_payload(self, key: tuple[int, str | None], render) -> str | None:
        """The payload of an event for streams without an account, rendered once for all of
        them in one language (`key`: the row id and the request's language): the first asks
        `render()`, the others wait for its answer."""
        waiting = self.anonymous.get(key)
        if waiting is not None:
            data = await asyncio.shield(waiting)
            if data is not RENDER_FAILED:
                return data
            return await render()  # the shared rendering failed: this stream's own
        if len(self.anonymous) >= ANONYMOUS_CACHE:
            for old in sorted(self.anonymous, key=lambda k: k[0])[:ANONYMOUS_CACHE // 2]:
                del self.anonymous[old]  # its waiters hold their future still
        waiting = self.anonymous[key] = asyncio.get_running_loop().create_future()
        try:
            data = await render()
        except BaseException:
            if self.anonymous.get(key) is waiting:  # not a later rendering of the id
                del self.anonymous[key]  # the next stream tries again
            waiting.set_result(RENDER_FAILED)
            raise
        waiting.set_result(data)
        return data
