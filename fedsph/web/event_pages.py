"""Event pages: a project's (or the hub's) events, one event, the members' form, iCal feeds, and
the Join or Leave a member sends to another server's event.

How an event is shown is in fedsph/web/event_views.py, the form's fields in event_forms.py.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict
from sqlalchemy import Select, literal, select, union_all

from fedsph.accounts import may_act_as
from fedsph.core import vocab
from fedsph.errors import Gone, NotFound, UserError
from fedsph.events import ical
from fedsph.events import service as events
from fedsph.events.fields import JOIN_MODES
from fedsph.events.participation import send_join, send_leave
from fedsph.federation.actors import actor_uris
from fedsph.hub import directory_query
from fedsph.hub.membership import local_hub
from fedsph.i18n import N_
from fedsph.models import Actor, Event, Object, utcnow
from fedsph.web.auth_middleware import local_actor_or_404, read_form, require_member
from fedsph.web.event_forms import edited_fields, fields_from_form, form_from_fields, words
from fedsph.web.event_views import event_rows, event_view, events_of
from fedsph.web.keys import READERS, REMOTE, URLS, USER, WRITERS
from fedsph.web.languages import visitor_lang
from fedsph.web.render import ap_response, error_message, html_response, wants_html

# /p/… is where events live (their `url`); /actors/… beside the other project pages.
PREFIXES = ("/p/{username}/events", "/actors/{username}/events")
HUB_PAST_SHOWN = 10  # the hub's page lists only the latest past events


async def list_page(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    lang = visitor_lang(request)
    async with request.app[READERS]() as db:
        views = [await event_view(db, *row, lang) for row in await events_of(db, [actor.id])]
        user = request.get(USER)
        member = user is not None and await may_act_as(db, user, actor)
    now = utcnow()
    return html_response(request, "event_list.html", actor=actor, is_member=member,
                         upcoming=[v for v in views if (v["event"].ends_at or
                                                        v["event"].starts_at) >= now],
                         past=[v for v in views if (v["event"].ends_at or
                                                    v["event"].starts_at) < now],
                         ics_url=f"/p/{actor.username}/events.ics")


async def _event_or_404(request: web.Request, actor: Actor) -> tuple[Object, Event]:
    uri = request.app[URLS].object(request.match_info["object_id"])
    async with request.app[READERS]() as db:
        obj = await db.scalar(select(Object).where(Object.uri == uri, Object.actor_id == actor.id,
                                                   Object.type == "Event"))
        event = await db.get(Event, obj.id) if obj is not None else None
    if obj is None or event is None:
        raise NotFound(N_("There is no such event here."))
    if obj.deleted_at is not None:
        raise Gone(N_("This event was cancelled."))
    return obj, event


async def event_page(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    obj, event = await _event_or_404(request, actor)
    if not wants_html(request):
        return ap_response(obj.document or {})
    async with request.app[READERS]() as db:
        view = await event_view(db, obj, event, actor, visitor_lang(request))
        user = request.get(USER)
        member = user is not None and await may_act_as(db, user, actor)
    return html_response(request, "event.html", e=view, actor=actor, is_member=member,
                         join_mode=vocab.label("join_mode", event.join_mode,
                                               visitor_lang(request)))


async def _related_projects(request: web.Request, form: MultiDict) -> list[str]:
    """The form's related projects: a `name@host` handle is looked up as the command line does
    (WebFinger: done before the write transaction opens); an address is kept as written, and
    publish_event checks it."""
    entries = words(form.get("related"))
    handles = [e for e in entries if "@" in e and not e.startswith(("http://", "https://"))]
    found = dict(zip(handles, await actor_uris(request.app[WRITERS], request.app[REMOTE],
                                               handles)))
    return [found.get(e, e) for e in entries]


def _render_form(request, actor: Actor, form: MultiDict, error: str | None = None,
                 status: int = 200, obj: Object | None = None) -> web.Response:
    action = (f"/p/{actor.username}/events/{obj.uri.rsplit('/', 1)[1]}/edit" if obj
              else f"/p/{actor.username}/events/new")
    return html_response(request, "event_form.html", status=status, actor=actor, form=form,
                         error=error, kinds=tuple(vocab.EVENT_KIND),
                         join_modes=JOIN_MODES, editing=obj is not None, action=action,
                         event_url=obj.url[len(request.app[URLS].base):] if obj else None)


async def form_page(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    return _render_form(request, actor, MultiDict({"tz": "UTC", "join_mode": "free"}))


async def form_submit(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    form = await read_form(request)
    try:
        related = await _related_projects(request, form)
        async with request.app[WRITERS]() as db, db.begin():
            obj = await events.publish_event(db, request.app[URLS], await db.get(Actor, actor.id),
                                             **{**fields_from_form(form),
                                                "related_projects": related})
    except UserError as exc:
        return _render_form(request, actor, form, error_message(request, exc), status=400)
    raise web.HTTPSeeOther(obj.url[len(request.app[URLS].base):])


async def edit_page(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    obj, event = await _event_or_404(request, actor)
    return _render_form(request, actor, form_from_fields(events.event_fields(obj, event)),
                        obj=obj)


async def edit_submit(request: web.Request) -> web.Response:
    """Save the edit form: Update{Event} to the followers, and the announcing Note rewritten."""
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    obj, event = await _event_or_404(request, actor)
    form = await read_form(request)
    try:
        related = await _related_projects(request, form)
        async with request.app[WRITERS]() as db, db.begin():
            fields = {**edited_fields(events.event_fields(obj, event), form),
                      "related_projects": related}
            await events.edit_event(db, request.app[URLS], await db.get(Actor, actor.id),
                                    await db.get(Object, obj.id), **fields)
    except UserError as exc:
        return _render_form(request, actor, form, error_message(request, exc), status=400,
                            obj=obj)
    raise web.HTTPSeeOther(obj.url[len(request.app[URLS].base):])


async def cancel_submit(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    obj, _ = await _event_or_404(request, actor)
    async with request.app[WRITERS]() as db, db.begin():
        await events.cancel_event(db, request.app[URLS], await db.get(Actor, actor.id),
                                  await db.get(Object, obj.id))
    raise web.HTTPSeeOther(f"/p/{actor.username}/events")


def _ics(body: bytes, name: str) -> web.Response:
    response = web.Response(body=body, content_type=ical.CONTENT_TYPE, charset="utf-8")
    response.headers["Content-Disposition"] = f'inline; filename="{name}.ics"'
    return response


async def actor_ics(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    async with request.app[READERS]() as db:
        rows = await ical.calendar_rows(db, [actor.id])
    return _ics(ical.build_calendar(actor.name or actor.username, rows), actor.username)


async def hub_and_event_actors(db) -> tuple[Actor, Select]:
    """The hub, and the actors whose events are the hub's: itself and its listed member
    projects (approved, not blocked), wherever they live (the page and the iCal feed both list
    these). A subquery over the directory's index: no member is loaded."""
    hub = await local_hub(db)
    if hub is None:
        raise NotFound(N_("This node is not a hub."))
    return hub, union_all(select(literal(hub.id)), directory_query.listed_ids(hub.id))


