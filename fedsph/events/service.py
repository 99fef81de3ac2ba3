"""Events (HUB meetings, exchange visits, assemblies, workshops, webinars) as AS2 `Event`s.

The document is shaped like Mobilizon's (startTime, endTime, timezone, location as a Place with a
PostalAddress, joinMode, participantCount, an online address as a `Link` attachment, organisers
as `contacts`) and FEP-8a8e, so Mobilizon and Gancio read it; fedsph's own terms (kind,
interpretation, related projects) sit in the fedsph namespace. Mastodon shows an Event only as a
title and a link, so every new event is also announced as a plain Note.

Pure builders and parsers first; the outbox side (which runs inside the caller's transaction,
as fedsph.projects.outbox does) after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core import safe_links, vocab
from fedsph.core.urls import URLs
from fedsph.errors import N_, Term, UserError
from fedsph.federation.activitystreams import (
    AS_CONTEXT,
    FEDSPH_NS,
    PUBLIC,
    build_activity,
    iso,
)
from fedsph.models import Actor, Event, EventParticipant, Object, utcnow
from fedsph.projects.notes import html_to_text, primary_first, text_to_html
from fedsph.projects.outbox import (
    clean_place,
    delete_note,
    edit_update,
    language_tag,
    publish_update,
    send_to_followers,
    update_fields,
)
from fedsph.projects.profile import location_precision

# Mobilizon's and schema.org's terms, inline so no processor needs to fetch anything.
EVENT_CONTEXT: list = [
    AS_CONTEXT,
    {
        "sc": "http://schema.org#",
        "mz": "https://joinmobilizon.org/ns#",
        "pt": "https://joinpeertube.org/ns#",
        "fedsph": FEDSPH_NS,
        "timezone": {"@id": "mz:timezone", "@type": "sc:Text"},
        "isOnline": {"@id": "mz:isOnline", "@type": "sc:Boolean"},
        "joinMode": {"@id": "mz:joinMode", "@type": "mz:joinModeType"},
        "participantCount": {"@id": "mz:participantCount", "@type": "sc:Integer"},
        "anonymousParticipationEnabled": {"@id": "mz:anonymousParticipationEnabled",
                                          "@type": "sc:Boolean"},
        "commentsEnabled": {"@id": "pt:commentsEnabled", "@type": "sc:Boolean"},
        "maximumAttendeeCapacity": "sc:maximumAttendeeCapacity",
        "inLanguage": "sc:inLanguage",
        "uuid": "sc:identifier",
        "category": "sc:category",
        "location": {"@id": "sc:location", "@type": "sc:Place"},
        "address": {"@id": "sc:address", "@type": "sc:PostalAddress"},
        "PostalAddress": "sc:PostalAddress",
        "streetAddress": "sc:streetAddress",
        "addressLocality": "sc:addressLocality",
        "addressCountry": "sc:addressCountry",
        "postalCode": "sc:postalCode",
        "contacts": {"@id": "mz:contacts", "@type": "@id"},
        "eventKind": "fedsph:eventKind",
        "spokenLanguages": {"@id": "fedsph:spokenLanguages", "@container": "@set"},
        "interpretation": {"@id": "fedsph:interpretation", "@container": "@set"},
        "relatedProjects": {"@id": "fedsph:relatedProjects", "@type": "@id",
                            "@container": "@set"},
    },
]

JOIN_MODES = tuple(vocab.JOIN_MODE)
MAX_NAME_CHARS = 200
MAX_LANGUAGES = 10
MAX_ACTORS = 50
# Mobilizon names the attachment that carries an online event's address "Website".
ONLINE_LINK_NAME = "Website"
# Mobilizon's category for each event kind; it files an unknown category under its default,
# MEETING (lib/mobilizon/events/categories.ex), so a wrong guess costs nothing.
MOBILIZON_CATEGORY = {"hub_meeting": "MEETING", "assembly": "MEETING",
                      "exchange_visit": "COMMUNITY", "workshop": "LEARNING",
                      "webinar": "LEARNING"}


# --- validation ---------------------------------------------------------------------------------

# The field names that messages below take as Term, marked for the catalogs.
_TERMS = (N_("start"), N_("end"), N_("online link"), N_("organiser"), N_("related project"))
_TOO_MANY = {"organiser": N_("an event lists at most %(limit)s organisers"),
             "related project": N_("an event lists at most %(limit)s related projects")}

def zone(name: str | None) -> ZoneInfo:
    if not name:
        raise UserError(N_("an event needs a time zone, e.g. America/Montevideo"))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(N_("%(value)r is not a known time zone"), value=name) from None


def to_utc(moment: datetime | str, tz: ZoneInfo, what: str) -> datetime:
    """Naive UTC from a local wall time (or an aware time) in the event's zone."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.strip())
        except ValueError:
            raise UserError(N_("the %(what)s time %(value)r is not a date and time like "
                               "2027-03-10T09:00"), what=Term(what), value=moment) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC).replace(tzinfo=None)


