"""Like and Announce of our posts, counted as reactions."""

from __future__ import annotations

from sqlalchemy import select

from fedsph.activitystreams import get_id
from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.models import Actor, Reaction
from fedsph.notifications import REACTION_NOTIFICATIONS, notify
from fedsph.remote_objects import get_object


async def _react(ctx: HandlerContext, activity: dict, actor: Actor, kind: str) -> str:
    if actor.local:
        # Our own actors' reactions are recorded (and undone, and notified) by the outbox when
        # they happen; a copy handled here later could bring back one that was undone since.
        raise Ignored(f"{kind} by one of our actors, recorded when it was sent")
    object_uri = get_id(activity.get("object"))
    if not object_uri or not ctx.urls.is_local(object_uri):
        raise Ignored(f"{kind} of something that is not ours")
    obj = await get_object(ctx.db, object_uri)
    if obj is None or obj.deleted_at is not None:
        raise Ignored(f"{kind} of an object we do not have")
    exists = await ctx.db.scalar(select(Reaction.id).where(Reaction.activity_uri == activity["id"]))
    if exists is None:
        ctx.db.add(Reaction(type=kind, actor_id=actor.id, object_uri=object_uri,
                            activity_uri=activity["id"]))
        owner = await ctx.db.get(Actor, obj.actor_id)
        await notify(ctx.db, [owner], REACTION_NOTIFICATIONS[kind], actor, activity["id"], object_uri)
    return "done"


async def handle_like(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    return await _react(ctx, activity, actor, "Like")


async def handle_announce(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    return await _react(ctx, activity, actor, "Announce")
