"""Group commit of received activities: one transaction for the inbox rows of many requests.

The inbox hands each verified activity to `Ingest.store()` and waits. One task collects what
concurrent requests hand it for up to FEDSPH_INGEST_WAIT_MS (or FEDSPH_INGEST_BATCH items),
writes them in ONE transaction (an INSERT … ON CONFLICT (activity_uri) DO NOTHING … RETURNING,
on SQLite one per SQLITE_ROWS_PER_INSERT rows, plus reviving the senders' hosts), and only
after the commit answers every waiting request:
"stored" or "duplicate" for each, or IngestFailed for all of them when the commit failed. So a
202 is only ever sent for a row that is in the database, and nothing is half-stored.

Why: on SQLite every write transaction takes the database's one write lock and a commit costs
the same for one row or hundreds; on PostgreSQL a commit waits for the WAL flush. Batching turns
one lock and one flush per request into one per batch. A batch's transaction is only this
INSERT and the host revival (and, for a Create held already that came to another personal
inbox, that inbox's row: extra_deliveries): it never waits on the network.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fedsph.db import make_sync_sqlite_engine
from fedsph.models import Delivery, InboxItem, utcnow

log = logging.getLogger("fedsph.ingest")

PARALLEL_COMMITS = 4  # batches in flight at once on PostgreSQL (SQLite: 1)
# Rows per INSERT on SQLite: 6 parameters a row stay far below SQLite's limit of 32,766.
SQLITE_ROWS_PER_INSERT = 256


class IngestFailed(RuntimeError):
    """The batch this activity was in could not be committed: nothing of it was stored."""


@dataclass
class Received:
    """A verified activity waiting for its batch: the row's values and the signer's host."""

    activity_uri: str
    type: str
    actor_uri: str
    body: bytes
    signed_by_actor: bool
    host: str
    delivered_to: str | None = None  # the local actor whose own inbox it came to; None: shared
    outcome: asyncio.Future = field(default=None, repr=False)  # type: ignore[assignment]


class Ingest:
    """The one writer of inbox rows in this process; start() with the app, stop() flushes."""

    def __init__(self, writers: async_sessionmaker[AsyncSession], wait_ms: float = 2.0,
                 max_batch: int = 256):
        self.writer = BatchWriter(writers.kw["bind"])
        self.wait = wait_ms / 1000
        self.max_batch = max_batch
        self._queue: asyncio.Queue[Received] | None = None
        self._task: asyncio.Task | None = None
        self._more: asyncio.Event | None = None
        self._room = 0
        self._closing = False
        # Batches committing at once: SQLite has one writer; PostgreSQL flushes its WAL for
        # several concurrent commits at a time, so the next batch need not wait for the last.
        self.parallel = 1 if self.writer.bind.dialect.name == "sqlite" else PARALLEL_COMMITS
        self._slots: asyncio.Semaphore | None = None
        self._commits: set[asyncio.Task] = set()
        self.batches = self.items = 0  # committed batches and their items, for tests and logs

    def start(self) -> None:
        self._closing = False
        self._slots = asyncio.Semaphore(self.parallel)
        self._queue = asyncio.Queue()
        self._more = asyncio.Event()  # ends _gather's wait
        self._room = 0  # items the batch being gathered still takes (0: no wait in progress)
        self._task = asyncio.create_task(self._run(), name="fedsph-ingest")

    async def stop(self) -> None:
        """Write what is queued, then end the task (requests still waiting get their answer)."""
        if self._task is None:
            return
        self._closing = True  # from now on store() refuses, so nothing queues behind the marker
        await self._queue.put(None)  # type: ignore[arg-type]  # the end marker, after the rest
        self._more.set()
        await self._task
        self._task = None
        await asyncio.to_thread(self.writer.close)
        log.info("inbox stored %d activities in %d transactions", self.items, self.batches)

    async def store(self, item: Received) -> str:
        """"stored" or "duplicate" once the item's batch is committed; IngestFailed if not."""
        if self._task is None or self._task.done() or self._closing:
            raise IngestFailed("the inbox is not accepting activities now (shutting down)")
        item.outcome = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(item)  # the queue is unbounded: put() would only add an await
        if 0 < self._room <= self._queue.qsize():
            self._more.set()  # the batch being gathered is full: no need to wait any longer
        return await item.outcome

    async def _run(self) -> None:
        done = False
        while not done:
            await self._slots.acquire()  # a free slot first: meanwhile requests queue up
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            done = await self._gather(batch)
            commit = asyncio.create_task(self._commit(batch))
            self._commits.add(commit)
            commit.add_done_callback(self._commits.discard)
        await asyncio.gather(*self._commits)

    async def _commit(self, batch: list[Received]) -> None:
        try:
            await self._write(batch)
        finally:
            self._slots.release()

    async def _gather(self, batch: list[Received]) -> bool:
        """Add what arrives within the wait (or is queued already) to `batch`; True at the end
        marker. Requests that arrive during a commit are queued and make the next batch.

        One wait for the rest of the window, not one per arriving request (asyncio.wait_for on
        the queue made a task and a timer for each, a few µs of every request under load):
        store() ends it once the queue can fill the batch, stop() at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while True:
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    return True
                batch.append(item)
            remaining = deadline - loop.time()
            if len(batch) >= self.max_batch or remaining <= 0:
                return False
            # No await since the queue was found empty, so no store() or stop() came between.
            self._room = self.max_batch - len(batch)
            self._more.clear()
            timer = loop.call_later(remaining, self._more.set)
            try:
                await self._more.wait()
            finally:
                timer.cancel()
                self._room = 0

    async def _write(self, batch: list[Received]) -> None:
        started = asyncio.get_running_loop().time()
        try:
            stored = await write_batch(self.writer, batch)
        except Exception as exc:  # noqa: BLE001  # nothing of the batch was stored
            if len(batch) > 1:
                # One item the database refuses must not cost its neighbours their 202: each
                # is tried on its own, and only what still fails hears of it.
                log.warning("a batch of %d received activities failed (%s); storing them one "
                            "by one", len(batch), exc)
                for item in batch:
                    await self._write([item])
                return
            log.error("could not store a received activity: %s", exc)
            for item in batch:
                if not item.outcome.done():
                    item.outcome.set_exception(IngestFailed(
                        "the activity could not be stored now; send it again later"))
            return
        self.batches += 1
        self.items += len(batch)
        log.debug("stored %d activities in %.1f ms", len(batch),
                  (asyncio.get_running_loop().time() - started) * 1000)
        for item in batch:
            if not item.outcome.done():  # a request whose sender went away is cancelled
                item.outcome.set_result("stored" if id(item) in stored else "duplicate")


async def write_batch(writer: BatchWriter, batch: list[Received]) -> set[int]:
    """Insert the batch in one transaction; the id() of each item that made a new row. The
    first of several items with one activity id wins; the others are duplicates, like an id
    already in the table (but see extra_deliveries)."""
    first: dict[str, Received] = {}
    personal: list[Received] = []
    for item in batch:
        first.setdefault(item.activity_uri, item)
        if item.delivered_to is not None:
            personal.append(item)
    # Sorted: batches committing at once (PostgreSQL) then take their unique-index locks in one
    # order, so two batches holding the same ids cannot deadlock each other.
    rows = sorted(first.values(), key=lambda item: item.activity_uri)
    new = await writer.write(rows, sorted({item.host for item in batch}), utcnow(), personal)
    return {id(item) for uri, item in first.items() if uri in new}


def extra_deliveries(rows: list[Received], personal: list[Received],
                     new: set[str]) -> list[tuple[str, Received]]:
    """Rows of their own for a Create that came to a personal inbox again under an activity id
    we have (a server without a shared inbox sends the same activity to each inbox it
    delivers to): the worker handles each as that Create sent again to that inbox
    (fedsph/handlers/posts.py adds the account to a direct post it holds), in order after the
    first (the same sender). Keyed by a digest of the activity id, the sender and the inbox: the
    same delivery twice makes one row. Only the first row's sender gets one (not_held): another
    account of its server reusing the id cannot take the key before it. Only personal-inbox
    items signed by their actor are looked at (a relay's copy addresses nobody: posts.py), so
    the shared inbox's cost nothing here. Each as (its activity id, the row)."""
    winners = {row.activity_uri: row for row in rows}
    extra: dict[str, tuple[str, Received]] = {}
    for item in personal:
        winner = winners[item.activity_uri]
        if (item.type != "Create" or not item.signed_by_actor
                or winner.actor_uri != item.actor_uri
                or (winner.activity_uri in new and winner.delivered_to == item.delivered_to)):
            continue  # its own row (or the one it came with in this batch) records it
        key = "urn:fedsph:delivered:" + hashlib.sha256(
            f"{item.activity_uri}\n{item.actor_uri}\n{item.delivered_to}".encode()).hexdigest()
        extra.setdefault(key, (item.activity_uri, replace(item, activity_uri=key)))
    return sorted(extra.values(), key=lambda pair: pair[1].activity_uri)


def held_deliveries(extra: list[tuple[str, Received]]):
    """SQL: the sender and the inbox of each of their activities' rows (a delivery again to the
    same inbox, a retry, needs no row of its own)."""
    items = InboxItem.__table__
    return select(items.c.activity_uri, items.c.actor_uri, items.c.delivered_to).where(
        items.c.activity_uri.in_(sorted({uri for uri, _ in extra})))


def not_held(held, extra: list[tuple[str, Received]]) -> list[Received]:
    """The extra rows still to write: the activity's first row is the same sender's (not another
    account's reusing its id), and none came to that inbox yet."""
    senders = {uri: sender for uri, sender, inbox in held if not uri.startswith("urn:")}
    seen = {(uri, inbox) for uri, _, inbox in held}
    return [row for uri, row in extra
            if senders.get(uri) == row.actor_uri and (uri, row.delivered_to) not in seen]


class BatchWriter:
    """Runs a batch's transaction. On SQLite the whole transaction runs in one thread of its own
    on a synchronous connection: through the async driver every statement would wait for the
    event loop to come round, and under load the loop is busy with the requests of the next
    batch (commits took 20-80 ms that way, holding the write lock all along). On PostgreSQL it
    runs on the async engine."""

    def __init__(self, bind: AsyncEngine):
        self.bind = bind
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def write(self, rows: list[Received], hosts: list[str], now: datetime,
                    personal: list[Received] = ()) -> set[str]:
        """Insert `rows` (distinct activity ids) and revive `hosts`: the activity ids that made
        new rows. `personal`: the batch's items that came to a personal inbox, whose Creates
        already held get rows of their own in the same transaction (extra_deliveries)."""
        if self.bind.dialect.name == "postgresql":
            # Each statement autocommitted, so the usual batch is one round trip without BEGIN
            # and COMMIT. The extra rows need no transaction with the batch: they are keyed
            # (ON CONFLICT), so a failure between the two is mended by the next delivery.
            async with self.bind.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                new = set((await conn.execute(PG_BATCH, _pg_arrays(rows, hosts, now))).scalars())
                extra = extra_deliveries(rows, personal, new) if personal else []
                if extra:
                    extra = not_held((await conn.execute(held_deliveries(extra))).all(), extra)
                if extra:
                    await conn.execute(PG_BATCH, _pg_arrays(extra, [], now))
                return new
        if self._sync is None:
            self._sync = make_sync_sqlite_engine(self.bind.url.render_as_string(False))
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="fedsph-ingest")
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._write_in_thread, rows, hosts, now, personal)

    def _write_in_thread(self, rows: list[Received], hosts: list[str], now: datetime,
                         personal: list[Received]) -> set[str]:
        with self._sync.begin() as conn:  # BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error
            new = _write(conn, rows, hosts, now)
            extra = extra_deliveries(rows, personal, new) if personal else []
            if extra:
                extra = not_held(conn.execute(held_deliveries(extra)).all(), extra)
            if extra:
                _write(conn, extra, [], now)
            return new

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._sync.dispose()
            self._sync = self._thread = None


