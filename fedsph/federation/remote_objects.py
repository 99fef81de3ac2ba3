"""Storing objects (Notes and friends) received from other servers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urldefrag

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from fedsph.core import vocab
from fedsph.core.safe_links import first_http_url, http_url
from fedsph.core.sanitize import clean_html, plain_text
from fedsph.errors import FetchError
from fedsph.federation.activitystreams import (
    as_list,
    get_id,
    get_type,
    parse_iso,
    same_origin,
    term,
)
from fedsph.federation.remote import Remote
from fedsph.federation.visibility import addressees, store_addressees, visibility_of
from fedsph.models import Actor, Follow, Object, utcnow

# Types we keep as posts. Mastodon shows Article/Page/Event as a title and a link; so do we.
POST_TYPES = {"Note", "Article", "Page", "Question", "Event", "Video", "Audio", "Image"}
ATTACHMENT_TYPES = {"Image", "Document", "Video", "Audio"}
MAX_ATTACHMENTS = 8
MAX_TAGS = 50
MEDIA_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")
BLURHASH = re.compile(r"^[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,128}$")
PLACE_UNITS = {"cm", "feet", "inches", "km", "m", "miles"}


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _number(value, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if low <= value <= high else None


def _attachments(document: dict) -> list[dict] | None:
    """Images and documents as we can show them: checked URL, alt text, size, blurhash."""
    kept = []
    for item in as_list(document.get("attachment"))[:MAX_ATTACHMENTS]:
        if not isinstance(item, dict) or get_type(item) not in ATTACHMENT_TYPES:
            continue
        url = first_http_url(item.get("url"))
        if url is None:
            continue
        clean = {"type": get_type(item), "url": url, "name": plain_text(item.get("name"), 1500),
                 "mediaType": _text(item.get("mediaType")), "blurhash": _text(item.get("blurhash")),
                 "width": _number(item.get("width"), 1, 100000),
                 "height": _number(item.get("height"), 1, 100000),
                 "license": first_http_url(term(item, "license")),
                 "author": plain_text(term(item, "author"), 200)}
        if clean["mediaType"] and not MEDIA_TYPE.match(clean["mediaType"]):
            clean["mediaType"] = None
        if clean["blurhash"] and not BLURHASH.match(clean["blurhash"]):
            clean["blurhash"] = None
        for side in ("width", "height"):
            if clean[side] is not None:
                clean[side] = int(clean[side])
        kept.append({k: v for k, v in clean.items() if v is not None})
    return kept or None


def _tags(document: dict) -> list[dict] | None:
    """Hashtags and mentions, plus the fedsph theme slugs (themes also come as Hashtags)."""
    themes = [t for t in as_list(term(document, "themes"))
              if isinstance(t, str) and vocab.is_valid("themes", t)]
    theme_names = {"#" + t.lower() for t in themes}
    kept = []
    for tag in as_list(document.get("tag"))[:MAX_TAGS]:
        if not isinstance(tag, dict) or get_type(tag) not in ("Hashtag", "Mention"):
            continue
        name = plain_text(tag.get("name"), 200)
        if not name or name.lower() in theme_names:
            continue
        if get_type(tag) == "Hashtag" and not name.startswith("#"):
            name = "#" + name
        kept.append({k: v for k, v in {"type": get_type(tag), "name": name,
                                        "href": first_http_url(tag.get("href"))}.items() if v})
    kept += [{"type": "theme", "name": t} for t in dict.fromkeys(themes)]
    return kept or None


def _place(document: dict) -> dict | None:
    place = next((p for p in as_list(document.get("location")) if isinstance(p, dict)), None)
    if place is None or get_type(place) != "Place":
        return None
    clean = {"type": "Place", "name": plain_text(place.get("name"), 200),
             "latitude": _number(place.get("latitude"), -90, 90),
             "longitude": _number(place.get("longitude"), -180, 180),
             "radius": _number(place.get("radius"), 0, 1e8),
             "units": place.get("units") if place.get("units") in PLACE_UNITS else None}
    if clean["latitude"] is None or clean["longitude"] is None:
        clean["latitude"] = clean["longitude"] = None
    clean = {k: v for k, v in clean.items() if v is not None}
    return clean if len(clean) > 1 else None


def _slug(document: dict, name: str, field: str) -> str | None:
    value = term(document, name)
    return value if isinstance(value, str) and vocab.is_valid(field, value) else None


def _language_map(value, clean) -> dict:
    if not isinstance(value, dict):
        return {}
    return {str(k)[:16]: clean(v) for k, v in value.items() if isinstance(v, str) and clean(v)}


def object_columns(document: dict, followers_url: str | None = None) -> dict:
    """Column values for a received object, its HTML sanitised; `followers_url` is its author's."""
    clean_map = _language_map(document.get("contentMap"), clean_html)
    content = _text(document.get("content"))
    if content is None and clean_map:
        content = next(iter(clean_map.values()))
    name = _text(document.get("name"))
    if content is None and name:
        content = name
    if get_type(document) != "Note" and name and content != name:
        # Article/Page/Event: title first, as Mastodon shows them.
        content = f"<p><strong>{clean_html(name)}</strong></p>{content or ''}"
    name_map = _language_map(document.get("nameMap"), plain_text)
    return {
        "type": get_type(document) or "Note",
        "content": clean_html(content),
        "content_map": clean_map or None,
        "language": next(iter(clean_map), None),
        "summary": clean_html(_text(document.get("summary"))) or None,
        "url": first_http_url(document.get("url")) or document["id"],
        "in_reply_to": get_id(document.get("inReplyTo")),
        "visibility": visibility_of(document, followers_url),
        "document": document,
        "name": plain_text(name) or next(iter(name_map.values()), None),
        "name_map": name_map or None,
        "kind": _slug(document, "updateKind", "update_kind"),
        "stage_change": _slug(document, "stageChange", "stage"),
        "tags": _tags(document),
        "place": _place(document),
        "attachments": _attachments(document),
    }


