"""Claiming due rows from the queue tables with a lease, safely across worker processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.models import Delivery, HostState, InboxItem, utcnow

LEASE = timedelta(minutes=5)
# What a finished row may be in; pending rows are work still to do and are never pruned.
FINISHED_STATES = {InboxItem: ("done", "ignored", "failed"), Delivery: ("sent", "failed", "gone")}


async def claim(db: AsyncSession, model: type[InboxItem | Delivery], limit: int) -> list[int]:
    """Lease up to `limit` due rows and return their ids.

    One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING: on PostgreSQL several
    workers skip each other's rows; on SQLite the statement holds the write lock. A worker that
    crashes leaves a lease that simply runs out, and its rows are claimed again.
    """
    now = utcnow()
    due = (
        select(model.id)
        .where(model.status == "pending", model.next_attempt_at <= now,
               or_(model.locked_until.is_(None), model.locked_until < now))
        .order_by(model.next_attempt_at, model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if model is Delivery:
        paused = select(HostState.host).where(HostState.paused_until > now)
        due = due.where(Delivery.host.not_in(paused))
    result = await db.execute(
        update(model)
        .where(model.id.in_(due.scalar_subquery()))
        .values(locked_until=now + LEASE)
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