# The whole batch on PostgreSQL: the rows from arrays, the hosts revived, the new ids returned.
# Data-modifying WITH clauses run once and to completion whether or not the query reads them.
PG_BATCH = text("""
WITH new AS (
    INSERT INTO inbox_items (activity_uri, type, actor_uri, body, signed_by_actor, delivered_to,
                             status, attempts, next_attempt_at, created_at)
    SELECT row.activity_uri, row.type, row.actor_uri, row.body, row.signed_by_actor,
           row.delivered_to, 'pending', 0, :now, :now
    FROM unnest(CAST(:uris AS varchar[]), CAST(:types AS varchar[]), CAST(:actors AS varchar[]),
                CAST(:bodies AS bytea[]), CAST(:signed AS boolean[]),
                CAST(:delivered AS varchar[]))
         AS row(activity_uri, type, actor_uri, body, signed_by_actor, delivered_to)
    ON CONFLICT (activity_uri) DO NOTHING
    RETURNING activity_uri
), revived AS (
    UPDATE host_states SET consecutive_failures = 0, paused_until = NULL
    WHERE host = ANY(CAST(:hosts AS varchar[])) AND consecutive_failures > 0
    RETURNING host
), retried AS (
    UPDATE deliveries SET next_attempt_at = :now
    WHERE status = 'pending' AND host IN (SELECT host FROM revived)
)
SELECT activity_uri FROM new
""")


