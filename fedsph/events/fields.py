"""An event's fields as people give them: checked (`validate`), and their times converted.

A local event's times are given as wall times in its zone and stored as naive UTC (`to_utc`);
`local_time` turns them back. The limits and checks here are shared with the events we receive
(fedsph.events.received); the checks raise UserError with a message for people.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fedsph.core import safe_links, vocab
from fedsph.errors import N_, Term, UserError
from fedsph.projects.notes import text_to_html
from fedsph.projects.post_fields import clean_place, language_tag

JOIN_MODES = tuple(vocab.JOIN_MODE)
MAX_NAME_CHARS = 200
MAX_LANGUAGES = 10
MAX_ACTORS = 50
ZONE_NAME_MAX = 64  # the longest IANA zone name is about 30 characters

# The field names that messages below take as Term, marked for the catalogs.
_TERMS = (N_("start"), N_("end"), N_("online link"), N_("organiser"), N_("related project"))
_TOO_MANY = {"organiser": N_("an event lists at most %(limit)s organisers"),
             "related project": N_("an event lists at most %(limit)s related projects")}


def zone(name: str | None) -> ZoneInfo:
    if not name:
        raise UserError(N_("an event needs a time zone, e.g. America/Montevideo"))
    if len(name) > ZONE_NAME_MAX:  # a long name reaches the file system as ENAMETOOLONG (OSError)
        raise UserError(N_("%(value)r is not a known time zone"), value=name[:ZONE_NAME_MAX])
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
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
    except (ZoneInfoNotFoundError, ValueError, OSError):
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
    """(Object columns, Event columns) of a local event, or UserError for people to read."""
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
