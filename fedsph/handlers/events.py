"""Joining and leaving events (Join / Leave of an Event, as Mobilizon sends them)."""

from __future__ import annotations

from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.models import Actor


async def handle_event_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("event joins are not handled yet")


async def handle_event_leave(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("event leaves are not handled yet")


async def accept_event_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("event joins are not handled yet")


async def reject_event_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("event joins are not handled yet")
