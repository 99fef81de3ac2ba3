"""Names of local actors that are gone: a deleted project's or member's row stays as a
tombstone (fedsph/projects/deletion.py), so its handle is never given again (followers elsewhere
would take a newcomer for them) and its URL answers 410 Gone. federation/actors.py's lookups by
name or URI skip those rows; these two look at them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.models import Actor


async def local_name_taken(db: AsyncSession, username: str) -> bool:
    """Whether a local actor, live or deleted, has this name."""
    return await db.scalar(select(Actor.id).where(
        Actor.local.is_(True), Actor.username == username).limit(1)) is not None


async def get_deleted_local_actor(db: AsyncSession, username: str) -> Actor | None:
    """The tombstone of a deleted local actor of that name."""
    return await db.scalar(select(Actor).where(Actor.local.is_(True), Actor.username == username,
                                               Actor.deleted_at.is_not(None)))