def local_time(moment: datetime | None, tz_name: str | None) -> datetime | None:
    """A stored naive-UTC moment as wall time in the event's zone (UTC if it has none)."""
    if moment is None:
        return None
    try:
        tz = ZoneInfo(tz_name) if tz_name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    return moment.replace(tzinfo=UTC).astimezone(tz)


def check_url(url: str | None, what: str = "online link") -> str | None:
    if not url:
        return None
    checked = safe_links.http_url(url.strip())
    if checked is None:
        raise UserError(N_("the %(what)s %(value)r is not an http(s) URL"), what=Term(what), value=url)
    return checked


def _languages(tags) -> list[str] | None:
    tags = [language_tag(t) for t in dict.fromkeys(tags or ()) if t]
    if len(tags) > MAX_LANGUAGES:
        raise UserError(N_("an event lists at most %(limit)s languages"), limit=MAX_LANGUAGES)
    return tags or None


def _actor_uris(uris, what: str) -> list[str] | None:
    uris = [check_url(u, what) for u in dict.fromkeys(uris or ()) if u]
    if len(uris) > MAX_ACTORS:
        raise UserError(_TOO_MANY.get(what, f"an event lists at most %(limit)s {what}s"),
                        limit=MAX_ACTORS)
    return uris or None


def event_place(place: dict | None, precision: str) -> dict | None:
    """The event's Place: a name, a postal address and coordinates rounded like an update's."""
    if not place:
        return None
    address = {"streetAddress": str(place.get("address") or "").strip()[:300],
               "addressLocality": str(place.get("locality") or "").strip()[:200],
               "addressCountry": str(place.get("country") or "").strip()[:100]}
    address = {k: v for k, v in address.items() if v}
    clean = clean_place({k: v for k, v in place.items() if k in ("name", "latitude", "longitude")},
                         precision) if (place.get("name") or place.get("latitude") is not None
                                        or place.get("longitude") is not None) else None
    if clean is None and not address:
        raise UserError(N_("a place needs a name, an address or coordinates"))
    clean = clean or {"type": "Place", "name": address.get("streetAddress")}
    if address:
        clean["address"] = {"type": "PostalAddress", **address}
    return clean


def validate(*, name_map: dict, contents: dict, kind: str | None, starts_at, ends_at,
             timezone: str, place: dict | None, online_url: str | None, languages,
             interpretation, organizers, related_projects, join_mode: str,
             precision: str) -> tuple[dict, dict]:
    """(Object columns, Event columns) of a local event, or ValueError for people to read."""
    names = {language_tag(lang): " ".join(n.split()) for lang, n in (name_map or {}).items()
             if n and n.strip()}
    if not names:
        raise UserError(N_("an event needs a name"))
    if any(len(n) > MAX_NAME_CHARS for n in names.values()):
        raise UserError(N_("an event's name is limited to %(limit)s characters"),
                        limit=MAX_NAME_CHARS)
    if "" in names and len(names) > 1:
        raise UserError(N_("every name of a multilingual event needs its language"))
    texts = {language_tag(lang): t.strip() for lang, t in (contents or {}).items() if t and t.strip()}
    if kind and not vocab.is_valid("event_kind", kind):
        raise UserError(N_("%(value)r is not a known event kind (%(choices)s)"), value=kind,
                        choices=", ".join(vocab.EVENT_KIND))
    if join_mode not in JOIN_MODES:
        raise UserError(N_("%(value)r is not a known join mode (%(choices)s)"), value=join_mode,
                        choices=", ".join(JOIN_MODES))
    tz = zone(timezone)
    start = to_utc(starts_at, tz, "start")
    end = to_utc(ends_at, tz, "end") if ends_at else None
    if end is not None and end <= start:
        raise UserError(N_("an event must end after it starts"))
    online_url = check_url(online_url)
    location = event_place(place, precision)
    if location is None and online_url is None:
        raise UserError(N_("an event needs a place or an online link"))
    primary = next(iter(names))
    content_map = {lang: text_to_html(text) for lang, text in texts.items()}
    obj = {"name": names[primary], "name_map": names if primary else None,
           "content": content_map.get(primary) or next(iter(content_map.values()), None),
           "content_map": content_map if primary and content_map else None,
           "language": primary or None, "place": location, "kind": kind or None}
    event = {"kind": kind or None, "starts_at": start, "ends_at": end, "timezone": timezone,
             "online_url": online_url, "join_mode": join_mode,
             "languages": _languages(languages), "interpretation": _languages(interpretation),
             "organizers": _actor_uris(organizers, "organiser"),
             "related_projects": _actor_uris(related_projects, "related project")}
    return obj, event


