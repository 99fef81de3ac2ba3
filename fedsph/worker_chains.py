"""The leases of the inbox items a worker has in hand, and running one sender's items as a chain
(fedsph/worker.py claims them; fedsph/federation/queue.py says what a lease is)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.federation.queue import release_inbox_items, renew_inbox_lease
from fedsph.models import utcnow

log = logging.getLogger("fedsph.worker")


class Chains:
    def __init__(self, writers: async_sessionmaker[AsyncSession], lease: timedelta):
        self.writers, self.lease = writers, lease
        # The lease of each item in hand (its end, also its fencing token: queue.py).
        self.held: dict[int, datetime] = {}

    async def run(self, chain: list[int], held: datetime,
                  process: Callable[[int], Awaitable[bool]]) -> int:
        """One sender's items one after another, in arrival order, until one is left pending
        (retried later, or taken by another claim): the later ones must wait for it, so their
        leases are given back and the next claim holds them behind it. Returns how many ran."""
        for n, item_id in enumerate(chain):
            lease = await self._renew(item_id, held)
            if lease is None:
                log.warning("inbox item %s was claimed again before it started", item_id)
                finished = False
            else:
                self.held[item_id] = lease
                try:
                    finished = await process(item_id)
                finally:
                    self.held.pop(item_id, None)
            if not finished:
                if chain[n + 1:]:
                    async with self.writers() as db, db.begin():
                        await release_inbox_items(db, chain[n + 1:], held)
                return n + (lease is not None)
        return len(chain)

    async def _renew(self, item_id: int, held: datetime) -> datetime | None:
        """The item's lease, renewed when less than half of it is left (a long chain outlives
        a claim's lease); None when another claim took the item since. Not renewed sooner, to
        spare a write per item: only expiry lets another claim take a leased item."""
        if held - utcnow() > self.lease / 2:
            return held
        async with self.writers() as db, db.begin():
            return await renew_inbox_lease(db, item_id, held, self.lease)
