"""Direct-message conversations of local accounts (Mastodon's GET /api/v1/conversations).

Each local account that writes or is addressed by a direct post has one conversation per set of
other actors in it (the author and the addressees it names, itself left out; an account reached
only through its own inbox is in nobody else's set), with the newest of its
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

# Posts looked at to find a conversation's previous post when its newest is deleted (for all
# the rows of that post together): direct messages are few, and an older post beyond this
# leaves the conversation (as an empty one).
PREVIOUS_SCAN = 200


def participants_key(uris: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(uris)).encode()).hexdigest()


def _others(author: str, audience: list[tuple[str, bool]], account: str) -> list[str] | None:
    """Whom `account` sees in a direct post by `author` with this (uri, silent) audience: the
    author and those it names, never a silent addressee (reached only through its own inbox,
    as Mastodon's silent mentions, which its active_mentions leave out), itself left out. None
    when the post is not `account`'s at all."""
    if account != author and all(uri != account for uri, _ in audience):
        return None
    named = {author, *(uri for uri, silent in audience if not silent)}
    return sorted(named - {account})


async def add_direct_post(db: AsyncSession, obj: Object, only: Actor | None = None) -> None:
    """Put a new direct post at the top of the conversation of each local actor in it (of
    `only`, when just that one was added to it)."""
    if obj.visibility != DIRECT or obj.deleted_at is not None:
        return
    author = await db.scalar(select(Actor.uri).where(Actor.id == obj.actor_id))
    audience = list((await db.execute(select(ObjectAudience.actor_uri, ObjectAudience.silent)
                                      .where(ObjectAudience.object_id == obj.id))).all())
    if only is not None:
        local = [only]
    else:
        everyone = [author, *(uri for uri, _ in audience)]
        local = list(await db.scalars(select(Actor).where(
            Actor.uri.in_(everyone), Actor.local.is_(True), Actor.deleted_at.is_(None))
            .order_by(Actor.id)))
    for account in local:
        others = _others(author, audience, account.uri)
        if others is None:
            continue
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
    await _fall_back(db, list(await db.scalars(
        select(Conversation).where(Conversation.last_status_id == obj.id))))


async def before_actor_deleted(db: AsyncSession, actor_id: int) -> None:
    """An actor about to be deleted takes its posts with it (ON DELETE CASCADE), which would
    leave the conversations they were the newest of empty (last_status_id NULL, not listed):
    each falls back to its previous post by someone else first, or goes."""
    gone = select(Object.id).where(Object.actor_id == actor_id, Object.visibility == DIRECT)
    rows = list(await db.scalars(select(Conversation).where(
        Conversation.last_status_id.in_(gone))))
    await _fall_back(db, rows, but_not_by=actor_id)


async def _fall_back(db: AsyncSession, rows: list[Conversation],
                     but_not_by: int | None = None) -> None:
    """Each row to its newest live direct post before its current one with the same people
    (as the row holds them: a post whose audience grew since keeps its old conversation), or
    deleted. The candidates and their audiences are read once for all the rows."""
    if not rows:
        return
    accounts = dict((await db.execute(select(Actor.id, Actor.uri).where(
        Actor.id.in_({row.actor_id for row in rows})))).all())
    people = set(accounts.values()).union(*(row.participants for row in rows))
    query = (select(Object.id, Actor.uri).join(Actor, Actor.id == Object.actor_id).where(
        Object.visibility == DIRECT, Object.deleted_at.is_(None),
        Object.id < max(row.last_status_id for row in rows), Actor.uri.in_(people))
        .order_by(Object.id.desc()).limit(PREVIOUS_SCAN))
    if but_not_by is not None:
        query = query.where(Object.actor_id != but_not_by)
    candidates = list((await db.execute(query)).all())
    audiences: dict[int, list[tuple[str, bool]]] = {}
    if candidates:
        for object_id, uri, silent in await db.execute(
                select(ObjectAudience.object_id, ObjectAudience.actor_uri, ObjectAudience.silent)
                .where(ObjectAudience.object_id.in_([c for c, _ in candidates]))):
            audiences.setdefault(object_id, []).append((uri, silent))
    ended = []
    for row in rows:
        account, wanted = accounts.get(row.actor_id), sorted(row.participants)
        previous = next((c for c, author in candidates if c < row.last_status_id
                         and _others(author, audiences.get(c, []), account) == wanted), None)
        if previous is None:
            ended.append(row.id)
        else:
            row.last_status_id = previous
    await db.flush()
    if ended:
        await db.execute(delete(Conversation).where(Conversation.id.in_(ended)))


async def conversation_of(db: AsyncSession, account: Actor, conversation_id: int) -> Conversation | None:
    """`account`'s conversation with this id; None for another account's (never shown)."""
    return await db.scalar(select(Conversation).where(
        Conversation.id == conversation_id, Conversation.actor_id == account.id))