# --- the wire ------------------------------------------------------------------------------------

def _wire_time(moment: datetime | None, tz_name: str | None) -> str | None:
    """ISO 8601 with the event zone's offset (what Mobilizon and FEP-8a8e readers expect)."""
    local = local_time(moment, tz_name)
    return local.replace(microsecond=0).isoformat() if local else None


def _wire_place(place: dict | None) -> dict | None:
    """The Place with its coordinates as floats: Mobilizon keeps a position only when both are
    floats (converter/address.ex), and a country-precision place is rounded to whole degrees."""
    if not place:
        return None
    wire = dict(place)
    for axis in ("latitude", "longitude"):
        if isinstance(wire.get(axis), int | float):
            wire[axis] = float(wire[axis])
    return wire


def build_event(obj: Object, event: Event, actor: Actor, participants: int = 0) -> dict:
    """The AS2 Event for a local event, @context included (strip it to embed)."""
    languages = event.languages or ([obj.language] if obj.language else [])
    document = {
        "@context": EVENT_CONTEXT,
        "id": obj.uri,
        "type": "Event",
        "attributedTo": actor.uri,
        # Mobilizon's `actor` is the organiser who made the event; here, the project.
        "actor": actor.uri,
        "name": obj.name,
        "nameMap": obj.name_map,
        "content": obj.content,
        "contentMap": obj.content_map,
        "mediaType": "text/html",
        "startTime": _wire_time(event.starts_at, event.timezone),
        "endTime": _wire_time(event.ends_at, event.timezone),
        "timezone": event.timezone,
        "location": _wire_place(obj.place),
        "isOnline": bool(event.online_url) and not obj.place,
        "attachment": [{"type": "Link", "name": ONLINE_LINK_NAME, "mediaType": "text/html",
                        "href": event.online_url}] if event.online_url else None,
        "joinMode": event.join_mode,
        "participantCount": participants,
        "maximumAttendeeCapacity": 0,
        "anonymousParticipationEnabled": False,
        "commentsEnabled": True,
        # Mobilizon reads inLanguage as one language (the event's `language` string); the
        # others, for fedsph readers, go in spokenLanguages.
        "inLanguage": languages[0] if languages else None,
        "spokenLanguages": languages if len(languages) > 1 else None,
        "interpretation": event.interpretation,
        "contacts": event.organizers,
        "relatedProjects": event.related_projects,
        "eventKind": event.kind,
        "category": MOBILIZON_CATEGORY.get(event.kind or "", "MEETING"),
        # Mobilizon's Event changeset requires a uuid and takes it from the document
        # (converter/event.ex, events/event.ex): a stable one derived from the id.
        "uuid": str(uuid5(NAMESPACE_URL, obj.uri)),
        "published": iso(obj.published),
        "updated": iso(obj.updated),
        "url": obj.url or obj.uri,
        "to": [PUBLIC],
        "cc": [actor.followers_url],
    }
    return {k: v for k, v in document.items() if v is not None}


# --- the outbox side -----------------------------------------------------------------------------