async def get_object(db: AsyncSession, uri: str) -> Object | None:
    return await db.scalar(select(Object).where(Object.uri == uri))


async def is_followed_locally(db: AsyncSession, actor: Actor) -> bool:
    """True when one of our actors follows `actor` (so its posts belong in our feed)."""
    row = await db.scalar(select(Follow.id).join(Actor, Actor.id == Follow.follower_id).where(
        Follow.followed_id == actor.id, Follow.state == "accepted", Actor.local.is_(True)).limit(1))
    return row is not None


async def holds_replies(db: AsyncSession, reply_to: str | None) -> bool:
    """True when `reply_to` is one of our updates whose project holds replies for approval."""
    if not reply_to:
        return False
    held = await db.scalar(select(Actor.hold_replies).join(Object, Object.actor_id == Actor.id)
                           .where(Object.uri == reply_to, Object.local.is_(True)))
    return bool(held)


# What a feature stores of a received object beyond the columns above, by object type: the events
# package keeps an Event's time, place and how to join (fedsph.events.received.store_event_details).
# A hook the feature fills in its package __init__, because federation may not import features.
ObjectDetails = Callable[[AsyncSession, Object, dict], Awaitable[object]]
OBJECT_DETAILS: dict[str, ObjectDetails] = {}


class NotTheOwner(ValueError):
    """A received object that `actor` may not create or change (handlers check this first)."""


def version_of(document: dict | None):
    """When this version of an object was made: `updated`, else `published` (naive UTC)."""
    if not isinstance(document, dict):
        return None
    return parse_iso(document.get("updated")) or parse_iso(document.get("published"))


def is_older_than_held(existing: Object, document: dict) -> bool:
    """True when `document` is an older version than the one we hold (a replayed Update must
    not roll back an edit); a version without dates cannot be ordered and is not refused."""
    incoming = version_of(document)
    held = version_of(existing.document) or existing.updated or existing.published
    return incoming is not None and held is not None and incoming < held