def _pg_arrays(rows: list[Received], hosts: list[str], now: datetime) -> dict:
    return {"uris": [row.activity_uri for row in rows], "types": [row.type for row in rows],
            "actors": [row.actor_uri for row in rows], "bodies": [row.body for row in rows],
            "signed": [row.signed_by_actor for row in rows],
            "delivered": [row.delivered_to for row in rows], "hosts": hosts, "now": now}


def _write(conn: Connection, rows: list[Received], hosts: list[str], now: datetime) -> set[str]:
    """The batch's statements on SQLite (in the caller's transaction): the activity ids that
    made rows. PostgreSQL does the same in one statement (PG_BATCH): a round trip saved per
    batch is worth the second spelling there, while SQLite has no round trips to save.

    Both go to the driver as SQL text with the rows' values in one flat list: built as
    SQLAlchemy statements, their per-row bind processing and the statements' construction made
    this thread's CPU some 45 µs per row against 13 µs for SQLite's own work (issue 12), and
    the thread holds the GIL the event loop needs meanwhile."""
    stamp = _sqlite_datetime(conn.dialect)(now)  # the batch's one time, as SQLAlchemy writes it
    cursor = conn.connection.driver_connection.cursor()
    new: set[str] = set()
    try:
        for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
            chunk = rows[start:start + SQLITE_ROWS_PER_INSERT]
            values = []
            for row in chunk:
                values += (row.activity_uri, row.type, row.actor_uri, row.body,
                           row.signed_by_actor, row.delivered_to)
            values.append(stamp)
            new.update(uri for (uri,) in cursor.execute(_sqlite_insert(len(chunk)), values))
        revived = [host for (host,) in cursor.execute(_sqlite_revive(len(hosts)), hosts)]
    finally:
        cursor.close()
    if revived:  # rare: a host we had given up on wrote to us
        _retry_deliveries(conn, revived)
    return new


