"""Events as pages show them: times in the event's own zone, names in the visitor's language,
a project's upcoming and past events, and another server's event with Join and Leave buttons.

Every time is shown in the event's own time zone, named next to it: a meeting in Montevideo is
at 09:00 Montevideo time for everyone, wherever they read it.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from sqlalchemy import Select, func, select

from fedsph.core import vocab
from fedsph.events import service as events
from fedsph.i18n import pick_translation
from fedsph.models import Actor, Event, EventParticipant, Object, utcnow
from fedsph.projects import queries
from fedsph.web.hrefs import page_href, remote_href
from fedsph.web.keys import READERS, USER
from fedsph.web.languages import language_name, visitor_lang
from fedsph.web.render import html_response, sanitized


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
        "href": obj.url if obj.local else remote_href("objects", obj.uri),
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


async def event_rows(db, actor_ids: list[int] | Select, upcoming: bool, now: datetime,
                      limit: int | None = None) -> list[tuple[Object, Event, Actor]]:
    """Upcoming events soonest first, or past ones latest first, of these actors (ids, or a
    select of them)."""
    query = (select(Object, Event, Actor).join(Event, Event.object_id == Object.id)
             .join(Actor, Actor.id == Object.actor_id)
             .where(Object.actor_id.in_(actor_ids), queries.shown_to_visitors())
             .where(_ENDS >= now if upcoming else _ENDS < now)
             .order_by(*((Event.starts_at, Object.id) if upcoming
                         else (Event.starts_at.desc(), Object.id.desc())))
             .limit(limit))
    return [tuple(r) for r in await db.execute(query)]


async def events_of(db, actor_ids: list[int]) -> list[tuple[Object, Event, Actor]]:
    """Upcoming events first (soonest first), then past ones (latest first)."""
    now = utcnow()
    return (await event_rows(db, actor_ids, True, now)
            + await event_rows(db, actor_ids, False, now))


async def upcoming_events(db, actor: Actor, limit: int = 3, lang: str = "en") -> list[dict]:
    """The next few events of a project, for a small section of its page."""
    rows = await event_rows(db, [actor.id], True, utcnow(), limit)
    return [await event_view(db, *row, lang) for row in rows]



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
    async with request.app[READERS]() as db:
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

