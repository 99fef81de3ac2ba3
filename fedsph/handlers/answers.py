"""Accept, Reject and Undo name another activity; which handler runs depends on its type.

The answered (or undone) activity arrives embedded, or as a bare id. A bare id of an activity
we sent is looked up among our activities; otherwise the type is unknown (None) and the
handlers for Follow (Accept/Reject) or reactions and follows (Undo) try it, as most servers
answer a Follow that way.

Each feature registers its handlers in fedsph/handlers/__init__.py (ACCEPTED, REJECTED, UNDONE):
the follow handshake, hub membership (Join, Invite), solidarity links (Offer), events (Join).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from sqlalchemy import select

from fedsph.federation.activitystreams import get_id, get_type
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.models import Activity, Actor, SolidarityLink

Handler = Callable[[HandlerContext, dict, Actor], Awaitable[str]]


async def recorded_activity(ctx: HandlerContext, uri: str | None) -> dict | None:
    """Our recorded activity `uri`, parsed; loaded once per handler call (ctx.answered)."""
    if not uri:
        return None
    if uri not in ctx.answered:
        body = await ctx.db.scalar(select(Activity.body).where(Activity.uri == uri))
        ctx.answered[uri] = orjson.loads(body) if body is not None else None
    return ctx.answered[uri]


async def answered_activity(ctx: HandlerContext, activity: dict) -> dict | None:
    """The activity an Accept or Reject answers: embedded, or one we recorded (None if not)."""
    obj = activity.get("object")
    if isinstance(obj, dict):
        return obj
    return await recorded_activity(ctx, get_id(obj))


async def answered_type(ctx: HandlerContext, activity: dict) -> str | None:
    """The type of the activity `activity` answers or undoes, when it can be known."""
    obj = activity.get("object")
    if get_type(obj):
        return get_type(obj)
    uri = get_id(obj)
    if not uri:
        return None
    ours = await recorded_activity(ctx, uri)
    if ours is not None:
        return get_type(ours)
    # Another server's Offer (or its Accept of ours), named by id in its Undo: a link's key.
    link = await ctx.db.scalar(select(SolidarityLink).where(
        (SolidarityLink.offer_uri == uri) | (SolidarityLink.answer_uri == uri)).limit(1))
    if link is not None:
        return "Offer" if link.offer_uri == uri else "Accept"
    return None


async def dispatch(table: dict[str | None, Handler], what: str, ctx: HandlerContext,
                   activity: dict, actor: Actor) -> str:
    kind = await answered_type(ctx, activity)
    handler = table.get(kind) or (table.get(None) if kind not in table else None)
    if handler is None:
        raise Ignored(f"{what} of a {kind}, which we do not handle")
    return await handler(ctx, activity, actor)
