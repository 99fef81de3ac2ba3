"""Direct-message conversations of local accounts (Mastodon's GET /api/v1/conversations).

Each local account that writes or is addressed by a direct post has one conversation per set of
other actors in it (the author and the addressees, itself left out), with the newest of its
posts and whether the account has read it. Mastodon keys them by thread as well
(app/models/account_conversation.rb); fedsph by the people alone, so a new direct message to
the same people continues the same conversation. Unread means: the newest post is someone
else's and the account has not marked it read; an account's own post marks it read.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.federation.visibility import DIRECT
from fedsph.models import Actor, Conversation, Object, ObjectAudience

# Posts looked at to find a conversation's previous post when its newest is deleted: direct
# messages are few, and an older post beyond this leaves the conversation (as an empty one).
PREVIOUS_SCAN = 200


def participants_key(uris: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(uris)).encode()).hexdigest()


async def _people(db: AsyncSession, obj: Object) -> tuple[str, list[str]]:
    """The direct post's author and everyone in it (author first)."""
    author = await db.scalar(select(Actor.uri).where(Actor.id == obj.actor_id))
    audience = await db.scalars(select(ObjectAudience.actor_uri)
                                .where(ObjectAudience.object_id == obj.id))
    return author, list(dict.fromkeys([author, *audience]))


async def add_direct_post(db: AsyncSession, obj: Object) -> None:
    """Put a new direct post at the top of the conversation of each local actor in it."""
    if obj.visibility != DIRECT or obj.deleted_at is not None:
        return
    author, everyone = await _people(db, obj)
    local = await db.scalars(select(Actor).where(Actor.uri.in_(everyone), Actor.local.is_(True))
                             .order_by(Actor.id))
    for account in local:
        others = sorted(u for u in everyone if u != account.uri)
        row_id = await conversation_id_for(db, account, others)
        # One statement: of two posts of one conversation stored at once, the newer stays on top.
        await db.execute(update(Conversation).where(
            Conversation.id == row_id, or_(Conversation.last_status_id.is_(None),
                                           Conversation.last_status_id <= obj.id))
            .values(last_status_id=obj.id, unread=account.uri != author))


async def conversation_id_for(db: AsyncSession, account: Actor, others: list[str]) -> int:
    """The id of `account`'s conversation with `others`, made if new. Two transactions making
    the same one at once (PostgreSQL): the second finds the first's once it has committed."""
    key = participants_key(others)
    query = select(Conversation.id).where(Conversation.actor_id == account.id,
                                          Conversation.participants_key == key)
    found = await db.scalar(query)
    if found is not None:
        return found
    try:
        async with db.begin_nested():
            row = Conversation(actor_id=account.id, participants_key=key, participants=others)
            db.add(row)
            await db.flush()
            return row.id
    except IntegrityError:
        return await db.scalar(query)


async def remove_direct_post(db: AsyncSession, obj: Object) -> None:
    """A deleted direct post leaves the conversations it was the newest of: each shows its
    previous post again, or goes when it has none (as Mastodon's remove_status)."""
    if obj.visibility != DIRECT:
        return
    rows = list(await db.scalars(select(Conversation).where(Conversation.last_status_id == obj.id)))
    for row in rows:
        account = await db.scalar(select(Actor.uri).where(Actor.id == row.actor_id))
        previous = await _previous_post(db, account, set(row.participants), obj.id)
        if previous is None:
            await db.execute(delete(Conversation).where(Conversation.id == row.id))
        else:
            row.last_status_id = previous
    await db.flush()


async def _previous_post(db: AsyncSession, account: str, others: set[str],
                         before: int) -> int | None:
    """The newest live direct post before `before` whose people are `account` and `others`."""
    everyone = others | {account}
    candidates = await db.scalars(
        select(Object).join(Actor, Actor.id == Object.actor_id).where(
            Object.visibility == DIRECT, Object.deleted_at.is_(None), Object.id < before,
            Actor.uri.in_(everyone)).order_by(Object.id.desc()).limit(PREVIOUS_SCAN))
    for candidate in list(candidates):
        _, people = await _people(db, candidate)
        if set(people) == everyone:
            return candidate.id
    return None


async def conversation_of(db: AsyncSession, account: Actor, conversation_id: int) -> Conversation | None:
    """`account`'s conversation with this id; None for another account's (never shown)."""
    return await db.scalar(select(Conversation).where(
        Conversation.id == conversation_id, Conversation.actor_id == account.id))
