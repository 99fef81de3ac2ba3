"""Event pages: a project's (or the hub's) events, one event, the members' form, iCal feeds.

Every time is shown in the event's own time zone, named next to it: a meeting in Montevideo is
at 09:00 Montevideo time for everyone, wherever they read it.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

from aiohttp import web
from multidict import MultiDict
from sqlalchemy import func, select

from fedsph.accounts import may_act_as
from fedsph.core import vocab
from fedsph.errors import Gone, NotFound, UserError
from fedsph.events import ical
from fedsph.events import service as events
from fedsph.federation.actors import actor_uris
from fedsph.handlers.events import send_join, send_leave
from fedsph.hub.membership import approved_projects, local_hub
from fedsph.i18n import N_, pick_translation
from fedsph.models import Actor, Event, EventParticipant, Object, utcnow
from fedsph.projects import queries
from fedsph.web.auth_middleware import local_actor_or_404, read_form, require_member
from fedsph.web.keys import REMOTE, SESSIONS, URLS, USER, WRITER
from fedsph.web.pages import language_name, page_href, visitor_lang
from fedsph.web.render import ap_response, error_message, html_response, sanitized, wants_html

# /p/… is where events live (their `url`); /actors/… beside the other project pages.
PREFIXES = ("/p/{username}/events", "/actors/{username}/events")
FORM_FIELDS = ("name", "lang", "text", "kind", "start", "end", "tz", "place", "address",
               "online", "languages", "interpretation", "join_mode", "related")
HUB_PAST_SHOWN = 10  # the hub's page lists only the latest past events


def _when(event: Event) -> dict:
    start = events.local_time(event.starts_at, event.timezone)
    end = events.local_time(event.ends_at, event.timezone)
    same_day = end is not None and end.date() == start.date()
    return {"date": f"{start:%Y-%m-%d}", "start": f"{start:%H:%M}",
            "end": (f"{end:%H:%M}" if same_day else f"{end:%Y-%m-%d %H:%M}") if end else None,
            "tz": event.timezone or "UTC", "iso": start.isoformat(),
            "end_iso": end.isoformat() if end else None}


async def _actors_named(db, uris) -> list[tuple[str, str]]:
    """(label, link) for actor URIs: their stored name when we know them."""
    known = {a.uri: a for a in await db.scalars(select(Actor).where(Actor.uri.in_(uris or [])))}
    return [((known[u].name or known[u].username) if u in known else u,
             (known[u].url or u) if u in known else u) for u in uris or []]


async def event_view(db, obj: Object, event: Event, actor: Actor, lang: str) -> dict:
    name, name_lang = pick_translation(obj.name_map, lang, obj.name, obj.language)
    content, content_lang = pick_translation(obj.content_map, lang, obj.content, obj.language)
    place = obj.place or {}
    address = place.get("address") if isinstance(place.get("address"), dict) else {}
    return {
        "obj": obj, "event": event, "actor": actor, "name": name, "name_lang": name_lang,
        "content": sanitized(content), "content_lang": content_lang, "when": _when(event),
        "href": obj.url if obj.local else f"/remote/objects?uri={quote(obj.uri, safe='')}",
        "place": place.get("name"),
        "address": ", ".join(v for k, v in address.items() if k != "type" and v),
        "online_url": event.online_url,
        "languages": [language_name(t) for t in event.languages or []],
        "interpretation": [language_name(t) for t in event.interpretation or []],
        "organizers": await _actors_named(db, event.organizers),
        "related": await _actors_named(db, event.related_projects),
        "participants": await events.participant_count(db, obj),
    }


# An event is upcoming until it ends (one without an end: until it starts).
_ENDS = func.coalesce(Event.ends_at, Event.starts_at)


async def _event_rows(db, actor_ids: list[int], upcoming: bool, now: datetime,
                      limit: int | None = None) -> list[tuple[Object, Event, Actor]]:
    """Upcoming events soonest first, or past ones latest first."""
    query = (select(Object, Event, Actor).join(Event, Event.object_id == Object.id)
             .join(Actor, Actor.id == Object.actor_id)
             .where(Object.actor_id.in_(actor_ids), queries.shown_to_visitors())
             .where(_ENDS >= now if upcoming else _ENDS < now)
             .order_by(*((Event.starts_at, Object.id) if upcoming
                         else (Event.starts_at.desc(), Object.id.desc())))
             .limit(limit))
    return [tuple(r) for r in await db.execute(query)]


async def _events_of(db, actor_ids: list[int]) -> list[tuple[Object, Event, Actor]]:
    """Upcoming events first (soonest first), then past ones (latest first)."""
    now = utcnow()
    return (await _event_rows(db, actor_ids, True, now)
            + await _event_rows(db, actor_ids, False, now))


async def upcoming_events(db, actor: Actor, limit: int = 3, lang: str = "en") -> list[dict]:
    """The next few events of a project, for a small section of its page."""
    rows = await _event_rows(db, [actor.id], True, utcnow(), limit)
    return [await event_view(db, *row, lang) for row in rows]


async def list_page(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    lang = visitor_lang(request)
    async with request.app[SESSIONS]() as db:
        views = [await event_view(db, *row, lang) for row in await _events_of(db, [actor.id])]
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
    async with request.app[SESSIONS]() as db:
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
    async with request.app[SESSIONS]() as db:
        view = await event_view(db, obj, event, actor, visitor_lang(request))
        user = request.get(USER)
        member = user is not None and await may_act_as(db, user, actor)
    return html_response(request, "event.html", e=view, actor=actor, is_member=member,
                         join_mode=vocab.label("join_mode", event.join_mode,
                                               visitor_lang(request)))


def _words(text: str | None) -> list[str]:
    return (text or "").replace(",", " ").split()


def fields_from_form(form: MultiDict) -> dict:
    """publish_event's keyword arguments from the form (publish_event validates them)."""
    lang = (form.get("lang") or "").strip()
    languages = _words(form.get("languages"))
    if lang and lang not in languages:
        languages.insert(0, lang)
    place = {"name": form.get("place", "").strip(), "address": form.get("address", "").strip()}
    return {"name_map": {lang: form.get("name", "")},
            "contents": {lang: form.get("text", "")} if form.get("text", "").strip() else {},
            "kind": form.get("kind") or None, "starts_at": form.get("start", ""),
            "ends_at": form.get("end") or None, "timezone": form.get("tz", "").strip(),
            "place": place if any(place.values()) else None,
            "online_url": form.get("online", "").strip() or None, "languages": languages,
            "interpretation": _words(form.get("interpretation")),
            "join_mode": form.get("join_mode") or "free",
            "related_projects": _words(form.get("related"))}


