"""Our events (HUB meetings, exchange visits, assemblies, workshops, webinars): publishing,
editing and cancelling them, and keeping their documents current.

Each function runs inside the caller's transaction, as fedsph.projects.outbox does, and sends
what it does to the followers (the events' fields are checked in fedsph.events.fields, their AS2
documents built in fedsph.events.document). Mastodon shows an Event only as a title and a link,
so every new event is also announced as a plain Note, which follows the event's edits and is
deleted with it. Joins and Leaves are in fedsph.events.participation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.errors import N_, UserError
from fedsph.events.document import EVENT_CONTEXT, build_event
from fedsph.events.fields import local_time, validate
from fedsph.federation.activitystreams import build_activity
from fedsph.models import Actor, Event, EventParticipant, Object, utcnow
from fedsph.projects.notes import html_to_text, primary_first
from fedsph.projects.outbox import (
    delete_post,
    edit_post,
    editable_post_fields,
    publish_post,
    send_to_followers,
)
from fedsph.projects.profile import location_precision


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
        note = await publish_post(db, urls, actor, contents={
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
    fields = await editable_post_fields(db, note)
    fields["contents"] = {obj.language or "": announcement_text(obj, event, obj.url)}
    fields["title_map"] = {obj.language or "": obj.name}
    await edit_post(db, urls, actor, note, **fields)


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
    await delete_post(db, urls, actor, obj, also=participants)
    # The note that announced it must not go on telling people to come.
    event = await db.get(Event, obj.id)
    note = await db.get(Object, event.note_id) if event and event.note_id else None
    if note is not None:
        await delete_post(db, urls, actor, note)
    return obj
