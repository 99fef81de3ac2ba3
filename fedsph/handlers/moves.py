"""Move: an account announces that it moved to another one (Mastodon's account migration)."""

from __future__ import annotations

from sqlalchemy import select

from fedsph.federation.activitystreams import get_id
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.inbox import is_blocked
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.models import Actor, Follow
from fedsph.projects.outbox import follow, unfollow


async def handle_move(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """Believed as Mastodon believes it: the new account, fetched afresh by the worker before
    this handler ran, lists the old one in `alsoKnownAs`. Our actors that followed the old
    account then unfollow it and follow the new one."""
    if get_id(activity.get("object")) != actor.uri:
        raise Ignored("Move of an account other than its sender")
    target_uri = get_id(activity.get("target"))
    if not target_uri or target_uri == actor.uri:
        raise Ignored("Move without a target account")
    target = await get_actor_by_uri(ctx.db, target_uri)
    if target is None:
        raise Ignored("the Move's target account could not be fetched")
    if target.local:
        raise Ignored("Move to an account on this node")
    if actor.uri not in (target.also_known_as or []):
        raise Ignored("the target account does not list the moved account in alsoKnownAs")
    if target.moved_to:
        raise Ignored("the target account has moved on itself")
    actor.moved_to = target.uri
    followers = list(await ctx.db.scalars(
        select(Actor).join(Follow, Follow.follower_id == Actor.id)
        .where(Follow.followed_id == actor.id, Actor.local.is_(True)).order_by(Actor.id)))
    target_blocked = await is_blocked(ctx.db, target.uri)
    for local in followers:
        await unfollow(ctx.db, ctx.urls, local, actor)
        if not target_blocked:
            await follow(ctx.db, ctx.urls, local, target)
    return "done"
