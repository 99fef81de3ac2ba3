"""The project's side of hub membership on its Manage page: ask to join a hub, accept or decline
an invitation, leave. The same steps as `fedsph hub join/accept-invite/decline-invite/leave`
(fedsph/hub/commands.py), through fedsph.hub.membership.

The handlers take (request, project, user, form) like the other Manage actions
(fedsph/web/project_manage.py dispatches to them); a BadRequest carries a message the page shows.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from fedsph.errors import BadRequest, FetchError
from fedsph.federation.actors import get_actor_by_uri, resolve_handle
from fedsph.hub import membership as hubs
from fedsph.i18n import N_
from fedsph.models import Actor, HubMembership
from fedsph.projects import queries
from fedsph.web.keys import READERS, REMOTE, URLS, WRITERS


async def memberships(db, project: Actor) -> list[tuple[HubMembership, Actor]]:
    """The project's hubs with the state of each membership, for the Manage page: at most
    MAX_LISTED, the project's own (approved, requested) before strangers' invitations."""
    rows = await db.execute(
        select(HubMembership, Actor).join(Actor, Actor.id == HubMembership.hub_id)
        .where(HubMembership.project_id == project.id)
        .order_by(HubMembership.state == "invited", HubMembership.id)
        .limit(queries.MAX_LISTED))
    return [tuple(row) for row in rows]


async def membership_count(db, project: Actor) -> int:
    return await db.scalar(select(func.count(HubMembership.id)).where(
        HubMembership.project_id == project.id)) or 0


def _done(project: Actor, what: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/actors/{project.username}/manage?done={what}#hubs")


async def _hub_by_handle(request: web.Request, target: str) -> Actor:
    """The hub named by handle or URL, fetched again: an account may have become a hub since we
    last saw it. Network I/O, so before the transaction."""
    target = target.strip().lstrip("@")
    if not target:
        raise BadRequest(N_("Enter a hub's handle like hub@example.org or its address."))
    try:
        actor_id = await resolve_handle(request.app[WRITERS], request.app[REMOTE], target)
    except FetchError:  # every lookup failure, a bad document included
        raise BadRequest(N_("No hub was found at that handle or address.")) from None
    async with request.app[READERS]() as db:
        hub = await db.get(Actor, actor_id)
    if hub is None or not hubs.is_hub_actor(hub):
        raise BadRequest(N_("That account is not a hub."))
    return hub


async def _join(request, project, user, form):
    hub = await _hub_by_handle(request, form.get("handle", ""))
    async with request.app[WRITERS]() as db, db.begin():
        row = await hubs.membership(db, hub, project)
        if row is not None and row.state == "approved":
            raise BadRequest(N_("This project is already a member of that hub."))
        if row is not None and row.state == "requested":
            raise BadRequest(N_("This project has already asked to join that hub."))
        row = await hubs.request_join(db, request.app[URLS], await db.get(Actor, project.id),
                                      hub)
    # A hub that had invited the project: asking is accepting.
    raise _done(project, "hub_approved" if row.state == "approved" else "hub_requested")


async def _known_membership(db, project: Actor, form, states: tuple[str, ...]) -> Actor:
    """The hub of one of the project's memberships (by the hub's URI), in one of `states`."""
    hub = await get_actor_by_uri(db, form.get("hub", ""))
    row = await hubs.membership(db, hub, project) if hub is not None else None
    if row is None or row.state not in states:
        raise BadRequest(N_("This project has no such membership or invitation."))
    return hub


async def _answer_invitation(request, project, form, accept: bool):
    async with request.app[WRITERS]() as db, db.begin():
        hub = await _known_membership(db, project, form, ("invited",))
        answer = hubs.accept_invitation if accept else hubs.decline_invitation
        await answer(db, request.app[URLS], await db.get(Actor, project.id), hub)
    raise _done(project, "hub_approved" if accept else "hub_declined")


async def _accept(request, project, user, form):
    return await _answer_invitation(request, project, form, True)


async def _decline(request, project, user, form):
    return await _answer_invitation(request, project, form, False)


async def _leave(request, project, user, form):
    async with request.app[WRITERS]() as db, db.begin():
        hub = await _known_membership(db, project, form, ("requested", "approved"))
        await hubs.leave(db, request.app[URLS], await db.get(Actor, project.id), hub)
    raise _done(project, "hub_left")


MANAGE_ACTIONS = {
    "hub_join": _join,
    "hub_accept": _accept,
    "hub_decline": _decline,
    "hub_leave": _leave,
}
