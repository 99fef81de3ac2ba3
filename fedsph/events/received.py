"""Events from other servers (Mobilizon, fedsph, FEP-8a8e shapes), read leniently.

`event_columns` turns a received Event document into Event columns; `store_event_details` keeps
them (and the Place's postal address) when fedsph.federation.remote_objects stores an Event object.
Validation rules shared with our own events (zones, URLs, limits) live in fedsph.events.fields.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core import vocab
from fedsph.core.safe_links import http_url
from fedsph.core.sanitize import plain_text
from fedsph.errors import UserError
from fedsph.events.document import ONLINE_LINK_NAME
from fedsph.events.fields import JOIN_MODES, MAX_ACTORS, MAX_LANGUAGES, check_url, zone
from fedsph.federation.activitystreams import as_list, get_id, get_type, term
from fedsph.models import Event, Object
from fedsph.projects.post_fields import language_tag


def _uris(value) -> list[str] | None:
    found = [u for u in (http_url(get_id(v)) for v in as_list(value)) if u]
    return list(dict.fromkeys(found))[:MAX_ACTORS] or None


def _tags(value) -> list[str] | None:
    kept = []
    for tag in as_list(value)[:MAX_LANGUAGES]:
        try:
            kept.append(language_tag(tag) if isinstance(tag, str) else "")
        except UserError:
            continue
    return [t for t in dict.fromkeys(kept) if t] or None


def _received_time(value, what: str, tz: str | None) -> datetime | None:
    """A time as UTC; one without an offset is a clock time in the event's zone `tz`."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"the event's {what} {str(value)[:40]!r} is not a date") from None
    if moment.tzinfo is None and tz:
        moment = moment.replace(tzinfo=zone(tz))
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 with a positive offset falls before datetime.min
            raise ValueError(f"the event's {what} {str(value)[:40]!r} is not a date") from None
    return moment


# Mobilizon's newer join mode: people sign up on another site (externalParticipationUrl), so a
# Join would not be answered; fedsph shows it like an invitation-only event.
EXTERNAL_JOIN_MODES = {"external": "invite"}


def _online_url(document: dict) -> str | None:
    """Mobilizon's online address: the Link attachment named "Website" (converter/event.ex);
    failing that, the first Link with an http(s) address."""
    links = [item for item in as_list(document.get("attachment"))
             if isinstance(item, dict) and get_type(item) == "Link"
             and isinstance(item.get("href"), str)]
    links.sort(key=lambda item: item.get("name") != ONLINE_LINK_NAME)
    for item in links:
        try:
            return check_url(item["href"])
        except UserError:
            continue
    return None


def event_columns(document: dict) -> dict:
    """Event columns of a received Event, leniently; ValueError (the reason) when it has no
    usable start time, or ends before it starts: such an event is not kept as an event."""
    tz = term(document, "timezone", "mz:")
    try:
        zone(tz if isinstance(tz, str) else None)
    except UserError:
        tz = None  # an unknown zone: times are shown in UTC
    tz = tz if isinstance(tz, str) else None
    start = _received_time(document.get("startTime"), "start time", tz)
    if start is None:
        raise ValueError("the event has no start time")
    try:
        end = _received_time(document.get("endTime"), "end time", tz)
    except ValueError:
        end = None
    if end is not None and end < start:
        raise ValueError("the event ends before it starts")
    kind = term(document, "eventKind", "mz:")
    join_mode = term(document, "joinMode", "mz:")
    join_mode = EXTERNAL_JOIN_MODES.get(join_mode, join_mode) if isinstance(join_mode, str) else None
    # fedsph lists every spoken language in spokenLanguages; Mobilizon sends one inLanguage.
    languages = term(document, "spokenLanguages") or document.get("inLanguage")
    return {
        "kind": kind if isinstance(kind, str) and vocab.is_valid("event_kind", kind) else None,
        "starts_at": start, "ends_at": end, "timezone": tz,
        "online_url": _online_url(document),
        "join_mode": join_mode if join_mode in JOIN_MODES else "free",
        "languages": _tags(languages),
        "interpretation": _tags(term(document, "interpretation", "mz:")),
        "organizers": _uris(document.get("contacts")),
        "related_projects": _uris(term(document, "relatedProjects", "mz:")),
    }


async def store_event_details(db: AsyncSession, obj: Object, document: dict) -> str | None:
    """Upsert the Event row of a received Event object; the reason when it is not usable."""
    try:
        columns = event_columns(document)
    except ValueError as exc:
        return str(exc)
    row = await db.get(Event, obj.id)
    if row is None:
        db.add(Event(object_id=obj.id, **columns))
    else:
        for column, value in columns.items():
            setattr(row, column, value)
    # The Place's address is kept with the place (remote_objects keeps only name and position).
    place = next((p for p in as_list(document.get("location")) if isinstance(p, dict)), None)
    address = place.get("address") if place else None
    if isinstance(address, dict):
        kept = {k: plain_text(v, 300) for k, v in address.items()
                if k in ("streetAddress", "addressLocality", "addressCountry", "postalCode")
                and plain_text(v, 300)}
        if kept:
            obj.place = {**(obj.place or {"type": "Place"}), "address": {"type": "PostalAddress",
                                                                          **kept}}
    elif isinstance(address, str) and address.strip():
        obj.place = {**(obj.place or {"type": "Place"}), "address": {
            "type": "PostalAddress", "streetAddress": plain_text(address, 300)}}
    return None
