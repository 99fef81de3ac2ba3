"""Follow, and the Accept or Reject of our Follow: the follow handshake."""

from __future__ import annotations

from sqlalchemy import delete, select

from fedsph.federation.activitystreams import PUBLIC_ALIASES, get_id
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.hub import relay
from fedsph.hub.membership import hub_follow_agreed
from fedsph.models import Actor, Follow
from fedsph.projects.notifications import notify
from fedsph.projects.outbox import answer_follow


async def handle_follow(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """Someone follows one of our actors: accept now, or wait for a member to approve."""
    if get_id(activity.get("object")) in PUBLIC_ALIASES:
        return await relay.subscribe(ctx, activity, actor)  # a relay subscription (FEP-ae0c)
    target = await get_actor_by_uri(ctx.db, get_id(activity.get("object")) or "")
    if target is None or not target.local or target.type == "Application":
        raise Ignored("Follow of an actor that is not ours")
    relation = await ctx.db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == target.id))
    is_new = relation is None
    # A local follower's Follow row is made by fedsph.projects.outbox.follow before this handler sees
    # the activity (same id): that is still a new follow, worth a notification.
    first_time = is_new or relation.activity_uri == activity["id"]
    if is_new:
        relation = Follow(follower_id=actor.id, followed_id=target.id, state="pending")
        ctx.db.add(relation)
    relation.activity_uri = activity["id"]
    await ctx.db.flush()
    if (relation.state == "accepted" or not target.manually_approves
            or await hub_follow_agreed(ctx.db, actor, target)):
        # Accept again when already accepted: the other side may have lost our first Accept.
        await answer_follow(ctx.db, ctx.urls, relation, accept=True)
    if first_time:
        kind = "follow" if relation.state == "accepted" else "follow_request"
        await notify(ctx.db, [target], kind, actor, activity["id"])
    return "done"


async def _our_follow(ctx: HandlerContext, activity: dict, actor: Actor) -> Follow | None:
    """The Follow that an Accept/Reject from `actor` answers: by activity id, else by pair."""
    obj = activity.get("object")
    follow_id = get_id(obj)
    if follow_id:
        found = await ctx.db.scalar(select(Follow).where(
            Follow.activity_uri == follow_id, Follow.followed_id == actor.id))
        if found is not None:
            return found
    follower_uri = get_id(obj.get("actor")) if isinstance(obj, dict) else None
    if follower_uri is None:
        return None
    follower = await get_actor_by_uri(ctx.db, follower_uri)
    if follower is None or not follower.local:
        return None
    return await ctx.db.scalar(select(Follow).where(
        Follow.follower_id == follower.id, Follow.followed_id == actor.id))


async def follow_accepted(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    relation = await _our_follow(ctx, activity, actor)
    if relation is None:
        raise Ignored("Accept of nothing we asked for")
    relation.state = "accepted"
    return "done"


async def follow_rejected(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    relation = await _our_follow(ctx, activity, actor)
    if relation is None:
        raise Ignored("Reject of nothing we asked for")
    await ctx.db.execute(delete(Follow).where(Follow.id == relation.id))
    return "done"
