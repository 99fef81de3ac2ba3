"""Solidarity links between projects: proposed with an Offer, answered with Accept or Reject,
withdrawn by either side with an Undo (the inbox side is fedsph/handlers/links.py).

Activities (see FEDERATION.md "Solidarity links"):
    Offer{object: Relationship{subject: proposer, relationship: KIND, object: partner},
          target: partner}
    Accept{Offer} / Reject{Offer} from the partner, the Offer embedded
    Undo{Offer} from the proposer, Undo{Accept{Offer}} from the partner

A link is kept on both nodes (SolidarityLink). Accepted links are carried in both projects'
actor documents as `solidarityLinks` (profile["solidarity_links"] holds them for the document
builder, refreshed by `carry_links` whenever a link is accepted or withdrawn), and both projects
send Update{Group} to their followers then, so hubs learn them.
"""

from __future__ import annotations

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from fedsph.core import vocab
from fedsph.core.urls import URLs
from fedsph.errors import N_, UserError
from fedsph.federation import emit
from fedsph.federation.activitystreams import AS_CONTEXT, build_activity, get_id
from fedsph.federation.actors import find_actor, get_actor_by_uri, get_local_actor
from fedsph.federation.blocks import host_of
from fedsph.federation.remote import Remote
from fedsph.models import Actor, SolidarityLink, utcnow
from fedsph.projects.profile import send_actor_update
from fedsph.projects.profile_wire import CONTEXT, PREFIX
from fedsph.projects.queries import MAX_LISTED

KINDS = vocab.VOCABULARIES["solidarity_link"]
OPEN_STATES = ("proposed", "accepted")
# Offers from one server that may wait for an answer here; more are rejected and not stored.
MAX_WAITING_OFFERS_PER_SERVER = 20
# The terms an Offer needs besides ActivityStreams: `relationship` read as a fedsph term.
OFFER_CONTEXT = [AS_CONTEXT, {PREFIX: CONTEXT[PREFIX], "relationship": CONTEXT["relationship"],
                              **{kind: CONTEXT[kind] for kind in KINDS}}]


def check_kind(kind: str) -> str:
    if not vocab.is_valid("solidarity_link", kind):
        raise UserError(N_("%(kind)r is not a kind of solidarity link; kinds: %(kinds)s"), kind=kind,
                        kinds=", ".join(KINDS))
    return kind


# -- the documents (pure) -------------------------------------------------------------------------


def relationship(proposer_uri: str, kind: str, partner_uri: str) -> dict:
    return {"type": "Relationship", "subject": proposer_uri, "relationship": kind,
            "object": partner_uri}


def offer_document(offer_uri: str, proposer_uri: str, partner_uri: str, kind: str) -> dict:
    """The Offer of a link, without @context (it is embedded in answers and Undos as it is)."""
    return {"id": offer_uri, "type": "Offer", "actor": proposer_uri,
            "object": relationship(proposer_uri, kind, partner_uri),
            "target": partner_uri, "to": [partner_uri]}


def accept_document(answer_uri: str, partner_uri: str, offer: dict) -> dict:
    return {"id": answer_uri, "type": "Accept", "actor": partner_uri, "object": offer,
            "to": [offer["actor"]]}


def kind_of(relationship_value) -> str | None:
    """The kind slug of a Relationship's `relationship` (slug, fedsph:slug or the full IRI)."""
    value = get_id(relationship_value)
    if not isinstance(value, str):
        return None
    for prefix in (CONTEXT[PREFIX], PREFIX + ":"):
        value = value.removeprefix(prefix)
    return value if vocab.is_valid("solidarity_link", value) else None


# -- reading links ----------------------------------------------------------------------------------


async def open_link(db: AsyncSession, one: Actor, other: Actor, kind: str) -> SolidarityLink | None:
    """A proposed or accepted link of this kind between the two, whoever proposed it."""
    pair = or_(and_(SolidarityLink.proposer_id == one.id, SolidarityLink.partner_id == other.id),
               and_(SolidarityLink.proposer_id == other.id, SolidarityLink.partner_id == one.id))
    return await db.scalar(select(SolidarityLink).where(
        pair, SolidarityLink.kind == kind, SolidarityLink.state.in_(OPEN_STATES)))


def _links_query(project: Actor, states: tuple[str, ...]):
    return select(SolidarityLink).where(
        or_(SolidarityLink.proposer_id == project.id, SolidarityLink.partner_id == project.id),
        SolidarityLink.state.in_(states))