@functools.lru_cache(maxsize=8)
def _sqlite_datetime(dialect):
    return InboxItem.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)


@functools.lru_cache(maxsize=SQLITE_ROWS_PER_INSERT)
def _sqlite_insert(count: int) -> str:
    """INSERT of `count` rows, one statement text per count (the driver keeps each prepared).
    Parameters are numbered: row n's six values are ?(6n+1) to ?(6n+6), and the batch's time,
    the last one, serves every row (SQLite numbers a bare ? after the highest so far, so the
    two spellings must not be mixed)."""
    stamp = f"?{count * 6 + 1}"
    rows = ", ".join("(" + ", ".join(f"?{n * 6 + k}" for k in range(1, 7))
                     + f", 'pending', 0, {stamp}, {stamp})" for n in range(count))
    return ("INSERT INTO inbox_items (activity_uri, type, actor_uri, body, signed_by_actor, "
            "delivered_to, status, attempts, next_attempt_at, created_at) VALUES " + rows
            + " ON CONFLICT (activity_uri) DO NOTHING RETURNING activity_uri")


@functools.lru_cache(maxsize=512)
def _sqlite_revive(count: int) -> str:
    """Hosts that sign requests to us are up again: their failures are forgotten (and what we
    owe them retried, _retry_deliveries), as Mastodon does. One statement, which changes nothing
    when none of them was failing (the usual case)."""
    return ("UPDATE host_states SET consecutive_failures = 0, paused_until = NULL "
            f"WHERE host IN ({', '.join(['?'] * count)}) AND consecutive_failures > 0 "
            "RETURNING host")


def _retry_deliveries(conn: Connection, hosts: list[str]) -> None:
    """What we owe hosts that are up again is retried now (as Mastodon does)."""
    deliveries = Delivery.__table__
    conn.execute(update(deliveries).where(deliveries.c.host.in_(hosts),
                                          deliveries.c.status == "pending")
                 .values(next_attempt_at=utcnow()))
