"""ActivityPub endpoints: actors, inboxes, collections, objects and activities."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web
from sqlalchemy import select

from fedsph.core.logtext import printable
from fedsph.core.urls import (
    ACTIVITY,
    ACTOR,
    ACTOR_FOLLOWERS,
    ACTOR_FOLLOWING,
    ACTOR_INBOX,
    ACTOR_OUTBOX,
    INSTANCE_ACTOR,
    INSTANCE_INBOX,
    OBJECT,
    SHARED_INBOX,
)
from fedsph.errors import N_, Gone, HTTPProblem, NotFound, PayloadTooLarge, ServiceUnavailable
from fedsph.federation.activitystreams import (
    build_collection_page,
    build_ordered_collection,
    build_tombstone,
)
from fedsph.federation.actors import get_actor_by_uri, get_local_actor
from fedsph.federation.inbox import SignedRequest, claimed_key_id, receive
from fedsph.federation.ingest import IngestFailed
from fedsph.federation.local_names import get_deleted_local_actor
from fedsph.federation.visibility import VISIBLE_TO_ALL
from fedsph.models import Activity, Actor, Object
from fedsph.projects import queries
from fedsph.projects.actor_document import build_actor_document
from fedsph.projects.notes import NOTE_CONTEXT, note_collections
from fedsph.projects.outbox import featured_url
from fedsph.web import note_collections as collections_of_notes
from fedsph.web import pages
from fedsph.web.client_address import client_address
from fedsph.web.keys import (
    DOCUMENTS,
    INGEST,
    READERS,
    REMOTE,
    SETTINGS,
    URLS,
    WORKER,
    WRITERS,
)
from fedsph.web.params import page_number
from fedsph.web.render import ap_response, wants_html
from fedsph.web.signed_fetch import fetchable_local_object

inbox_log = logging.getLogger("fedsph.inbox")


async def _find_actor(request: web.Request) -> tuple[Actor | None, Actor | None]:
    """The live local actor named in the URL, else the tombstone of a deleted one."""
    async with request.app[READERS]() as db:
        actor = await get_local_actor(db, request.match_info["username"])
        if actor is not None:
            return actor, None
        return None, await get_deleted_local_actor(db, request.match_info["username"])


async def _actor_or_404(request: web.Request) -> Actor:
    actor, gone = await _find_actor(request)
    if gone is not None:
        raise Gone(N_("This account was deleted."))
    if actor is None:
        raise NotFound("no such actor here")
    return actor


async def actor_view(request: web.Request) -> web.Response:
    if wants_html(request):
        return await pages.actor_page(request, await _actor_or_404(request))
    key = ("actor", request.match_info["username"])
    body = request.app[DOCUMENTS].get(key)
    if body is None:
        actor, gone = await _find_actor(request)
        if gone is not None:
            # As Mastodon answers for a deleted account: 410 Gone (here with its Tombstone).
            # A server checking the actor's Delete, or a stale signature, learns it is gone.
            return ap_response(build_tombstone(gone.uri, gone.type, gone.deleted_at),
                               status=410)
        if actor is None:
            raise NotFound("no such actor here")
        body = request.app[DOCUMENTS][key] = orjson.dumps(
            build_actor_document(actor, request.app[URLS]))
    return ap_response(body)


async def instance_actor_view(request: web.Request) -> web.Response:
    body = request.app[DOCUMENTS].get(("actor", ""))
    if body is None:
        async with request.app[READERS]() as db:
            actor = await get_actor_by_uri(db, request.app[URLS].instance_actor())
        body = request.app[DOCUMENTS][("actor", "")] = orjson.dumps(
            build_actor_document(actor, request.app[URLS]))
    return ap_response(body)


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused once it passes `limit` (chunked bodies have no Content-Length).

    StreamReader.read(n) returns what has arrived so far, not n bytes, so it must be looped.
    A body that came whole with the headers (an activity of a few KB nearly always does) is
    taken at once, without the loop's awaits.
    """
    if request.content.is_eof():
        body = request.content.read_nowait()
        if len(body) > limit:
            raise PayloadTooLarge(f"activities are limited to {limit} bytes")
        return body
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"activities are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def inbox_view(request: web.Request) -> web.Response:
    """POST to an actor's inbox or the shared inbox: verify, store, 202."""
    try:
        outcome = await _receive(request)
    except IngestFailed as exc:
        # Not stored (the batch's commit failed, or we are shutting down): the sender retries.
        inbox_log.error("inbox could not store a request from %s (key %s): %s",
                        client_address(request), printable(claimed_key_id(request.headers)), exc)
        raise ServiceUnavailable(str(exc)) from None
    except HTTPProblem as exc:
        # The one log line of a refused request: reason, peer, key id; never the body.
        inbox_log.warning("inbox refused %s from %s (key %s): %s", exc.status,
                          client_address(request), printable(claimed_key_id(request.headers)),
                          printable(exc.message))
        raise
    if outcome == "dropped":
        inbox_log.info("inbox dropped a request from %s (key %s): blocked or unknown actor",
                       client_address(request), printable(claimed_key_id(request.headers)))
    if outcome == "stored" and request.app.get(WORKER) is not None:
        request.app[WORKER].wakeup.set()
    return web.Response(status=202, text="")