async def links_of(db: AsyncSession, project: Actor, states: tuple[str, ...] = OPEN_STATES,
                   limit: int | None = MAX_LISTED) -> list[tuple[SolidarityLink, Actor, Actor]]:
    """(link, proposer, partner) for the project's links in these states, newest first, in one
    query of at most `limit` rows. Offers waiting for the project come last: any remote Group
    can make one, so they must not push the project's own links off a page."""
    proposer, partner = aliased(Actor), aliased(Actor)
    waiting = and_(SolidarityLink.state == "proposed", SolidarityLink.partner_id == project.id)
    query = (_links_query(project, states).add_columns(proposer, partner)
             .join(proposer, proposer.id == SolidarityLink.proposer_id)
             .join(partner, partner.id == SolidarityLink.partner_id)
             .order_by(case((waiting, 1), else_=0), SolidarityLink.id.desc()))
    rows = await db.execute(query if limit is None else query.limit(limit))
    return [(link, proposer_row, partner_row) for link, proposer_row, partner_row in rows]


async def count_links(db: AsyncSession, project: Actor,
                      states: tuple[str, ...] = OPEN_STATES) -> int:
    """How many links the project has in these states (to say how many a page leaves out)."""
    return await db.scalar(select(func.count()).select_from(_links_query(project, states)
                                                            .subquery()))


async def offers_waiting_from(db: AsyncSession, host: str | None) -> int:
    """Offers from projects on `host` (normalised) that wait for an answer here."""
    proposers = await db.scalars(select(Actor.uri).join(
        SolidarityLink, SolidarityLink.proposer_id == Actor.id).where(
        Actor.local.is_(False), SolidarityLink.state == "proposed"))
    return sum(host_of(uri) == host for uri in proposers)


async def get_link(db: AsyncSession, project: Actor, link_id) -> SolidarityLink:
    """One of the project's links by id; UserError when it is not one of them."""
    try:
        number = int(link_id)
    except (TypeError, ValueError):  # what was typed is not a number: no such link
        number = 0
    # Out of a 64-bit row id's range is no link either, not an error of the database driver.
    link = await db.get(SolidarityLink, number) if 0 < number < 2**63 else None
    if link is None or project.id not in (link.proposer_id, link.partner_id):
        raise UserError(N_("%(project)s has no solidarity link %(link)s"), project=project.username,
                        link=link_id)
    return link


# -- what is carried in the profile ------------------------------------------------------------------


async def carry_links(db: AsyncSession, urls: URLs, project: Actor, announce: bool = True) -> bool:
    """Put the project's accepted links in its profile; with `announce`, send Update{Group} to
    its followers when they changed. Only for local projects. True when they changed."""
    if not project.local:
        return False
    carried = []
    for link, proposer, partner in await links_of(db, project, ("accepted",), limit=None):
        carried.append({"kind": link.kind, "subject": proposer.uri, "object": partner.uri})
    carried.sort(key=lambda c: (c["subject"], c["kind"], c["object"]))
    profile = dict(project.profile or {})
    if profile.get("solidarity_links", []) == carried:
        return False
    if carried:
        profile["solidarity_links"] = carried
    else:
        profile.pop("solidarity_links", None)
    project.profile = profile or None  # a new dict: the JSON column sees the change
    await db.flush()
    if announce:
        await send_actor_update(db, urls, project)
    return True


async def settle(db: AsyncSession, urls: URLs, link: SolidarityLink, state: str,
                 answer_uri: str | None = None) -> None:
    """Change the link's state and carry the change in the profiles of its local ends."""
    link.state = state
    if answer_uri:
        link.answer_uri = answer_uri
    if state in ("accepted", "rejected"):
        link.decided_at = utcnow()
    await db.flush()
    for actor_id in (link.proposer_id, link.partner_id):
        await carry_links(db, urls, await db.get(Actor, actor_id))


# -- sending ----------------------------------------------------------------------------------------


