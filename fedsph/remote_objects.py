"""Storing objects (Notes and friends) received from other servers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.activitystreams import PUBLIC_ALIASES, as_list, get_id, get_type, parse_iso
from fedsph.models import Actor, Follow, Object, utcnow
from fedsph.sanitize import clean_html

# Types we keep as posts. Mastodon shows Article/Page/Event as a title and a link; so do we.
POST_TYPES = {"Note", "Article", "Page", "Question", "Event", "Video", "Audio", "Image"}


def visibility_of(document: dict) -> str:
    to = {get_id(x) for x in as_list(document.get("to"))}
    cc = {get_id(x) for x in as_list(document.get("cc"))}
    if to & PUBLIC_ALIASES:
        return "public"
    if cc & PUBLIC_ALIASES:
        return "unlisted"
    return "followers"


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def object_columns(document: dict) -> dict:
    """Column values for a received object, its HTML sanitised."""
    content_map = document.get("contentMap")
    clean_map = {}
    if isinstance(content_map, dict):
        clean_map = {str(k)[:16]: clean_html(v) for k, v in content_map.items() if isinstance(v, str)}
    content = _text(document.get("content"))
    if content is None and clean_map:
        content = next(iter(clean_map.values()))
    name = _text(document.get("name"))
    if content is None and name:
        content = name
    if get_type(document) != "Note" and name and content != name:
        # Article/Page/Event: title first, as Mastodon shows them.
        content = f"<p><strong>{clean_html(name)}</strong></p>{content or ''}"
    return {
        "type": get_type(document) or "Note",
        "content": clean_html(content),
        "content_map": clean_map or None,
        "language": next(iter(clean_map), None),
        "summary": clean_html(_text(document.get("summary"))) or None,
        "url": get_id(document.get("url")) or document["id"],
        "in_reply_to": get_id(document.get("inReplyTo")),
        "visibility": visibility_of(document),
        "document": document,
    }


async def get_object(db: AsyncSession, uri: str) -> Object | None:
    return await db.scalar(select(Object).where(Object.uri == uri))


async def is_followed_locally(db: AsyncSession, actor: Actor) -> bool:
    """True when one of our actors follows `actor` (so its posts belong in our feed)."""
    row = await db.scalar(select(Follow.id).join(Actor, Actor.id == Follow.follower_id).where(
        Follow.followed_id == actor.id, Follow.state == "accepted", Actor.local.is_(True)).limit(1))
    return row is not None


async def store_object(db: AsyncSession, document: dict, actor: Actor) -> Object:
    """Insert a received object, or refresh it if we have it already."""
    values = object_columns(document)
    obj = await get_object(db, document["id"])
    if obj is None:
        obj = Object(uri=document["id"], actor_id=actor.id, local=False,
                     published=parse_iso(document.get("published")) or utcnow())
        db.add(obj)
    for column, value in values.items():
        setattr(obj, column, value)
    obj.updated = parse_iso(document.get("updated"))
    await db.flush()
    return obj