async def hub_ics(request: web.Request) -> web.Response:
    async with request.app[READERS]() as db:
        hub, actor_ids = await hub_and_event_actors(db)
        rows = await ical.calendar_rows(db, actor_ids)
    return _ics(ical.build_calendar(hub.name or hub.username, rows), "hub-events")


async def hub_list_page(request: web.Request) -> web.Response:
    """/hub/events: upcoming events of the hub and its members, then the latest past ones.
    A remote event links to its own server's page, where one can take part."""
    lang = visitor_lang(request)
    now = utcnow()
    async with request.app[READERS]() as db:
        hub, actor_ids = await hub_and_event_actors(db)
        upcoming = await event_rows(db, actor_ids, True, now)
        past = await event_rows(db, actor_ids, False, now, HUB_PAST_SHOWN)
        views = [await event_view(db, *row, lang) for row in upcoming + past]
    for view in views:
        if not view["obj"].local:
            view["href"] = view["obj"].url or view["obj"].uri
    return html_response(request, "hub_events.html", hub_name=hub.name or hub.username,
                         query="", upcoming=views[:len(upcoming)], past=views[len(upcoming):])


async def _remote_event(db, uri: str) -> tuple[Object, Actor]:
    obj = await db.scalar(select(Object).where(Object.uri == uri, Object.local.is_(False)))
    if obj is None or obj.type != "Event":
        raise NotFound(N_("This node knows no such event."))
    if obj.deleted_at is not None:
        raise Gone(N_("This event was cancelled."))
    return obj, await db.get(Actor, obj.actor_id)


async def remote_join_submit(request: web.Request) -> web.Response:
    """POST /remote/events/join or /leave (uri, project): send the Join or Leave as the project,
    then back to the event's page, which shows the answer once the organisers send it."""
    form = await read_form(request)
    uri = form.get("uri", "")
    async with request.app[READERS]() as db:
        project = await db.scalar(select(Actor).where(
            Actor.username == form.get("project", ""), Actor.local.is_(True),
            Actor.type == "Group"))
    if project is None:
        raise NotFound(N_("There is no such project here."))
    await require_member(request, project)
    send = send_leave if request.path.endswith("/leave") else send_join
    async with request.app[WRITERS]() as db, db.begin():
        obj, owner = await _remote_event(db, uri)
        await send(db, request.app[URLS], await db.get(Actor, project.id), obj, owner)
    raise web.HTTPSeeOther("/remote/objects?" + urlencode({"uri": uri}))


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        app.router.add_get(prefix, list_page)
        app.router.add_get(prefix + ".ics", actor_ics)
        app.router.add_get(prefix + "/new", form_page)
        app.router.add_post(prefix + "/new", form_submit)
        app.router.add_get(prefix + "/{object_id}", event_page)
        app.router.add_get(prefix + "/{object_id}/edit", edit_page)
        app.router.add_post(prefix + "/{object_id}/edit", edit_submit)
        app.router.add_post(prefix + "/{object_id}/cancel", cancel_submit)
    app.router.add_get("/hub/events.ics", hub_ics)
    app.router.add_get("/hub/events", hub_list_page)
    app.router.add_post("/remote/events/join", remote_join_submit)
    app.router.add_post("/remote/events/leave", remote_join_submit)
