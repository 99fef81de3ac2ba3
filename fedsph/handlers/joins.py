"""Join and Leave name either a hub (an actor: membership) or an event (an object).

The answers to our own Joins (Accept, Reject) are routed the same way, by what the Join named.
"""

from __future__ import annotations

from fedsph.federation.activitystreams import get_id
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.incoming import HandlerContext
from fedsph.handlers.answers import answered_activity
from fedsph.handlers.events import (
    accept_event_join,
    handle_event_join,
    handle_event_leave,
    reject_event_join,
)
from fedsph.handlers.hubs import (
    accept_hub_join,
    actor_and_rules,
    handle_hub_join,
    handle_hub_leave,
    reject_hub_join,
)
from fedsph.models import Actor


async def _names_an_actor(ctx: HandlerContext, uri: str | None) -> bool:
    return bool(uri) and await get_actor_by_uri(ctx.db, uri) is not None


async def _join_target(ctx: HandlerContext, answer: dict) -> str | None:
    """What the Join that `answer` (an Accept or Reject) answers had as its object."""
    join = await answered_activity(ctx, answer)
    return get_id(join.get("object")) if join is not None else None


async def handle_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    uri = get_id(activity.get("object"))
    named = await actor_and_rules(ctx, uri) if uri else None
    if named is not None:  # read once, with its hub rules: the hub's handler needs them too
        return await handle_hub_join(ctx, activity, actor, named)
    return await handle_event_join(ctx, activity, actor)


async def handle_leave(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    if await _names_an_actor(ctx, get_id(activity.get("object"))):
        return await handle_hub_leave(ctx, activity, actor)
    return await handle_event_leave(ctx, activity, actor)


async def join_accepted(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    if await _names_an_actor(ctx, await _join_target(ctx, activity)):
        return await accept_hub_join(ctx, activity, actor)
    return await accept_event_join(ctx, activity, actor)


async def join_rejected(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    if await _names_an_actor(ctx, await _join_target(ctx, activity)):
        return await reject_hub_join(ctx, activity, actor)
    return await reject_event_join(ctx, activity, actor)
