"""Accounts: verify_credentials, an account by id, lookup by acct, and relationships."""

from __future__ import annotations

import io
from functools import cache

from aiohttp import web
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph import queries
from fedsph.api import entities
from fedsph.api.errors import api_json, not_found
from fedsph.api.params import list_param
from fedsph.api.tokens import optional_caller, require_account
from fedsph.models import Actor, Follow
from fedsph.web.keys import LANG, SESSIONS, SETTINGS, URLS

MAX_RELATIONSHIPS = 40


async def counts(db: AsyncSession, actor: Actor) -> dict[str, int]:
    return {"statuses": await queries.outbox_count(db, actor),
            "followers": await queries.relation_count(db, actor, followers=True),
            "following": await queries.relation_count(db, actor, followers=False)}


async def account_entity(request: web.Request, db: AsyncSession, actor: Actor) -> dict:
    return entities.account(actor, request.app[URLS].base, await counts(db, actor),
                            request.get(LANG, "en"))


def _visible(actor: Actor | None) -> Actor | None:
    """The instance actor is not an account apps should see."""
    return actor if actor is not None and actor.type != "Application" else None


async def verify_credentials(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:accounts")
    async with request.app[SESSIONS]() as db:
        actor = caller.actor
        pending = await db.scalar(select(func.count(Follow.id)).where(
            Follow.followed_id == actor.id, Follow.state == "pending")) or 0
        entity = entities.credential_account(actor, request.app[URLS].base,
                                             await counts(db, actor), pending)
    return api_json(entity)


async def get_account(request: web.Request) -> web.Response:
    await optional_caller(request)  # a token sent must be valid, but none is needed
    raw = request.match_info["id"]
    async with request.app[SESSIONS]() as db:
        actor = _visible(await db.get(Actor, int(raw))) if raw.isdigit() else None
        if actor is None:
            raise not_found()
        return api_json(await account_entity(request, db, actor))


async def lookup(request: web.Request) -> web.Response:
    """`acct` as `name`, `@name`, `name@this.domain` or `name@remote.domain` (known ones only)."""
    await optional_caller(request)
    username, _, domain = request.query.get("acct", "").strip().lstrip("@").partition("@")
    domain = domain.lower() or request.app[SETTINGS].domain
    async with request.app[SESSIONS]() as db:
        actor = _visible(await db.scalar(select(Actor).where(
            Actor.username == username, Actor.domain == domain)))
        if actor is None:
            raise not_found()
        return api_json(await account_entity(request, db, actor))


async def relationships(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:follows")
    ids = [int(i) for i in list_param(request.query, "id") if i.isdigit()][:MAX_RELATIONSHIPS]
    me = caller.actor
    async with request.app[SESSIONS]() as db:
        targets = {a.id: a for a in await db.scalars(select(Actor).where(Actor.id.in_(ids)))}
        rows = await db.execute(select(Follow.follower_id, Follow.followed_id, Follow.state).where(
            ((Follow.follower_id == me.id) & Follow.followed_id.in_(ids))
            | ((Follow.followed_id == me.id) & Follow.follower_id.in_(ids))))
    outgoing, incoming = {}, {}
    for follower, followed, state in rows:
        if follower == me.id:
            outgoing[followed] = state
        else:
            incoming[follower] = state
    return api_json([entities.relationship(targets[i], outgoing.get(i), incoming.get(i))
                     for i in dict.fromkeys(ids) if i in targets])


@cache
def _missing_png() -> bytes:
    """Mastodon's default avatar/header path serves a plain grey square."""
    out = io.BytesIO()
    Image.new("RGB", (120, 120), (200, 200, 200)).save(out, "PNG")
    return out.getvalue()


async def missing_image(request: web.Request) -> web.Response:
    return web.Response(body=_missing_png(), content_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})
