"""Pages of solidarity links: a project's members propose, answer and withdraw links
(/actors/{username}/links), and a hub shows the graph of its members' links between regions
(/hub/links and /hub/links.json). `link_views` also serves the project page's list of links.

Every POST has passed the CSRF check of fedsph/web/auth_middleware.py before it reaches a handler.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from fedsph.core import vocab
from fedsph.errors import BadRequest, NotFound, UserError
from fedsph.federation.actors import get_actor_by_uri
from fedsph.hub.links_graph import hub_graph, region_layout, region_table
from fedsph.hub.membership import local_hub
from fedsph.i18n import N_
from fedsph.links import service as links
from fedsph.models import Actor
from fedsph.web.auth_middleware import local_actor_or_404, read_form, require_member
from fedsph.web.documents import forget_actor
from fedsph.web.hrefs import page_href, remote_href
from fedsph.web.keys import DOCUMENTS, READERS, REMOTE, SETTINGS, URLS, WRITERS
from fedsph.web.languages import visitor_lang
from fedsph.web.render import error_message, html_response, json_response

DONE = ("proposed", "accepted", "rejected", "withdrawn")


@dataclass
class LinkView:
    id: int
    kind: str
    label: str
    state: str
    proposer_name: str
    proposer_href: str
    partner_name: str
    partner_href: str
    incoming: bool  # proposed to the project the page is about


def _name(actor: Actor) -> str:
    return actor.name or f"{actor.username}@{actor.domain}"


async def link_views(db, project: Actor, lang: str,
                     states: tuple[str, ...] = ("accepted",)) -> list[LinkView]:
    """The project's links as a page shows them; a remote project's from its carried profile."""
    if project.local:
        rows = await links.links_of(db, project, states)
        return [LinkView(link.id, link.kind, vocab.label("solidarity_link", link.kind, lang),
                         link.state, _name(proposer), page_href(proposer), _name(partner),
                         page_href(partner), partner.id == project.id)
                for link, proposer, partner in rows]
    views = []
    for number, carried in enumerate((project.profile or {}).get("solidarity_links", [])):
        ends = []
        for uri in (carried["subject"], carried["object"]):
            actor = await get_actor_by_uri(db, uri)
            # An end we never fetched is shown by its address, through our remote page.
            ends.append((_name(actor), page_href(actor)) if actor
                        else (uri, remote_href("actors", uri)))
        views.append(LinkView(number, carried["kind"],
                              vocab.label("solidarity_link", carried["kind"], lang), "accepted",
                              *ends[0], *ends[1], carried["object"] == project.uri))
    return views


async def _render(request: web.Request, actor: Actor, status: int = 200, **extra):
    lang = visitor_lang(request)
    async with request.app[READERS]() as db:
        views = await link_views(db, actor, lang, states=links.OPEN_STATES)
        not_shown = await links.count_links(db, actor) - len(views)
    done = request.query.get("done")
    return html_response(
        request, "links_manage.html", status=status, actor=actor,
        accepted=[v for v in views if v.state == "accepted"],
        incoming=[v for v in views if v.state == "proposed" and v.incoming],
        outgoing=[v for v in views if v.state == "proposed" and not v.incoming],
        kinds=vocab.choices("solidarity_link", lang), done=done if done in DONE else None,
        not_shown=not_shown, **{"error": None, "partner": "", "kind": "", **extra})


async def manage_links(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    return await _render(request, actor)


async def links_action(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    form = await read_form(request)
    action = form.get("action", "")
    if action not in ("propose", "accept", "reject", "withdraw"):
        raise BadRequest(f"unknown action {action!r}")
    try:
        if action == "propose":
            await _propose(request, actor, form.get("partner", ""), form.get("kind", ""))
        else:
            await _decide(request, actor, action, form.get("link", ""))
    except UserError as exc:
        return await _render(request, actor, status=400, error=error_message(request, exc),
                             partner=form.get("partner", ""), kind=form.get("kind", ""))
    done = {"propose": "proposed", "accept": "accepted", "reject": "rejected"}.get(action, "withdrawn")
    raise web.HTTPSeeOther(f"/actors/{actor.username}/links?done={done}")


async def _propose(request: web.Request, actor: Actor, handle: str, kind: str) -> None:
    links.check_kind(kind)  # before any request to another server
    partner = await links.find_project(request.app[WRITERS], request.app[REMOTE],
                                       request.app[SETTINGS].domain, handle)
    async with request.app[WRITERS]() as db, db.begin():
        await links.propose_link(db, request.app[URLS], await db.get(Actor, actor.id),
                                 await db.get(Actor, partner.id), kind)


async def _decide(request: web.Request, actor: Actor, action: str, link_id: str) -> None:
    async with request.app[WRITERS]() as db, db.begin():
        project = await db.get(Actor, actor.id)
        link = await links.get_link(db, project, link_id)
        if action == "withdraw":
            await links.withdraw_link(db, request.app[URLS], project, link)
        elif link.partner_id != project.id:
            raise UserError(N_("Only the project that was offered a link can answer it."))
        else:
            await links.answer_link(db, request.app[URLS], link, accept=action == "accept")
        ends = [await db.get(Actor, link.proposer_id), await db.get(Actor, link.partner_id)]
    for end in ends:  # their documents now carry the change
        if end.local:
            forget_actor(request.app[DOCUMENTS], end.username)


# -- the hub's graph -------------------------------------------------------------------------------


async def _graph(request: web.Request) -> dict:
    async with request.app[READERS]() as db:
        hub = await local_hub(db)
        if hub is None:
            raise NotFound(N_("This node is not a hub."))
        return await hub_graph(db, hub)


async def hub_links_page(request: web.Request) -> web.Response:
    lang = visitor_lang(request)
    graph = await _graph(request)
    names = {node["id"]: node for node in graph["nodes"]}
    edges = [{"source": names[e["source"]], "target": names[e["target"]],
              "label": vocab.label("solidarity_link", e["kind"], lang)} for e in graph["edges"]]
    return html_response(request, "links_hub.html", table=region_table(graph, lang),
                         layout=region_layout(graph, lang), edges=edges)


async def hub_links_json(request: web.Request) -> web.Response:
    response = json_response(await _graph(request))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/actors/{username}/links", manage_links)
    app.router.add_post("/actors/{username}/links", links_action)
    app.router.add_get("/hub/links", hub_links_page)
    app.router.add_get("/hub/links.json", hub_links_json)
