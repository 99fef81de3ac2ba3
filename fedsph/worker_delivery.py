"""Sending the delivery queue: claim due rows, POST each signed body to its inbox, record the
outcomes and each host's health (pausing a failing host). The worker (fedsph/worker.py) runs a
round of this after each round of its inbox; the rows are made by fedsph/federation/emit.py."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.config import Settings
from fedsph.errors import FetchError
from fedsph.federation.actors import signer_for
from fedsph.federation.blocks import snapshot_for
from fedsph.federation.delivery import decide, pause_for
from fedsph.federation.queue import claim
from fedsph.federation.remote import PostResult, Remote
from fedsph.models import Activity, Actor, Delivery, HostState, utcnow

log = logging.getLogger("fedsph.worker")


# What a delivery row says when it was not sent because its server was blocked after it was
# queued (emit.send leaves blocked servers out when it queues).
BLOCKED = "not sent: the receiving server is blocked on this node"


class DeliverySender:
    def __init__(self, settings: Settings, writers: async_sessionmaker[AsyncSession],
                 remote: Remote, readers: async_sessionmaker[AsyncSession] | None = None):
        self.settings = settings
        self.writers = writers
        self.readers = readers or writers
        self.blocks = None  # the database's BlockSnapshot, found at the first round
        self.remote = remote
        self.retry_base = settings.retry_base_seconds
        self.lease = timedelta(seconds=settings.worker_lease_seconds)

    async def round(self) -> int:
        """Claim a batch of due deliveries, send them concurrently and record the outcomes;
        returns how many were sent (attempted)."""
        async with self.writers() as db, db.begin():
            ids = await claim(db, Delivery, self.settings.worker_batch, self.lease)
            if not ids:
                return 0
            rows = (await db.execute(
                select(Delivery.id, Delivery.inbox, Delivery.host, Delivery.attempts, Activity.body,
                       Actor.key_id, Actor.private_key_pem)
                .join(Activity, Activity.id == Delivery.activity_id)
                .join(Actor, Actor.id == Activity.actor_id)
                .where(Delivery.id.in_(ids)))).all()
        limit = asyncio.Semaphore(self.settings.delivery_concurrency)
        blocked: set[int] = set()

        async def send(row):
            async with limit:  # checked once its turn comes: a batch may wait its turn a while
                if await self._server_blocked(row.inbox):
                    blocked.add(row.id)
                    return None
                return row, await self._send_one(row)

        results = [sent for sent in await asyncio.gather(*(send(row) for row in rows)) if sent]
        await self._record_results(results, blocked)
        return len(rows)

    async def _server_blocked(self, inbox: str) -> bool:
        """The inbox's server was blocked after the row was queued: a block stops what waits in
        the queue too (retries can wait for days). The in-memory snapshot of the blocks
        (fedsph/federation/blocks.py) sees one made in this process at once, in another within
        FEDSPH_BLOCK_REFRESH_SECONDS. Only server blocks: a row names an inbox, not an account
        (an account's block stops what is queued after it)."""
        if self.blocks is None:
            async with self.readers() as db:  # the worker's session factories may be wrappers
                self.blocks = snapshot_for(db.bind)
            self.blocks.max_age = self.settings.block_refresh_seconds
        return await self.blocks.blocks_server(self.readers, inbox)

    async def _send_one(self, row) -> PostResult | FetchError:
        signer = signer_for(Actor(key_id=row.key_id, private_key_pem=row.private_key_pem))
        try:
            return await self.remote.post_signed(row.inbox, row.body, signer)
        except FetchError as exc:
            return exc

    async def _record_results(self, results, blocked: set[int] = frozenset()) -> None:
        """Write every outcome of a batch in one transaction (one commit per batch, not per row);
        `blocked` rows end as failed, not attempted."""
        now = utcnow()
        # Rows whose new columns are equal (every first-try success of a batch, typically) share
        # one UPDATE: a statement per row cost more than the signing (bench/fanout.py).
        groups: dict[tuple, list[int]] = {}
        host_success: set[str] = set()
        host_failure: set[str] = set()
        for row, result in results:
            values, host_failed = self._delivery_values(row, result, now)
            groups.setdefault(tuple(sorted(values.items())), []).append(row.id)
            (host_failure if host_failed else host_success).add(row.host)
        async with self.writers() as db, db.begin():
            # Host rows first, then delivery rows: the inbox reviving a host locks them in the
            # same order, so on PostgreSQL the two cannot deadlock.
            await self._update_hosts(db, host_success - host_failure, host_failure, now)
            for values, ids in groups.items():
                await db.execute(update(Delivery).where(Delivery.id.in_(ids)).values(**dict(values)))
            if blocked:
                await db.execute(update(Delivery).where(Delivery.id.in_(blocked)).values(
                    status="failed", last_status=None, last_error=BLOCKED, locked_until=None,
                    finished_at=now))

    def _delivery_values(self, row, result: PostResult | FetchError, now) -> tuple[dict, bool]:
        """A delivery row's new columns after one attempt, and whether its host failed."""
        attempts = row.attempts + 1
        if isinstance(result, FetchError):
            outcome = decide(None, None, attempts, now, self.retry_base)
            status_code, error = None, str(result)
        else:
            outcome = decide(result.status, result.retry_after, attempts, now, self.retry_base)
            status_code = result.status
            error = None if outcome.status == "sent" else f"HTTP {result.status}: {result.text[:500]}"
        values = {"status": outcome.status, "attempts": attempts, "last_status": status_code,
                  "last_error": error, "locked_until": None}
        if outcome.status == "pending":
            values["next_attempt_at"] = outcome.next_attempt_at
        else:
            values["finished_at"] = now
        return values, outcome.host_failed

    async def _update_hosts(self, db: AsyncSession, ok: set[str], failed: set[str], now) -> None:
        # Only hosts that once failed have a row; one SELECT finds them instead of a no-op UPDATE
        # per healthy host.
        if ok:
            ok = set(await db.scalars(select(HostState.host).where(HostState.host.in_(ok))))
        # Hosts in one fixed order, so two workers updating the same hosts cannot deadlock.
        for host in sorted(ok | failed):
            if host in failed:
                await self._count_host_failure(db, host, now)
            else:
                await db.execute(update(HostState).where(HostState.host == host).values(
                    consecutive_failures=0, paused_until=None, last_success_at=now))

    async def _count_host_failure(self, db: AsyncSession, host: str, now) -> None:
        """Add one to the host's failure count and pause it when that count calls for it."""
        # One upsert, not read-then-insert: several workers may fail on a new host at the same
        # moment, and on PostgreSQL all but one of them would then hit the primary key.
        # Imported here so that only the engine's own dialect is loaded (the other is ~2 MB).
        if db.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        failures = await db.scalar(
            insert(HostState)
            .values(host=host, consecutive_failures=1, last_failure_at=now)
            .on_conflict_do_update(index_elements=[HostState.host], set_={
                "consecutive_failures": HostState.consecutive_failures + 1,
                "last_failure_at": now})
            .returning(HostState.consecutive_failures))
        pause = pause_for(failures, self.retry_base)
        if pause is not None:
            await db.execute(update(HostState).where(HostState.host == host).values(
                paused_until=now + pause))
            log.warning("pausing deliveries to %s for %s after %d failures", host, pause, failures)