async def _related_projects(request: web.Request, form: MultiDict) -> list[str]:
    """The form's related projects: a `name@host` handle is looked up as the command line does
    (WebFinger: done before the write transaction opens); an address is kept as written, and
    publish_event checks it."""
    entries = _words(form.get("related"))
    handles = [e for e in entries if "@" in e and not e.startswith(("http://", "https://"))]
    found = dict(zip(handles, await actor_uris(request.app[SESSIONS], request.app[REMOTE],
                                               handles)))
    return [found.get(e, e) for e in entries]


def form_from_fields(fields: dict) -> MultiDict:
    """The form's values for an event's current fields (events.event_fields): the edit form
    shows the primary language's name and text, and the place's name and street address."""
    lang = next(iter(fields["name_map"]), "")
    place = fields["place"] or {}
    return MultiDict({
        "name": fields["name_map"].get(lang, ""), "lang": lang,
        "text": fields["contents"].get(lang, ""), "kind": fields["kind"] or "",
        "start": fields["starts_at"] or "", "end": fields["ends_at"] or "",
        "tz": fields["timezone"] or "", "place": place.get("name") or "",
        "address": place.get("address") or "", "online": fields["online_url"] or "",
        "languages": " ".join(fields["languages"]),
        "interpretation": " ".join(fields["interpretation"]),
        "join_mode": fields["join_mode"], "related": " ".join(fields["related_projects"])})


def edited_fields(current: dict, form: MultiDict) -> dict:
    """edit_event's fields from the edit form; what the form does not show is kept: the other
    languages' names and texts, the organisers, and the place's coordinates, locality and
    country while its name and address stay the same."""
    fields = {**current, **fields_from_form(form)}
    lang = next(iter(fields["name_map"]), "")
    if lang == next(iter(current["name_map"]), ""):
        for key in ("name_map", "contents"):
            fields[key] = {**fields[key], **{k: v for k, v in current[key].items()
                                             if k != lang}}
    old, new = current["place"] or {}, fields["place"] or {}
    if old and new and (old.get("name") or "", old.get("address") or "") == (
            new.get("name"), new.get("address")):
        fields["place"] = old
    return fields