def event_page(urls: URLs, actor: Actor, obj: Object) -> str:
    return f"{urls.base}/p/{actor.username}/events/{obj.uri.rsplit('/', 1)[1]}"


async def participant_count(db: AsyncSession, obj: Object) -> int:
    return await db.scalar(select(func.count(EventParticipant.id)).where(
        EventParticipant.event_id == obj.id, EventParticipant.state == "accepted")) or 0


async def refresh_document(db: AsyncSession, obj: Object, actor: Actor) -> dict:
    """Rebuild the stored document (participantCount changes with every Join and Leave)."""
    event = await db.get(Event, obj.id)
    obj.document = build_event(obj, event, actor, await participant_count(db, obj))
    return obj.document


def _embedded(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "@context"}


def _when(event: Event) -> str:
    start = local_time(event.starts_at, event.timezone)
    text = start.strftime("%Y-%m-%d %H:%M")
    end = local_time(event.ends_at, event.timezone)
    if end is not None:
        text += "–" + end.strftime("%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M")
    return f"{text} ({event.timezone})"


def announcement_text(obj: Object, event: Event, page: str) -> str:
    """The companion Note's text: what, when (in the event's zone), where, and the link."""
    lines = [_when(event)]
    place = obj.place or {}
    where = ", ".join(x for x in (place.get("name"), (place.get("address") or {})
                                  .get("streetAddress")) if x and x != "") if place else ""
    if where:
        lines.append(where)
    if event.online_url:
        lines.append(event.online_url)
    return "\n".join(lines) + "\n\n" + page


async def publish_event(db: AsyncSession, urls: URLs, actor: Actor, *, name: str | None = None,
                        name_map: dict | None = None, content: str | None = None,
                        contents: dict | None = None, kind: str | None = None, starts_at,
                        ends_at=None, timezone: str, place: dict | None = None,
                        online_url: str | None = None, languages=(), interpretation=(),
                        organizers=(), related_projects=(), join_mode: str = "free",
                        announce: bool = True) -> Object:
    """Create an event as `actor` (a project or the hub), send Create{Event} to its followers,
    and announce it with a plain Note (Mastodon shows Events only as a link)."""
    lang = next(iter(languages or ()), "")
    name_map = name_map or {lang: name or ""}
    contents = contents or ({lang: content} if content else {})
    columns, details = validate(
        name_map=name_map, contents=contents, kind=kind, starts_at=starts_at, ends_at=ends_at,
        timezone=timezone, place=place, online_url=online_url, languages=languages,
        interpretation=interpretation, organizers=organizers or [actor.uri],
        related_projects=related_projects, join_mode=join_mode,
        precision=location_precision(actor))
    uri = urls.new_object()
    obj = Object(uri=uri, type="Event", actor_id=actor.id, local=True, published=utcnow(),
                 visibility="public", **columns)
    db.add(obj)
    await db.flush()
    obj.url = event_page(urls, actor, obj)
    event = Event(object_id=obj.id, **details)
    db.add(event)
    await db.flush()
    document = await refresh_document(db, obj, actor)
    create = build_activity("Create", urls.new_activity(), actor.uri, _embedded(document),
                            to=document["to"], cc=document["cc"], published=document["published"])
    create["@context"] = EVENT_CONTEXT
    await send_to_followers(db, actor, create, obj.uri, "public")
    if announce:
        note = await publish_update(db, urls, actor, contents={
            obj.language or "": announcement_text(obj, event, obj.url)},
            title_map={obj.language or "": obj.name})
        event.note_id = note.id
    return obj


def _form_time(moment: datetime | None, tz_name: str | None) -> str | None:
    """A stored moment as the wall time publish_event reads (and a datetime-local input shows)."""
    local = local_time(moment, tz_name)
    if local is None:
        return None
    return f"{local:%Y-%m-%dT%H:%M:%S}" if local.second else f"{local:%Y-%m-%dT%H:%M}"


