"""Search (v2): accounts by handle, by URL, or local ones by username or name.

`user@host`, `@user@host` and actor URLs are looked up among known actors; with `resolve=true`
(which needs a token, as on Mastodon) unknown ones are fetched through WebFinger and signed GETs.
Statuses and hashtags are answered with empty lists: this module searches accounts only.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.actors import resolve_handle
from fedsph.api.accounts import account_entity, visible
from fedsph.api.errors import ApiError, api_json
from fedsph.api.params import flag
from fedsph.api.tokens import optional_caller
from fedsph.errors import FetchError
from fedsph.models import Actor
from fedsph.web.keys import REMOTE, SESSIONS

DEFAULT_LIMIT, MAX_LIMIT = 20, 40


def _handle(query: str) -> tuple[str, str] | None:
    """(username, domain) of `user@host` or `@user@host`, else None."""
    user, at, host = query.lstrip("@").partition("@")
    if not at or not user or not host or any(c.isspace() or c in "/@" for c in user + host):
        return None
    return user, host.lower()


def _number(raw: str | None, default: int, maximum: int) -> int:
    raw = (raw or "").strip()
    return min(int(raw), maximum) if raw.isdigit() else default


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
        actor_id = await resolve_handle(request.app[SESSIONS], request.app[REMOTE], query,
                                        refresh=False)
    except FetchError:
        return None  # not an account, or its server did not answer: nothing found
    async with request.app[SESSIONS]() as db:
        return visible(await db.get(Actor, actor_id))


async def _local_matches(db: AsyncSession, query: str, limit: int, offset: int) -> list[Actor]:
    pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(await db.scalars(
        select(Actor).where(Actor.local.is_(True), Actor.type != "Application",
                            or_(func.lower(Actor.username).like(pattern, escape="\\"),
                                func.lower(Actor.name).like(pattern, escape="\\")))
        .order_by(Actor.username).offset(offset).limit(limit)))


async def search_v2(request: web.Request) -> web.Response:
    caller = await optional_caller(request)
    query = request.query.get("q", "").strip()
    kind = request.query.get("type", "")
    resolve = flag(request.query, "resolve")
    if resolve and caller is None:
        raise ApiError(401, "Search queries that resolve remote resources are not supported "
                            "without authentication")
    limit = max(1, _number(request.query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT))
    offset = _number(request.query.get("offset"), 0, 10_000)
    found: list[Actor] = []
    if query and kind in ("", "accounts"):
        exact = _handle(query) is not None or query.startswith(("https://", "http://"))
        async with request.app[SESSIONS]() as db:
            if exact:
                actor = await _known(db, query)
                found = [actor] if actor is not None else []
            else:
                found = await _local_matches(db, query, limit, offset)
        if exact and not found and resolve and offset == 0:
            actor = await _resolve(request, query.lstrip("@"))
            found = [actor] if actor is not None else []
    async with request.app[SESSIONS]() as db:
        accounts = [await account_entity(request, db, actor) for actor in found]
    return api_json({"accounts": accounts, "statuses": [], "hashtags": []})
