"""Events as iCalendar (RFC 5545), for calendar apps to subscribe to a project or a hub.

Each event is a VEVENT whose UID is the event's ActivityPub id, so a calendar that gets the
same event from two feeds (a project's and its hub's) keeps one copy. Times carry the event's
TZID (calendar apps know the IANA zones); an event without a known zone is given in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.events.fields import local_time
from fedsph.models import Actor, Event, Object
from fedsph.projects.notes import html_to_text
from fedsph.projects.queries import shown_to_visitors

if TYPE_CHECKING:
    from icalendar import Event as VEvent

CONTENT_TYPE = "text/calendar"
PAST_DAYS_KEPT = 90  # how far back a feed goes: calendars keep what they saw before


def _location(obj: Object, event: Event) -> str | None:
    place = obj.place or {}
    address = place.get("address") if isinstance(place.get("address"), dict) else {}
    parts = [place.get("name"), address.get("streetAddress"), address.get("addressLocality"),
             address.get("addressCountry")]
    text = ", ".join(dict.fromkeys(p for p in parts if p))
    return text or event.online_url


def vevent(obj: Object, event: Event, actor: Actor) -> VEvent:
    # icalendar is imported where it is used: some 3 MB that an idle server need not hold.
    from icalendar import Event as VEvent

    item = VEvent()
    item.add("uid", obj.uri)
    item.add("dtstamp", (obj.updated or obj.published).replace(tzinfo=UTC))
    item.add("dtstart", local_time(event.starts_at, event.timezone))
    if event.ends_at is not None:
        item.add("dtend", local_time(event.ends_at, event.timezone))
    item.add("summary", obj.name or "")
    description = html_to_text(obj.content) if obj.content else ""
    if event.online_url:
        description = f"{description}\n\n{event.online_url}".strip()
    if description:
        item.add("description", description)
    location = _location(obj, event)
    if location:
        item.add("location", location)
    item.add("url", obj.url or obj.uri)
    item.add("organizer", actor.url or actor.uri, parameters={"CN": actor.name or actor.username})
    return item


def build_calendar(name: str, rows: list[tuple[Object, Event, Actor]]) -> bytes:
    from icalendar import Calendar  # see vevent

    calendar = Calendar()
    calendar.add("prodid", "-//fedsph//events//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    for obj, event, actor in rows:
        calendar.add_component(vevent(obj, event, actor))
    # RFC 5545: every TZID used needs its VTIMEZONE, or some clients misplace the events.
    calendar.add_missing_timezones()
    return calendar.to_ical()


async def calendar_rows(db: AsyncSession, actor_ids: list[int] | Select,
                        now: datetime | None = None) -> list[tuple[Object, Event, Actor]]:
    """Public, not cancelled events of these actors that did not end long ago, by start."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    since = now - timedelta(days=PAST_DAYS_KEPT)
    rows = await db.execute(
        select(Object, Event, Actor).join(Event, Event.object_id == Object.id)
        .join(Actor, Actor.id == Object.actor_id)
        .where(Object.actor_id.in_(actor_ids), shown_to_visitors(),
               or_(Event.ends_at >= since, Event.starts_at >= since))
        .order_by(Event.starts_at))
    return [tuple(row) for row in rows]
