"""Claiming due rows from the queue tables with a lease, safely across worker processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.models import Delivery, HostState, InboxItem, utcnow

LEASE = timedelta(minutes=5)
# What a finished row may be in; pending rows are work still to do and are never pruned.
FINISHED_STATES = {InboxItem: ("done", "ignored", "failed"), Delivery: ("sent", "failed", "gone")}
# Inbox claims take this PostgreSQL advisory lock (any constant; "fsph") one at a time: see
# claim_inbox_items.
INBOX_CLAIM_LOCK = 0x66737068


async def claim(db: AsyncSession, model: type[InboxItem | Delivery], limit: int,
                lease: timedelta = LEASE) -> list[int]:
    """Lease up to `limit` due rows and return their ids.

    One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING: on PostgreSQL several
    workers skip each other's rows; on SQLite the statement holds the write lock. A worker that
    crashes leaves a lease that simply runs out, and its rows are claimed again. Inbox items
    are claimed in order (claim_inbox_items).
    """
    if model is InboxItem:
        return await claim_inbox_items(db, limit, lease)
    now = utcnow()
    paused = select(HostState.host).where(HostState.paused_until > now)
    due = (
        select(Delivery.id)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now, _unleased(Delivery, now),
               Delivery.host.not_in(paused))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return await _lease(db, Delivery, due, now + lease)


async def claim_inbox_items(db: AsyncSession, limit: int, lease: timedelta = LEASE) -> list[int]:
    """Lease up to `limit` due inbox items that may be processed now, oldest first.

    Items with the same ordering key (the sender's actor URI, InboxItem.actor_uri; why that
    key: ARCHITECTURE.md, "The worker") are processed one after another in id (arrival) order,
    by whichever worker process: no item of a key is claimed while a pending item with that
    key is leased (being processed, here or by another worker) or waiting for a retry. Taken in
    id order, a batch therefore holds every earlier pending item of each key it holds: the
    caller processes the items of one key in the batch in id order (fedsph/worker.py), and
    gives back the leases of the rest when one is left pending (a retry).

    On PostgreSQL two claims must not run side by side: each would see the other's leases only
    once committed, and both could take a different item of one key. So a claim first waits
    for a transaction-level advisory lock (in its own statement: the UPDATE's snapshot, taken
    after, then sees every claim committed before). A claim is one short statement, so workers
    queue for it briefly; on SQLite the write lock (BEGIN IMMEDIATE) already serializes them.
    """
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(select(func.pg_advisory_xact_lock(INBOX_CLAIM_LOCK)))
    now = utcnow()
    # The senders with an item in hand or waiting for a retry, found once per claim: a per-item
    # EXISTS cost one probe for every item of a flooding sender held behind a slow one. Any
    # such item holds back all of its sender's (not only the later ones): the same in every
    # state the worker leaves, and it keeps one sender's items from ever running side by side.
    blocked = select(InboxItem.actor_uri).where(
        InboxItem.status == "pending",
        or_(InboxItem.locked_until >= now, InboxItem.next_attempt_at > now))
    due = (
        select(InboxItem.id)
        .where(InboxItem.status == "pending", InboxItem.next_attempt_at <= now,
               _unleased(InboxItem, now), InboxItem.actor_uri.not_in(blocked))
        .order_by(InboxItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return await _lease(db, InboxItem, due, now + lease)


# The end of an item's lease is also its fencing token: a worker holds an item while its
# locked_until is still the value it set (any other claim or renewal sets a new one).


async def renew_inbox_lease(db: AsyncSession, item_id: int, held: datetime,
                            lease: timedelta) -> datetime | None:
    """A full lease for a pending item whose lease is still `held`; None when it is not."""
    until = utcnow() + lease
    result = await db.execute(_held(update(InboxItem).where(InboxItem.id == item_id), held)
                              .values(locked_until=until))
    return until if result.rowcount == 1 else None


async def release_inbox_items(db: AsyncSession, ids: list[int], held: datetime) -> None:
    """Leases given back (the next claim takes the items again, in order), where still held."""
    await db.execute(_held(update(InboxItem).where(InboxItem.id.in_(ids)), held)
                     .values(locked_until=None))


async def finish_inbox_item(db: AsyncSession, item_id: int, held: datetime | None, status: str,
                            error: str | None) -> bool:
    """The item's outcome, written only while its lease is still `held`; False when another
    claim took it since (the caller rolls back what its handler did)."""
    result = await db.execute(_held(update(InboxItem).where(InboxItem.id == item_id), held).values(
        status=status, last_error=error, attempts=InboxItem.attempts + 1, locked_until=None,
        finished_at=utcnow()))
    return result.rowcount == 1


def _held(statement, held: datetime | None):
    return statement.where(InboxItem.status == "pending", InboxItem.locked_until == held
                           ).execution_options(synchronize_session=False)


def _unleased(model: type[InboxItem | Delivery], now):
    return or_(model.locked_until.is_(None), model.locked_until < now)


async def _lease(db: AsyncSession, model: type[InboxItem | Delivery], due, until) -> list[int]:
    result = await db.execute(
        update(model)
        .where(model.id.in_(due.scalar_subquery()))
        .values(locked_until=until)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


@dataclass(frozen=True)
class PrunedQueue:
    inbox: int
    deliveries: int


async def prune_finished(db: AsyncSession, older_than: timedelta) -> PrunedQueue:
    """Delete inbox rows and deliveries that finished more than `older_than` ago.

    Without this a stranger with a key fills the disk one accepted activity at a time. The
    inbox row is also what makes a redelivery a duplicate (unique activity_uri), so pruning it
    lets the same activity id be accepted again. That is safe as long as the retention is
    longer than the HTTP signature's Date window (fedsph/federation/httpsig.py MAX_PAST, 12 hours): a
    replay of an old signed request is refused for its Date before the row is looked for, and
    a sender who signs the activity afresh could have sent it anyway. Settings require at
    least one day. A relayed activity vouched for by its integrity proof alone is not bound to
    a Date, and can come again at any time: a replay must change nothing. So received objects
    are written only by remote_objects.store_object, which never replaces what we hold with a
    Create sent again or an older version, and an actor's Update is never read: the worker
    refetches the actor from its own server instead.
    """
    cutoff = utcnow() - older_than
    counts = []
    for model, states in FINISHED_STATES.items():
        result = await db.execute(
            delete(model).where(model.status.in_(states),
                                func.coalesce(model.finished_at, model.created_at) < cutoff)
            .execution_options(synchronize_session=False))
        counts.append(result.rowcount or 0)
    return PrunedQueue(*counts)
