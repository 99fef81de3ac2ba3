"""A new member's recent updates, fetched from its outbox, so the hub shows it at once.

Handlers must not wait on other servers, so approving a member only queues the work: a
synthetic inbox item of type BACKFILL (durable: it survives a restart and is retried with the
inbox's back-off like any other item). The worker fetches the outbox's first page before the
handler's transaction opens (fetch_backfill), and the handler (fedsph.handlers.hubs) stores
what it may keep (store_backfilled). Backfilled posts are old news: they are not announced.
"""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.errors import BlockedAddress, FetchError
from fedsph.federation.activitystreams import as_list, get_id, get_type, is_public, same_origin
from fedsph.federation.remote import Remote
from fedsph.federation.remote_objects import POST_TYPES, get_object, store_object
from fedsph.models import Actor, InboxItem

BACKFILL = "fedsph:Backfill"
BACKFILL_LIMIT = 20


async def queue_backfill(db: AsyncSession, urls: URLs, hub: Actor, project: Actor) -> None:
    """Queue the fetch of `project`'s recent public posts for `hub` (a remote project only: a
    project of this node has its posts here already)."""
    if project.local or not project.outbox:
        return
    document = {"id": urls.new_activity(), "type": BACKFILL, "actor": project.uri,
                "object": project.outbox, "target": hub.uri}
    db.add(InboxItem(activity_uri=document["id"], type=BACKFILL, actor_uri=project.uri,
                     body=orjson.dumps(document)))


async def _fetch_from(remote: Remote, url: str, actor_uri: str) -> dict:
    """The collection at `url`, refused (as empty) when a redirect took us off the project's
    server: the posts in it are believed only from there (fedsph.federation.remote_objects.fetch_object)."""
    document, final_url = await remote.fetch_document(url)
    return document if same_origin(final_url, actor_uri) else {}


async def fetch_backfill(remote: Remote, activity: dict) -> None:
    """Worker side: the outbox's first page (from the project's own host), as activity["items"]."""
    actor_uri, outbox = get_id(activity.get("actor")), get_id(activity.get("object"))
    activity["items"] = []
    if not same_origin(outbox, actor_uri):
        return
    try:
        collection = await _fetch_from(remote, outbox, actor_uri)
        page = collection.get("first")
        if isinstance(page, str) and same_origin(page, actor_uri):
            page = await _fetch_from(remote, page, actor_uri)
        if not isinstance(page, dict):
            page = collection
        items = as_list(page.get("orderedItems") or page.get("items"))[:BACKFILL_LIMIT]
    except FetchError as exc:
        if exc.status in (404, 410) or isinstance(exc, BlockedAddress):
            return  # nothing to backfill from: the membership stands without it
        raise
    activity["items"] = [item for item in items if isinstance(item, dict)]


def _keepable(item: dict, project: Actor) -> dict | None:
    """The post of a public Create by `project`, on its own host; None for anything else."""
    if get_type(item) != "Create" or get_id(item.get("actor")) != project.uri:
        return None
    obj = item.get("object")
    if not isinstance(obj, dict) or get_type(obj) not in POST_TYPES:
        return None
    if not same_origin(get_id(obj), project.uri):
        return None
    if get_id(obj.get("attributedTo")) not in (None, project.uri):
        return None
    if not (is_public(item) or is_public(obj)):
        return None  # followers-only posts stay with the project's followers
    return obj


async def store_backfilled(db: AsyncSession, items: list, project: Actor) -> int:
    """Store the public posts among `items` that we lack; returns how many were stored."""
    stored = 0
    for item in items:
        obj = _keepable(item, project) if isinstance(item, dict) else None
        if obj is None or await get_object(db, obj["id"]) is not None:
            continue
        await store_object(db, obj, project)
        stored += 1
    return stored
