"""ActivityStreams 2.0 helpers and pure builders. No I/O, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fedsph.core.safe_links import origin

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
# The namespace of fedsph's extension terms (profile fields, update kinds); see FEDERATION.md.
FEDSPH_NS = "https://fedsph.org/ns#"
FEDSPH_PREFIX = "fedsph:"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = {PUBLIC, "as:Public", "Public"}

AP_CONTENT_TYPE = "application/activity+json"
# Types a server may send ActivityPub JSON as; anything else in an inbox POST is refused.
AP_MEDIA_TYPES = ("application/activity+json", "application/ld+json", "application/json")

ACTOR_CONTEXT: list[Any] = [
    AS_CONTEXT,
    SECURITY_CONTEXT,
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
    },
]


def get_id(value: Any) -> str | None:
    """The id of a link, an embedded object, or a bare string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        found = value.get("id") or value.get("href")
        return found if isinstance(found, str) else None
    if isinstance(value, list) and value:
        return get_id(value[0])
    return None


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def get_type(value: Any) -> str | None:
    """First type of an object; JSON-LD allows a list of types."""
    if not isinstance(value, dict):
        return None
    types = as_list(value.get("type"))
    return types[0] if types and isinstance(types[0], str) else None


def same_origin(uri: str | None, other: str | None) -> bool:
    """The two ids share scheme, host and port (an actor may only create or change objects on
    its own origin); anything that is not an http(s) URL has no origin and matches nothing."""
    mine = origin(uri)
    return mine is not None and mine == origin(other)


def is_public(document: dict) -> bool:
    return any(get_id(t) in PUBLIC_ALIASES for t in as_list(document.get("to")) + as_list(document.get("cc")))


def iso(moment: datetime | None) -> str | None:
    """AS2 dates: UTC with a Z, no microseconds (Mastodon parses both, others less so)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    """Parse an AS2 date into naive UTC; None for anything unparseable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)  # 3.11+ reads a trailing Z
    except ValueError:
        return None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return None  # 0001-01-01T00:00:00+01:00 has no UTC time
    return moment


def build_activity(
    activity_type: str,
    activity_id: str,
    actor: str,
    obj: Any,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    **extra: Any,
) -> dict:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": activity_id,
        "type": activity_type,
        "actor": actor,
        "object": obj,
    }
    if to:
        document["to"] = to
    if cc:
        document["cc"] = cc
    document.update({k: v for k, v in extra.items() if v is not None})
    return document


def build_ordered_collection(collection_id: str, total: int, first: str | None) -> dict:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first:
        document["first"] = first
    return document


def build_collection_page(
    page_id: str, part_of: str, items: list, next_page: str | None, prev_page: str | None = None
) -> dict:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "orderedItems": items,
    }
    if next_page:
        document["next"] = next_page
    if prev_page:
        document["prev"] = prev_page
    return document


def build_tombstone(object_id: str, former_type: str, deleted: datetime) -> dict:
    return {
        "@context": AS_CONTEXT,
        "id": object_id,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": iso(deleted),
    }


def compact_term(key: str) -> str:
    """A fedsph extension key as its bare name: senders may write `x`, `fedsph:x` or the full
    IRI, depending on whether they compacted against our context."""
    for prefix in (FEDSPH_NS, FEDSPH_PREFIX):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def term(document: dict, name: str, *prefixes: str):
    """The value of extension term `name` in `document`, in any of the forms compact_term
    accepts, or under another vocabulary's prefix given in `prefixes` (e.g. Mobilizon's "mz:")."""
    for key in (name, FEDSPH_PREFIX + name, FEDSPH_NS + name, *(p + name for p in prefixes)):
        if key in document:
            return document[key]
    return None
