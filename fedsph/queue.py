"""Claiming due rows from the queue tables with a lease, safely across worker processes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.models import Delivery, HostState, InboxItem, utcnow

LEASE = timedelta(minutes=5)


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
