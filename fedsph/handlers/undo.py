"""Undo of a Follow, Like or Announce (or of an activity whose type is not given)."""

from __future__ import annotations

from sqlalchemy import or_, select

from fedsph.federation.activitystreams import get_id, get_type
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.models import Actor, Follow, Reaction


async def undo_follow_or_reaction(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    obj = activity.get("object")
    undone_id = get_id(obj)
    undone_type = get_type(obj)
    if undone_id is None:
        raise Ignored("Undo without an object")
    if undone_type in (None, "Like", "Announce", "EmojiReact"):
        # Through the session, not a bulk DELETE: a boost taken back streams a `delete` of its
        # status id (fedsph/projects/stream_events.py sees only the session's deletes).
        reaction = await ctx.db.scalar(select(Reaction).where(
            Reaction.activity_uri == undone_id, Reaction.actor_id == actor.id))
        if reaction is not None:
            await ctx.db.delete(reaction)
            return "done"
    if undone_type in (None, "Follow"):
        conditions = [Follow.activity_uri == undone_id]
        target_uri = get_id(obj.get("object")) if isinstance(obj, dict) else None
        target = await get_actor_by_uri(ctx.db, target_uri) if target_uri else None
        if target is not None:
            conditions.append(Follow.followed_id == target.id)
        relation = await ctx.db.scalar(select(Follow).where(
            Follow.follower_id == actor.id, or_(*conditions)))
        if relation is not None:
            await ctx.db.delete(relation)
            return "done"
    raise Ignored(f"Undo of {undone_type or 'an unknown activity'} we do not have")