async def saw_post(db: AsyncSession, actor: Actor, published: datetime) -> None:
    """A new post of `actor` is stored: keep its last_status_at the newest post's date. One
    conditional UPDATE, so two transactions storing posts at once cannot put an older date back;
    a date in the future (another server's clock or claim) counts as now."""
    published = min(published, utcnow())
    newer = await db.scalar(update(Actor).where(
        Actor.id == actor.id,
        or_(Actor.last_status_at.is_(None), Actor.last_status_at < published),
    ).values(last_status_at=published).returning(Actor.last_status_at)
        .execution_options(synchronize_session=False))
    if newer is not None:
        set_committed_value(actor, "last_status_at", newer)


class OlderThanHeld(ValueError):
    """A version of an object older than the one we hold: it never overwrites it."""


async def store_object(db: AsyncSession, document: dict, actor: Actor, *,
                       keep_held: bool = False, silently_addressed: list[str] = ()) -> Object:
    """Insert a received object, or refresh it if we have it already.

    The last line of the ownership rule: a remote actor keeps objects of its own origin only,
    and never one of ours. And the one place that decides whether a version we hold is
    replaced: a relay or a replay can deliver an old signed activity at any time (an integrity
    proof has no Date window), so an older version raises OlderThanHeld, and with `keep_held`
    (a Create: sent again, it is not an edit) an object we hold is returned unchanged.
    `silently_addressed`: our actors a direct post addresses beyond its own addressing (the
    owner of the personal inbox it was delivered to), kept as silent addressees.
    """
    values = object_columns(document, actor.followers_url)
    obj = await get_object(db, document["id"])
    if actor.local or not same_origin(document["id"], actor.uri) or (obj is not None and (
            obj.local or obj.actor_id != actor.id)):
        raise NotTheOwner(f"{actor.uri} may not store {document['id']}")
    if obj is not None and keep_held:
        return obj
    if obj is not None and is_older_than_held(obj, document):
        raise OlderThanHeld(f"{document['id']}: we hold a newer version")
    if obj is None:
        obj = Object(uri=document["id"], actor_id=actor.id, local=False,
                     published=parse_iso(document.get("published")) or utcnow(),
                     approved=not await holds_replies(db, values["in_reply_to"]))
        db.add(obj)
    new = obj.id is None
    for column, value in values.items():
        setattr(obj, column, value)
    obj.updated = parse_iso(document.get("updated"))
    await db.flush()
    if new and obj.type != "Event":
        await saw_post(db, actor, obj.published)
    await store_addressees(db, obj, addressees(document, actor.followers_url), silently_addressed)
    details = OBJECT_DETAILS.get(obj.type)
    if details is not None:
        # An Event's time, place and how to join (one without a usable start is a post only).
        await details(db, obj, document)
    return obj


# -- fetching an object by its URL ------------------------------------------------------------


class UnboundObject(FetchError):
    """A fetched document that cannot be believed as what its `id` says (see fetch_object)."""


def author_of(document: dict) -> str | None:
    """The object's author: `attributedTo`, else `actor` (the first id of either)."""
    for key in ("attributedTo", "actor"):
        author = next((a for a in map(get_id, as_list(document.get(key))) if a), None)
        if author is not None:
            return author
    return None


async def fetch_object(remote: Remote, url: str, refetch: bool = True) -> dict:
    """The object at `url`, bound to where its bytes came from and to its author's server.

    The one rule for every object fetched by URL (Mastodon's CVE-2024-23832, as
    fedsph.federation.actors.fetch_actor for actors): the document's `id` must be the URL that served it
    after redirects, or it is fetched once more from its id; an author, when it names one, is
    on the id's server. An open redirect on one server so never lends it another's content.
    """
    document, final_url = await remote.fetch_document(urldefrag(url)[0])
    claimed = get_id(document)
    if claimed != urldefrag(final_url)[0]:
        if not refetch or not http_url(claimed):
            raise UnboundObject(f"{final_url} serves a document whose id is {claimed!r}")
        return await fetch_object(remote, claimed, refetch=False)
    author = author_of(document)
    if author is not None and not same_origin(author, claimed):
        raise UnboundObject(f"{claimed} names an author on another server: {author}")
    return document
