"""Flag: another server reports one of our actors or posts to this node's admin."""

from __future__ import annotations

from sqlalchemy import select

from fedsph.federation.activitystreams import as_list, get_id
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.models import Actor, Object, Report

MAX_OBJECTS = 100
MAX_CONTENT = 10_000


async def _reported_actor(ctx: HandlerContext, uri: str) -> Actor | None:
    """Our actor at `uri`, or the local author of our object at `uri`."""
    if not ctx.urls.is_local(uri):
        return None
    found = await get_actor_by_uri(ctx.db, uri)
    if found is not None:
        return found if found.local else None
    return await ctx.db.scalar(select(Actor).join(Object, Object.actor_id == Actor.id).where(
        Object.uri == uri, Object.local.is_(True)))


async def handle_flag(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """Kept for the admin (`fedsph reports`) when it concerns one of our actors or posts.

    Mastodon sends the reported account and posts as `object` (a list), the comment as
    `content`, and signs as its instance actor when the reporter stays anonymous.
    """
    uris = [uri for uri in (get_id(o) for o in as_list(activity.get("object"))) if uri]
    target = None
    for uri in uris:
        target = await _reported_actor(ctx, uri)
        if target is not None:
            break
    if target is None:
        raise Ignored("Flag of nothing on this node")
    if await ctx.db.scalar(select(Report.id).where(Report.activity_uri == activity["id"])):
        return "done"
    content = activity.get("content")
    ctx.db.add(Report(
        activity_uri=activity["id"], reporter_id=actor.id, target_id=target.id,
        object_uris=uris[:MAX_OBJECTS],
        # Plain text in Mastodon's reports; kept as sent (templates escape, the CLI strips).
        content=content[:MAX_CONTENT] if isinstance(content, str) else None))
    return "done"
