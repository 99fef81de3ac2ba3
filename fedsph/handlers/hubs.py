"""Hub membership as activities: Join and Leave of a hub, Invite to one, and their answers."""

from __future__ import annotations

from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.models import Actor


async def handle_hub_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("hub joins are not handled yet")


async def handle_hub_leave(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("hub leaves are not handled yet")


async def handle_invite(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("invitations are not handled yet")


async def accept_hub_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("hub joins are not handled yet")


async def reject_hub_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("hub joins are not handled yet")


async def accept_invite(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("invitations are not handled yet")


async def reject_invite(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("invitations are not handled yet")