async def propose_link(db: AsyncSession, urls: URLs, project: Actor, partner: Actor,
                       kind: str) -> SolidarityLink:
    """`project` offers a link of `kind` to `partner`; it stays proposed until answered."""
    check_kind(kind)
    if not project.local or project.type != "Group":
        raise UserError(N_("only a project of this node can propose a solidarity link"))
    if partner.type != "Group":
        raise UserError(N_("%(handle)s is not a project"),
                        handle=f"{partner.username}@{partner.domain}")
    if partner.id == project.id:
        raise UserError(N_("a project cannot link to itself"))
    existing = await open_link(db, project, partner, kind)
    if existing is not None:
        raise UserError(N_("a %(kind)s link between %(project)s and %(partner)s is already "
                           "%(state)s"), kind=kind, project=project.username,
                        partner=f"{partner.username}@{partner.domain}", state=existing.state)
    offer = {"@context": OFFER_CONTEXT,
             **offer_document(urls.new_activity(), project.uri, partner.uri, kind)}
    link = SolidarityLink(kind=kind, proposer_id=project.id, partner_id=partner.id,
                          state="proposed", offer_uri=offer["id"])
    db.add(link)
    # A partner on this node gets the Offer through the local inbox; its handler finds the
    # link already stored (same offer id) and leaves it.
    await emit.send(db, project, offer, [partner], partner.uri)
    return link


async def _stored_offer(db: AsyncSession, link: SolidarityLink) -> tuple[dict, Actor, Actor]:
    proposer = await db.get(Actor, link.proposer_id)
    partner = await db.get(Actor, link.partner_id)
    return offer_document(link.offer_uri, proposer.uri, partner.uri, link.kind), proposer, partner


async def answer_link(db: AsyncSession, urls: URLs, link: SolidarityLink, accept: bool) -> None:
    """The partner accepts or rejects a proposed link (Accept/Reject with the Offer embedded)."""
    offer, proposer, partner = await _stored_offer(db, link)
    if not partner.local:
        raise UserError(N_("only the project that was offered the link can answer it"))
    if link.state != "proposed":
        raise UserError(N_("this link is %(state)s, not waiting for an answer"), state=link.state)
    verb = "Accept" if accept else "Reject"
    document = build_activity(verb, urls.new_activity(), partner.uri, offer, to=[proposer.uri])
    document["@context"] = OFFER_CONTEXT
    await emit.send(db, partner, document, [proposer], link.offer_uri)
    await settle(db, urls, link, "accepted" if accept else "rejected", document["id"])


async def refuse_offer(db: AsyncSession, urls: URLs, partner: Actor, proposer: Actor,
                       offer_uri: str, kind: str) -> None:
    """Reject an Offer that is not kept (no link row): only our Reject is stored and sent."""
    offer = offer_document(offer_uri, proposer.uri, partner.uri, kind)
    document = build_activity("Reject", urls.new_activity(), partner.uri, offer, to=[proposer.uri])
    document["@context"] = OFFER_CONTEXT
    await emit.send(db, partner, document, [proposer], offer_uri)


async def withdraw_link(db: AsyncSession, urls: URLs, project: Actor,
                        link: SolidarityLink) -> None:
    """Either side ends a link: the proposer with Undo{Offer} (also before any answer), the
    partner with Undo{Accept} (a partner that has not answered rejects instead)."""
    offer, proposer, partner = await _stored_offer(db, link)
    if project.id not in (proposer.id, partner.id) or not project.local:
        raise UserError(N_("only a project of this link can withdraw it"))
    if link.state not in OPEN_STATES:
        raise UserError(N_("this link is already %(state)s"), state=link.state)
    if project.id == proposer.id:
        undone, other = offer, partner
    elif link.state == "accepted":
        undone, other = accept_document(link.answer_uri, partner.uri, offer), proposer
    else:
        raise UserError(N_("this link is only proposed: reject it instead"))
    document = build_activity("Undo", urls.new_activity(), project.uri, undone, to=[other.uri])
    document["@context"] = OFFER_CONTEXT
    await emit.send(db, project, document, [other], undone["id"])
    await settle(db, urls, link, "withdrawn")


async def find_project(writers: async_sessionmaker[AsyncSession], remote: Remote, domain: str,
                       handle: str) -> Actor:
    """A project by handle (name@host, or a bare name on this node) or actor URL.

    Projects of this node are found without a request. Raises UserError when not found.
    """
    handle = handle.strip().lstrip("@")
    if not handle:
        raise UserError(N_("give the partner project's handle, like name@example.org"))
    name, _, host = handle.partition("@")
    async with writers() as db:
        if not handle.startswith(("http://", "https://")) and host in ("", domain):
            found = await get_local_actor(db, name)
        else:
            found = await get_actor_by_uri(db, handle)
        if found is not None:
            return found
    if host in ("", domain) and not handle.startswith(("http://", "https://")):
        raise UserError(N_("there is no project called %(name)r on this node"), name=name)
    return await find_actor(writers, remote, handle)