async def _receive(request: web.Request) -> str:
    # A personal inbox: the lookup it takes anyway names the account it addresses (recorded on
    # the row, so the worker counts it as an addressee of a Create).
    owner = (await _actor_or_404(request)).uri if "username" in request.match_info else None
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"activities are limited to {limit} bytes")
    body = await _read_body(request, limit)
    signed = SignedRequest(
        method=request.method, path=request.rel_url.raw_path, query=request.rel_url.raw_query_string,
        headers={k.lower(): v for k, v in request.headers.items()}, body=body,
        target_uri=request.app[SETTINGS].base_url + request.rel_url.raw_path_qs)
    return await receive(request.app[READERS], request.app[WRITERS], request.app[REMOTE],
                         signed, request.headers.get("Content-Type"), request.app[INGEST],
                         delivered_to=owner)


def _page_number(request: web.Request) -> int | None:
    return page_number(request, default=None)


def _page_links(collection: str, page: int, has_next: bool) -> tuple[str, str | None, str | None]:
    return (f"{collection}?page={page}", f"{collection}?page={page + 1}" if has_next else None,
            f"{collection}?page={page - 1}" if page > 1 else None)


async def outbox_view(request: web.Request) -> web.Response:
    actor = await _actor_or_404(request)
    page = _page_number(request)
    async with request.app[READERS]() as db:
        if page is None:
            total = await queries.outbox_count(db, actor)
            return ap_response(build_ordered_collection(actor.outbox, total, f"{actor.outbox}?page=1"))
        posts = await queries.actor_posts(db, actor, page)
        bodies = await queries.create_activities(db, posts)
    items = [orjson.loads(bodies[p.uri]) for p in posts if p.uri in bodies]
    for item in items:
        item.pop("@context", None)
    page_id, next_page, prev_page = _page_links(actor.outbox, page, len(posts) == queries.PAGE_SIZE)
    return ap_response(build_collection_page(page_id, actor.outbox, items, next_page, prev_page))


async def _relations_view(request: web.Request, followers: bool) -> web.Response:
    actor = await _actor_or_404(request)
    collection = actor.followers_url if followers else actor.following_url
    page = _page_number(request)
    async with request.app[READERS]() as db:
        if page is None:
            total = await queries.relation_count(db, actor, followers)
            return ap_response(build_ordered_collection(collection, total, f"{collection}?page=1"))
        others = await queries.relation_actors(db, actor, followers, page)
    page_id, next_page, prev_page = _page_links(collection, page, len(others) == queries.PAGE_SIZE)
    return ap_response(build_collection_page(page_id, collection, [a.uri for a in others],
                                             next_page, prev_page))


async def followers_view(request: web.Request) -> web.Response:
    return await _relations_view(request, followers=True)


async def following_view(request: web.Request) -> web.Response:
    return await _relations_view(request, followers=False)


async def object_view(request: web.Request) -> web.Response:
    obj, actor = await fetchable_local_object(request)
    private = obj.visibility not in VISIBLE_TO_ALL
    if obj.deleted_at is not None:
        if wants_html(request):
            raise Gone("this update was deleted")
        return ap_response(build_tombstone(obj.uri, obj.type, obj.deleted_at), status=410)
    if wants_html(request):
        return await pages.object_page(request, obj, actor)
    # A followers-only or direct post must never be served from a shared cache to someone else.
    document = obj.document or {}
    if obj.type == "Note" and document:
        # A post sent before its collections were named, or with `replies` as a bare URL.
        document = {**document, **note_collections(obj.uri)}
    return ap_response({"@context": NOTE_CONTEXT, **document},
                       headers={"Cache-Control": "private, no-store"} if private else None)


async def featured_view(request: web.Request) -> web.Response:
    """Pinned updates as full Notes: Mastodon shows them to new followers (it never backfills)."""
    actor = await _actor_or_404(request)
    async with request.app[READERS]() as db:
        pinned = await queries.pinned_posts(db, actor)
    # A pinned post sent before its collections were named gets them as object_view gives them.
    items = [{**p.document, **note_collections(p.uri)} if p.type == "Note" else p.document
             for p in pinned if p.document]
    return ap_response({"@context": NOTE_CONTEXT, "id": featured_url(actor),
                        "type": "OrderedCollection", "totalItems": len(items),
                        "orderedItems": items})


async def activity_view(request: web.Request) -> web.Response:
    uri = request.app[URLS].activity(request.match_info["activity_id"])
    async with request.app[READERS]() as db:
        activity = await db.scalar(select(Activity).where(Activity.uri == uri))
        if activity is None:
            raise NotFound("no such activity here")
        obj = None
        if activity.type in ("Create", "Update") and activity.object_uri:
            obj = await db.scalar(select(Object).where(Object.uri == activity.object_uri))
    if obj is not None and (obj.deleted_at is not None or obj.visibility not in VISIBLE_TO_ALL):
        raise Gone("the object of this activity was deleted")
    return ap_response(activity.body)


def add_routes(app: web.Application) -> None:
    app.router.add_get(INSTANCE_ACTOR, instance_actor_view)
    app.router.add_post(INSTANCE_INBOX, inbox_view)
    app.router.add_post(SHARED_INBOX, inbox_view)
    app.router.add_get(ACTOR, actor_view)
    app.router.add_post(ACTOR_INBOX, inbox_view)
    app.router.add_get(ACTOR_OUTBOX, outbox_view)
    app.router.add_get(ACTOR_FOLLOWERS, followers_view)
    app.router.add_get(ACTOR_FOLLOWING, following_view)
    app.router.add_get(OBJECT, object_view)
    app.router.add_get(ACTIVITY, activity_view)
    app.router.add_get(ACTOR + "/featured", featured_view)
    collections_of_notes.add_routes(app)  # a post's replies, likes and shares
