"""Taking part in events: what we send (Join, Leave, and the Accept or Reject of a Join).

Mobilizon waits for an Accept{Join} before it counts someone as taking part, so a free event of
ours answers at once; a restricted one keeps the Join pending until a coordinator approves it
(`fedsph event participants SLUG EVENT --approve ID`); an invitation-only one rejects it. The
Joins and Leaves we receive are handled in fedsph/handlers/events.py, which calls
`answer_participant` here. Each function runs in the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.events.service import refresh_document
from fedsph.federation import emit
from fedsph.federation.activitystreams import build_activity
from fedsph.models import Actor, EventParticipant, Object


async def send_join(db: AsyncSession, urls: URLs, actor: Actor, event_obj: Object,
                    owner: Actor) -> EventParticipant:
    """Ask to take part in another server's event; pending until its Accept arrives."""
    existing = await db.scalar(select(EventParticipant).where(
        EventParticipant.event_id == event_obj.id, EventParticipant.actor_id == actor.id))
    if existing is not None:
        return existing
    join = build_activity("Join", urls.new_activity(), actor.uri, event_obj.uri, to=[owner.uri])
    row = EventParticipant(event_id=event_obj.id, actor_id=actor.id, activity_uri=join["id"],
                           state="pending")
    db.add(row)
    await emit.send(db, actor, join, [owner], event_obj.uri)
    return row


async def send_leave(db: AsyncSession, urls: URLs, actor: Actor, event_obj: Object,
                     owner: Actor) -> bool:
    """Stop taking part in another server's event. False if we had not joined it."""
    row = await db.scalar(select(EventParticipant).where(
        EventParticipant.event_id == event_obj.id, EventParticipant.actor_id == actor.id))
    if row is None:
        return False
    await db.delete(row)
    leave = build_activity("Leave", urls.new_activity(), actor.uri, event_obj.uri, to=[owner.uri])
    await emit.send(db, actor, leave, [owner], event_obj.uri)
    return True


async def answer_participant(db: AsyncSession, urls: URLs, row: EventParticipant,
                             accept: bool) -> None:
    """Accept or Reject a Join of one of our events, and keep participantCount right."""
    obj = await db.get(Object, row.event_id)
    owner = await db.get(Actor, obj.actor_id)
    joiner = await db.get(Actor, row.actor_id)
    original = {"id": row.activity_uri, "type": "Join", "actor": joiner.uri, "object": obj.uri}
    answer = build_activity("Accept" if accept else "Reject", urls.new_activity(), owner.uri,
                            original, to=[joiner.uri])
    join_uri = row.activity_uri
    if accept:
        row.state = "accepted"
    else:
        await db.delete(row)
    await db.flush()
    await refresh_document(db, obj, owner)
    # A joiner of this node shares the participation row: the answer is recorded, not sent.
    await emit.send(db, owner, answer, [] if joiner.local else [joiner], join_uri)
