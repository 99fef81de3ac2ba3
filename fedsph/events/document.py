"""Our events as AS2 `Event` documents.

The document is shaped like Mobilizon's (startTime, endTime, timezone, location as a Place with a
PostalAddress, joinMode, participantCount, an online address as a `Link` attachment, organisers
as `contacts`) and FEP-8a8e, so Mobilizon and Gancio read it; fedsph's own terms (kind,
interpretation, related projects) sit in the fedsph namespace. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from fedsph.events.fields import local_time
from fedsph.federation.activitystreams import AS_CONTEXT, FEDSPH_NS, PUBLIC, iso
from fedsph.models import Actor, Event, Object

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

# Mobilizon names the attachment that carries an online event's address "Website".
ONLINE_LINK_NAME = "Website"
# Mobilizon's category for each event kind; it files an unknown category under its default,
# MEETING (lib/mobilizon/events/categories.ex), so a wrong guess costs nothing.
MOBILIZON_CATEGORY = {"hub_meeting": "MEETING", "assembly": "MEETING",
                      "exchange_visit": "COMMUNITY", "workshop": "LEARNING",
                      "webinar": "LEARNING"}


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
