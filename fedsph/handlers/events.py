"""Joining and leaving events (Join / Leave of an Event, as Mobilizon sends them).

Both sides live here: the handlers for Joins of our events (and the answers to our own Joins of
other servers' events), and the functions that send Join, Leave, Accept and Reject. Mobilizon
waits for an Accept{Join} before it counts someone as taking part, so a free event answers at
once; a restricted one keeps the Join pending until a coordinator approves it
(`fedsph event participants SLUG EVENT --approve ID`); an invitation-only one rejects it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.events.service import refresh_document
from fedsph.federation.activitystreams import build_activity, get_id, same_origin
from fedsph.federation.emit import enqueue_deliveries, record_activity
from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.models import Activity, Actor, Event, EventParticipant, Object

# --- sending ----------------------------------------------------------------------------------


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
    activity = await record_activity(db, actor, join, event_obj.uri)
    await enqueue_deliveries(db, activity, [owner])
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
    activity = await record_activity(db, actor, leave, event_obj.uri)
    await enqueue_deliveries(db, activity, [owner])
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
    activity = await record_activity(db, owner, answer, join_uri)
    if not joiner.local:
        await enqueue_deliveries(db, activity, [joiner])


# --- receiving --------------------------------------------------------------------------------

async def _our_event(ctx: HandlerContext, activity: dict) -> tuple[Object, Event]:
    uri = get_id(activity.get("object"))
    if not uri or not ctx.urls.is_local(uri):
        raise Ignored("Join or Leave of something that is not ours")
    obj = await ctx.db.scalar(select(Object).where(Object.uri == uri, Object.local.is_(True),
                                                   Object.type == "Event"))
    if obj is None or obj.deleted_at is not None:
        raise Ignored("no such event here")
    return obj, await ctx.db.get(Event, obj.id)


async def handle_event_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    obj, event = await _our_event(ctx, activity)
    row = await ctx.db.scalar(select(EventParticipant).where(
        EventParticipant.event_id == obj.id, EventParticipant.actor_id == actor.id))
    if row is None:
        row = EventParticipant(event_id=obj.id, actor_id=actor.id, activity_uri=activity["id"],
                               state="pending")
        ctx.db.add(row)
        await ctx.db.flush()
    elif row.state == "accepted":
        # Joined already (a retry, or a Join sent again): answer again, keep the row.
        row.activity_uri = activity["id"]
        await answer_participant(ctx.db, ctx.urls, row, accept=True)
        return "done"
    if event.join_mode == "free":
        await answer_participant(ctx.db, ctx.urls, row, accept=True)
    elif event.join_mode == "invite":
        await answer_participant(ctx.db, ctx.urls, row, accept=False)
    return "done"


async def handle_event_leave(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    obj, _ = await _our_event(ctx, activity)
    row = await ctx.db.scalar(select(EventParticipant).where(
        EventParticipant.event_id == obj.id, EventParticipant.actor_id == actor.id))
    if row is None:
        raise Ignored("Leave from someone who had not joined")
    await ctx.db.delete(row)
    await ctx.db.flush()
    await refresh_document(ctx.db, obj, await ctx.db.get(Actor, obj.actor_id))
    return "done"


async def _our_join(ctx: HandlerContext, answer: dict, actor: Actor) -> EventParticipant:
    """Our pending participation that `answer` (from the event's owner) answers."""
    join_uri = get_id(answer.get("object"))
    row = await ctx.db.scalar(select(EventParticipant).where(
        EventParticipant.activity_uri == join_uri)) if join_uri else None
    if row is None:
        raise Ignored("answer to a Join we did not send")
    sent = await ctx.db.scalar(select(Activity).where(Activity.uri == join_uri))
    owner = await ctx.db.scalar(select(Actor).join(Object, Object.actor_id == Actor.id)
                                .where(Object.id == row.event_id))
    event_obj = await ctx.db.get(Object, row.event_id)
    document = event_obj.document or {}
    # Mobilizon accepts a Join of a free event as the organiser (the event's `actor`, even when
    # a group is `attributedTo`: activity_pub/types/events.ex), and answers one of a restricted
    # event as whichever group moderator approved or rejected it (graphql/api/participations.ex).
    # We cannot see a remote group's moderators, so, like Mobilizon's own origin checks, an actor
    # on the event's server may answer too.
    answerers = {owner.uri if owner else None, get_id(document.get("actor")),
                 get_id(document.get("attributedTo"))}
    if sent is None or not (actor.uri in answerers or same_origin(actor.uri, event_obj.uri)):
        raise Ignored("only the event's organisers answer a Join of it")
    return row


async def accept_event_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    row = await _our_join(ctx, activity, actor)
    row.state = "accepted"
    return "done"


async def reject_event_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    row = await _our_join(ctx, activity, actor)
    await ctx.db.delete(row)
    return "done"
