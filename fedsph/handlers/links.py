"""Solidarity links as activities: Offer of a Relationship, its Accept or Reject, and Undo.

Each handler is idempotent: a link between two projects of this node was already changed by
fedsph/links/service.py when its activity comes back through the local inbox, and a server may send an
activity twice; neither changes anything a second time.
"""

from __future__ import annotations

from sqlalchemy import select

from fedsph.db import one_at_a_time
from fedsph.federation.activitystreams import get_id, get_type
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.blocks import host_of
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.links.service import (
    MAX_WAITING_OFFERS_PER_SERVER,
    kind_of,
    offers_waiting_from,
    open_link,
    refuse_offer,
    settle,
)
from fedsph.models import Actor, SolidarityLink


async def handle_offer(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """A project elsewhere offers one of ours a link: stored as proposed, for its members."""
    offered = activity.get("object")
    if get_type(offered) != "Relationship":
        raise Ignored("Offer of something other than a Relationship")
    # Only the sender can offer a link in its own name.
    if get_id(offered.get("subject")) != actor.uri:
        raise Ignored("Offer of a Relationship whose subject is not the sender")
    kind = kind_of(offered.get("relationship"))
    if kind is None:
        raise Ignored("Offer of a Relationship of a kind we do not know")
    partner = await get_actor_by_uri(ctx.db, get_id(offered.get("object")) or "")
    if partner is None or not partner.local or partner.type != "Group" or partner.id == actor.id:
        raise Ignored("Offer of a link to no project of ours")
    if actor.type != "Group":
        raise Ignored("Offer of a link from an actor that is not a project")
    offer_uri = activity.get("id")
    if not isinstance(offer_uri, str):
        raise Ignored("Offer without an id")
    if await ctx.db.scalar(select(SolidarityLink.id).where(SolidarityLink.offer_uri == offer_uri)):
        return "done"  # ours, through the local inbox, or a second delivery
    if await open_link(ctx.db, actor, partner, kind) is not None:
        raise Ignored(f"there is already an open {kind} link between these projects")
    await one_at_a_time(ctx.db, f"link offers from {host_of(actor.uri)}")  # the cap below
    if await offers_waiting_from(ctx.db, host_of(actor.uri)) >= MAX_WAITING_OFFERS_PER_SERVER:
        # Any remote Group can offer: one server may not fill our projects' pages and table.
        await refuse_offer(ctx.db, ctx.urls, partner, actor, offer_uri, kind)
        return "done"
    ctx.db.add(SolidarityLink(kind=kind, proposer_id=actor.id, partner_id=partner.id,
                              state="proposed", offer_uri=offer_uri))
    return "done"


async def _answered_link(ctx: HandlerContext, offer) -> SolidarityLink | None:
    uri = get_id(offer)
    if not uri:
        return None
    return await ctx.db.scalar(select(SolidarityLink).where(SolidarityLink.offer_uri == uri))


async def _answer(ctx: HandlerContext, activity: dict, actor: Actor, state: str) -> str:
    link = await _answered_link(ctx, activity.get("object"))
    if link is None:
        raise Ignored("answer to an Offer we do not know")
    if link.partner_id != actor.id:
        raise Ignored("answer to an Offer from someone it was not made to")
    if link.state == state:
        return "done"
    if link.state != "proposed":
        raise Ignored(f"answer to a link that is {link.state}")
    await settle(ctx.db, ctx.urls, link, state, activity.get("id"))
    return "done"


async def offer_accepted(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    return await _answer(ctx, activity, actor, "accepted")


async def offer_rejected(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    return await _answer(ctx, activity, actor, "rejected")


async def undo_link(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """Undo{Offer} by the proposer or Undo{Accept} by the partner: the link is withdrawn."""
    undone = activity.get("object")
    undone_type = get_type(undone)
    if undone_type == "Accept":
        link = await _answered_link(ctx, undone.get("object"))
        if link is None and get_id(undone):
            link = await ctx.db.scalar(select(SolidarityLink).where(
                SolidarityLink.answer_uri == get_id(undone)))
        side = link.partner_id if link is not None else None
    else:
        link = await _answered_link(ctx, undone)
        side = link.proposer_id if link is not None else None
        if link is None and isinstance(undone, str):  # the bare id of the partner's Accept
            link = await ctx.db.scalar(select(SolidarityLink).where(
                SolidarityLink.answer_uri == undone))
            side, undone_type = (link.partner_id if link is not None else None), "Accept"
    if link is None:
        raise Ignored("Undo of a link we do not know")
    if side != actor.id:
        raise Ignored("Undo of a link by a project that did not send what it undoes")
    if link.state == "withdrawn":
        return "done"
    if link.state not in ("proposed", "accepted"):
        raise Ignored(f"Undo of a link that is {link.state}")
    if undone_type == "Accept" and link.state != "accepted":
        raise Ignored("Undo of an Accept of a link that was not accepted")
    await settle(ctx.db, ctx.urls, link, "withdrawn")
    return "done"
