"""Search (v2): accounts by handle, by URL, or local ones by username or name; statuses by URL.

`user@host`, `@user@host` and actor URLs are looked up among known actors; with `resolve=true`
(which needs a user's token, as on Mastodon) unknown ones are fetched through WebFinger and signed GETs.
A post's URL finds the post we hold; with `resolve=true` an unknown one is fetched (signed GET)
and stored when it is a post whose id is on its author's server. There is no full-text search of
statuses, and hashtags are answered with an empty list.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api.accounts import account_entity, visible
from fedsph.api.errors import ApiError, api_json
from fedsph.api.params import flag, number_param
from fedsph.api.statuses import status_entity
from fedsph.api.tokens import Caller, optional_caller
from fedsph.errors import FetchError
from fedsph.federation.activitystreams import get_type
from fedsph.federation.actors import resolve_actor, resolve_handle
from fedsph.federation.remote_objects import (
    NotTheOwner,
    OlderThanHeld,
    author_of,
    fetch_object,
    get_object,
    store_object,
)
from fedsph.federation.visibility import may_see
from fedsph.models import Actor, Object
from fedsph.projects.queries import not_withheld
from fedsph.web.keys import READERS, REMOTE, WRITERS

DEFAULT_LIMIT, MAX_LIMIT = 20, 40
STATUS_TYPES = ("Note", "Article", "Page", "Question", "Event")


def _handle(query: str) -> tuple[str, str] | None:
    """(username, domain) of `user@host` or `@user@host`, else None."""
    user, at, host = query.lstrip("@").partition("@")
    if not at or not user or not host or any(c.isspace() or c in "/@" for c in user + host):
        return None
    return user, host.lower()


def _number(raw: int | None, default: int, maximum: int) -> int:
    return default if raw is None else min(raw, maximum)


async def _known(db: AsyncSession, query: str) -> Actor | None:
    """An actor we already hold, named by handle or by URL."""
    handle = _handle(query)
    if handle is not None:
        username, host = handle
        return visible(await db.scalar(select(Actor).where(
            Actor.username == username, Actor.domain == host)))
    return visible(await db.scalar(select(Actor).where(
        or_(Actor.uri == query, Actor.url == query)).limit(1)))


async def _resolve(request: web.Request, query: str) -> Actor | None:
    try:
        actor_id = await resolve_handle(request.app[WRITERS], request.app[REMOTE], query,
                                        refresh=False)
    except FetchError:
        return None  # not an account, or its server did not answer: nothing found
    async with request.app[READERS]() as db:
        return visible(await db.get(Actor, actor_id))


async def _local_matches(db: AsyncSession, query: str, limit: int, offset: int) -> list[Actor]:
    pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(await db.scalars(
        select(Actor).where(Actor.local.is_(True), Actor.type != "Application",
                            Actor.deleted_at.is_(None),
                            or_(func.lower(Actor.username).like(pattern, escape="\\"),
                                func.lower(Actor.name).like(pattern, escape="\\")))
        .order_by(Actor.username).offset(offset).limit(limit)))


async def _known_status(db: AsyncSession, url: str, me: Actor | None) -> Object | None:
    """A post we hold with this id or URL that `me` may see."""
    obj = await db.scalar(select(Object).where(
        or_(Object.uri == url, Object.url == url), not_withheld()).order_by(Object.id).limit(1))
    return obj if obj is not None and await may_see(db, obj, me) else None


async def _fetch_post(request: web.Request, url: str) -> tuple[dict, str] | None:
    """The post at `url` and its author's URI, bound to its author's server (fetch_object)."""
    document = await fetch_object(request.app[REMOTE], url)
    author = author_of(document)
    if get_type(document) not in STATUS_TYPES or author is None:
        return None
    return document, author


async def _resolve_status(request: web.Request, url: str) -> str | None:
    """Fetch, check and store the post at `url`; its id, or None when nothing was kept.

    No transaction is open while fetching.
    """
    try:
        fetched = await _fetch_post(request, url)
        if fetched is None:
            return None
        document, author_uri = fetched
        author_id = await resolve_actor(request.app[WRITERS], request.app[REMOTE], author_uri)
    except FetchError:
        return None  # not a post, or its server did not answer: nothing found
    async with request.app[WRITERS]() as db, db.begin():
        existing = await get_object(db, document["id"])
        if existing is not None and (existing.deleted_at is not None
                                     or existing.actor_id != author_id):
            return None
        author = await db.get(Actor, author_id)
        if author is None or author.local:
            return None
        try:
            await store_object(db, document, author)
        except OlderThanHeld:
            pass  # its server served an older copy than ours: search finds the one we hold
        except NotTheOwner:
            return None
    return document["id"]


async def _statuses(request: web.Request, query: str, caller: Caller | None,
                    resolve: bool) -> list[dict]:
    me = caller.actor if caller else None
    async with request.app[READERS]() as db:
        obj = await _known_status(db, query, me)
        is_actor = obj is None and await _known(db, query) is not None
    resolved = await _resolve_status(request, query) if obj is None and resolve and not is_actor \
        else None
    async with request.app[READERS]() as db:
        if resolved is not None:
            # Found under its id, which may differ from the URL asked for (a page's address).
            obj = await _known_status(db, resolved, me)
        return [await status_entity(request, db, obj, me)] if obj is not None else []


async def search_v2(request: web.Request) -> web.Response:
    caller = await optional_caller(request)
    query = request.query.get("q", "").strip()
    kind = request.query.get("type", "")
    resolve = flag(request.query, "resolve")
    if resolve and (caller is None or caller.actor is None):
        # An app-only token acts for nobody: as on Mastodon, only a user may make us fetch.
        raise ApiError(401, "Search queries that resolve remote resources are not supported "
                            "without authentication")
    limit = max(1, _number(number_param(request.query, "limit"), DEFAULT_LIMIT, MAX_LIMIT))
    offset = _number(number_param(request.query, "offset"), 0, 10_000)
    found: list[Actor] = []
    if query and kind in ("", "accounts"):
        exact = _handle(query) is not None or query.startswith(("https://", "http://"))
        async with request.app[READERS]() as db:
            if exact:
                actor = await _known(db, query)
                found = [actor] if actor is not None else []
            else:
                found = await _local_matches(db, query, limit, offset)
        if exact and not found and resolve and offset == 0:
            actor = await _resolve(request, query.lstrip("@"))
            found = [actor] if actor is not None else []
    statuses = []
    if (query.startswith(("https://", "http://")) and kind in ("", "statuses") and offset == 0
            and not found):
        statuses = await _statuses(request, query, caller, resolve)
    async with request.app[READERS]() as db:
        accounts = [await account_entity(request, db, actor) for actor in found]
    return api_json({"accounts": accounts, "statuses": statuses, "hashtags": []})