def _render_form(request, actor: Actor, form: MultiDict, error: str | None = None,
                 status: int = 200, obj: Object | None = None) -> web.Response:
    action = (f"/p/{actor.username}/events/{obj.uri.rsplit('/', 1)[1]}/edit" if obj
              else f"/p/{actor.username}/events/new")
    return html_response(request, "event_form.html", status=status, actor=actor, form=form,
                         error=error, kinds=tuple(vocab.EVENT_KIND),
                         join_modes=events.JOIN_MODES, editing=obj is not None, action=action,
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
        async with request.app[WRITER]() as db, db.begin():
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
        async with request.app[WRITER]() as db, db.begin():
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
    async with request.app[WRITER]() as db, db.begin():
        await events.cancel_event(db, request.app[URLS], await db.get(Actor, actor.id),
                                  await db.get(Object, obj.id))
    raise web.HTTPSeeOther(f"/p/{actor.username}/events")


def _ics(body: bytes, name: str) -> web.Response:
    response = web.Response(body=body, content_type=ical.CONTENT_TYPE, charset="utf-8")
    response.headers["Content-Disposition"] = f'inline; filename="{name}.ics"'
    return response


async def actor_ics(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    async with request.app[SESSIONS]() as db:
        rows = await ical.calendar_rows(db, [actor.id])
    return _ics(ical.build_calendar(actor.name or actor.username, rows), actor.username)


async def hub_and_event_actors(db) -> tuple[Actor, list[int]]:
    """The hub, and the actors whose events are the hub's: itself and its approved member
    projects, wherever they live (the page and the iCal feed both list these)."""
    hub = await local_hub(db)
    if hub is None:
        raise NotFound(N_("This node is not a hub."))
    members = list(await db.scalars(approved_projects(db, hub)))
    return hub, [hub.id] + [m.id for m in members]


async def hub_ics(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        hub, actor_ids = await hub_and_event_actors(db)
        rows = await ical.calendar_rows(db, actor_ids)
    return _ics(ical.build_calendar(hub.name or hub.username, rows), "hub-events")


async def hub_list_page(request: web.Request) -> web.Response:
    """/hub/events: upcoming events of the hub and its members, then the latest past ones.
    A remote event links to its own server's page, where one can take part."""
    lang = visitor_lang(request)
    now = utcnow()
    async with request.app[SESSIONS]() as db:
        hub, actor_ids = await hub_and_event_actors(db)
        upcoming = await _event_rows(db, actor_ids, True, now)
        past = await _event_rows(db, actor_ids, False, now, HUB_PAST_SHOWN)
        views = [await event_view(db, *row, lang) for row in upcoming + past]
    for view in views:
        if not view["obj"].local:
            view["href"] = view["obj"].url or view["obj"].uri
    return html_response(request, "hub_events.html", hub_name=hub.name or hub.username,
                         query="", upcoming=views[:len(upcoming)], past=views[len(upcoming):])


# -- another server's event, joined from here ------------------------------------------------

async def _joins(db, user, obj: Object) -> list[dict]:
    """Each project the visitor acts for, with its participation in `obj` (None: not joined)."""
    if user is None:
        return []
    projects = [a for a in await queries.actors_of_user(db, user) if a.type == "Group"]
    states = dict((await db.execute(select(EventParticipant.actor_id, EventParticipant.state)
                                    .where(EventParticipant.event_id == obj.id,
                                           EventParticipant.actor_id.in_(
                                               [p.id for p in projects])))).all())
    return [{"project": p, "state": states.get(p.id)} for p in projects]


async def remote_event_page(request: web.Request, obj: Object,
                            actor: Actor) -> web.Response | None:
    """Another server's event (from /remote/objects), with a Join or Leave button for each of the
    member's projects. None when we kept no details of it: it is shown as a plain update then."""
    lang = visitor_lang(request)
    async with request.app[SESSIONS]() as db:
        event = await db.get(Event, obj.id)
        if event is None:
            return None
        view = await event_view(db, obj, event, actor, lang)
        joins = await _joins(db, request.get(USER), obj)
    # Our own rows count only our projects: the organisers' count is the one in the document.
    count = (obj.document or {}).get("participantCount")
    view["participants"] = count if isinstance(count, int) and count >= 0 else None
    return html_response(request, "event.html", e=view, actor=actor, actor_href=page_href(actor),
                         is_member=False, joins=joins,
                         join_mode=vocab.label("join_mode", event.join_mode, lang))


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
    async with request.app[SESSIONS]() as db:
        project = await db.scalar(select(Actor).where(
            Actor.username == form.get("project", ""), Actor.local.is_(True),
            Actor.type == "Group"))
    if project is None:
        raise NotFound(N_("There is no such project here."))
    await require_member(request, project)
    send = send_leave if request.path.endswith("/leave") else send_join
    async with request.app[WRITER]() as db, db.begin():
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
