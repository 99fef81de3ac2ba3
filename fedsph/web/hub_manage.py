"""/hub/manage: the hub's coordinators approve, reject and remove member projects, and
approve or end relay subscriptions (fedsph/hub/relay.py).

Who may coordinate: the node's admins and the members of the hub actor (as for any project's
manage page). Every POST passed the CSRF check (fedsph/web/auth_middleware.py) before it comes
here. In hub mode (FEDSPH_HUB=1) the hub is created when the application starts.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from fedsph.core.numbers import parse_id
from fedsph.errors import BadRequest, NotFound, UserError
from fedsph.hub import membership as hubs
from fedsph.hub import relay
from fedsph.i18n import N_
from fedsph.models import Actor, HubMembership
from fedsph.projects import queries
from fedsph.web.auth_middleware import read_form, require_member
from fedsph.web.keys import READERS, SETTINGS, URLS, WRITERS
from fedsph.web.render import error_message, html_response

ACTIONS = {"approve": hubs.approve, "reject": hubs.reject_or_remove,
           "withdraw": hubs.reject_or_remove, "remove": hubs.reject_or_remove}
RELAY_ACTIONS = {"relay-approve": True, "relay-reject": False}


async def _hub_or_404(request: web.Request) -> Actor:
    async with request.app[READERS]() as db:
        hub = await hubs.local_hub(db)
    if hub is None:
        raise NotFound(N_("This node is not a hub."))
    return hub


async def manage_page(request: web.Request) -> web.Response:
    hub = await _hub_or_404(request)
    await require_member(request, hub)
    async with request.app[READERS]() as db:
        groups = {state: await _listed(db, hub, state) for state in hubs.STATES}
        hidden = {state: await _count(db, hub, state) - len(groups[state])
                  for state in hubs.STATES}
        relays = await relay.relay_subscriptions(db, hub)
    return html_response(request, "hub_manage.html", hub=hub, groups=groups, hidden=hidden,
                         relays=relays, done=request.query.get("done"))


async def _listed(db, hub: Actor, state: str) -> list[tuple[HubMembership, Actor]]:
    """The first MAX_LISTED projects in `state`, oldest first: strangers can add rows."""
    rows = await db.execute(
        select(HubMembership, Actor).join(Actor, Actor.id == HubMembership.project_id)
        .where(HubMembership.hub_id == hub.id, HubMembership.state == state)
        .order_by(HubMembership.id).limit(queries.MAX_LISTED))
    return [(row, actor) for row, actor in rows]


async def _count(db, hub: Actor, state: str) -> int:
    return await db.scalar(select(func.count(HubMembership.id)).where(
        HubMembership.hub_id == hub.id, HubMembership.state == state)) or 0


async def manage_action(request: web.Request) -> web.Response:
    hub = await _hub_or_404(request)
    await require_member(request, hub)
    form = await read_form(request)
    if form.get("action") in RELAY_ACTIONS:
        return await _relay_action(request, hub, form)
    action = ACTIONS.get(form.get("action", ""))
    if action is None:
        raise BadRequest(N_("This form could not be accepted: reload the page and try again."))
    return await _act_on_chosen(request, form, "project", N_("No project was chosen."),
                                lambda db, project: action(db, request.app[URLS], hub, project))


async def _relay_action(request: web.Request, hub: Actor, form) -> web.Response:
    """Approve a relay subscription, or refuse or end one (Reject)."""
    decision = RELAY_ACTIONS[form["action"]]
    return await _act_on_chosen(
        request, form, "subscriber", N_("No server was chosen."),
        lambda db, subscriber: relay.decide_subscription(db, request.app[URLS], hub, subscriber,
                                                         decision))


async def _act_on_chosen(request: web.Request, form, field: str, missing: str,
                         act) -> web.Response:
    """Run `act(db, actor)` on the actor the form chose (by row id), then back to the page."""
    actor_id = parse_id(form.get(field))
    if actor_id is None:
        raise BadRequest(missing)
    async with request.app[WRITERS]() as db, db.begin():
        actor = await db.get(Actor, actor_id)
        if actor is None:
            raise BadRequest(missing)
        try:
            await act(db, actor)
        except UserError as exc:
            raise BadRequest(error_message(request, exc)) from None
    # Post/redirect/get: reloading the page does not send the form again.
    raise web.HTTPSeeOther(f"/hub/manage?done={form['action']}")


async def ensure_hub_on_startup(app: web.Application) -> None:
    """Hub mode: make sure the hub exists (runs after the database is open)."""
    if app[SETTINGS].hub:
        await hubs.ensure_hub_exists(app[WRITERS], app[URLS], app[SETTINGS])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/hub/manage", manage_page)
    app.router.add_post("/hub/manage", manage_action)