def event_fields(obj: Object, event: Event) -> dict:
    """A local event's current fields as publish_event and edit_event take them (for edits).

    Times are wall times in the event's zone, so changing only the zone keeps the clock time.
    """
    place = obj.place or {}
    address = place.get("address") if isinstance(place.get("address"), dict) else {}
    where = {"name": place.get("name"), "latitude": place.get("latitude"),
             "longitude": place.get("longitude"), "address": address.get("streetAddress"),
             "locality": address.get("addressLocality"), "country": address.get("addressCountry")}
    contents = primary_first(obj.content_map, obj.language) or (
        {obj.language or "": obj.content} if obj.content else {})
    return {
        "name_map": dict(primary_first(obj.name_map, obj.language)
                         or {obj.language or "": obj.name or ""}),
        "contents": {lang: html_to_text(html) for lang, html in contents.items() if html},
        "kind": event.kind, "starts_at": _form_time(event.starts_at, event.timezone),
        "ends_at": _form_time(event.ends_at, event.timezone), "timezone": event.timezone,
        "place": {k: v for k, v in where.items() if v is not None} if place else None,
        "online_url": event.online_url, "languages": list(event.languages or []),
        "interpretation": list(event.interpretation or []),
        "organizers": list(event.organizers or []),
        "related_projects": list(event.related_projects or []), "join_mode": event.join_mode,
    }


async def _edit_announcement(db: AsyncSession, urls: URLs, actor: Actor, obj: Object,
                             event: Event) -> None:
    """Rewrite the Note that announced the event, so Mastodon readers see the new time and
    place; a note the project has deleted stays deleted."""
    note = await db.get(Object, event.note_id) if event.note_id else None
    if note is None or note.deleted_at is not None:
        return
    fields = await update_fields(db, note)
    fields["contents"] = {obj.language or "": announcement_text(obj, event, obj.url)}
    fields["title_map"] = {obj.language or "": obj.name}
    await edit_update(db, urls, actor, note, **fields)


async def edit_event(db: AsyncSession, urls: URLs, actor: Actor, obj: Object, **fields) -> Object:
    """Replace an event's fields (as publish_event takes them) and send Update{Event}."""
    if obj.type != "Event" or not obj.local or obj.actor_id != actor.id:
        raise UserError(N_("this event belongs to someone else"))
    if obj.deleted_at is not None:
        raise UserError(N_("this event was cancelled"))
    languages = fields.get("languages") or ()
    lang = next(iter(languages), "")
    columns, details = validate(
        name_map=fields.get("name_map") or {lang: fields.get("name") or ""},
        contents=fields.get("contents") or ({lang: fields["content"]} if fields.get("content")
                                            else {}),
        kind=fields.get("kind"), starts_at=fields["starts_at"], ends_at=fields.get("ends_at"),
        timezone=fields["timezone"], place=fields.get("place"),
        online_url=fields.get("online_url"), languages=languages,
        interpretation=fields.get("interpretation"),
        organizers=fields.get("organizers") or [actor.uri],
        related_projects=fields.get("related_projects"),
        join_mode=fields.get("join_mode") or "free", precision=location_precision(actor))
    for column, value in columns.items():
        setattr(obj, column, value)
    event = await db.get(Event, obj.id)
    for column, value in details.items():
        setattr(event, column, value)
    obj.updated = utcnow()
    document = await refresh_document(db, obj, actor)
    update = build_activity("Update", urls.new_activity(), actor.uri, _embedded(document),
                            to=document["to"], cc=document["cc"])
    update["@context"] = EVENT_CONTEXT
    await send_to_followers(db, actor, update, obj.uri, "public")
    await _edit_announcement(db, urls, actor, obj, event)
    return obj


async def cancel_event(db: AsyncSession, urls: URLs, actor: Actor, obj: Object) -> Object:
    """Cancel (delete) an event: the tombstone every delete makes, and a Delete to the followers
    and the participants; the Note that announced it is deleted too."""
    if obj.type != "Event" or not obj.local or obj.actor_id != actor.id:
        raise UserError(N_("this event belongs to someone else"))
    if obj.deleted_at is not None:
        return obj
    participants = list(await db.scalars(select(Actor).join(
        EventParticipant, EventParticipant.actor_id == Actor.id).where(
        EventParticipant.event_id == obj.id, Actor.local.is_(False))))
    await delete_note(db, urls, actor, obj, also=participants)
    # The note that announced it must not go on telling people to come.
    event = await db.get(Event, obj.id)
    note = await db.get(Object, event.note_id) if event and event.note_id else None
    if note is not None:
        await delete_note(db, urls, actor, note)
    return obj
