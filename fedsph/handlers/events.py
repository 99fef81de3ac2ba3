"""Joins and Leaves of our events, as Mobilizon sends them, and the answers (Accept, Reject)
to our own Joins of other servers' events.

What we send (Join, Leave, and our answers to Joins) lives in fedsph/events/participation.py.
"""

from __future__ import annotations

from sqlalchemy import select

from fedsph.events.participation import answer_participant
from fedsph.events.service import refresh_document
from fedsph.federation.activitystreams import get_id, same_origin
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.models import Activity, Actor, Event, EventParticipant, Object


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
