"""Solidarity links as activities: Offer of a Relationship, its Accept or Reject, and Undo."""

from __future__ import annotations

from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.models import Actor


async def handle_offer(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("solidarity links are not handled yet")


async def accept_offer(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("solidarity links are not handled yet")


async def reject_offer(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    raise Ignored("solidarity links are not handled yet")


async def undo_link(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """Undo{Offer} by the proposer or Undo{Accept} by the partner: the link is withdrawn."""
    raise Ignored("solidarity links are not handled yet")
