"""Accounts: verify_credentials, update_credentials, an account by id, lookup, relationships."""

from __future__ import annotations

import io
from functools import cache

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api import entities
from fedsph.api.errors import ApiError, api_json, not_found
from fedsph.api.params import TRUE_WORDS, get_by_id, list_param, read_params
from fedsph.api.tokens import optional_caller, require_account
from fedsph.core.numbers import parse_id
from fedsph.models import Actor, Follow
from fedsph.projects import queries
from fedsph.projects.profile import ProfileError, apply_changes, send_actor_update
from fedsph.web.documents import forget_actor
from fedsph.web.keys import DOCUMENTS, LANG, READERS, SETTINGS, URLS, WORKER, WRITERS

MAX_RELATIONSHIPS = 40


async def counts(db: AsyncSession, actor: Actor) -> dict[str, int]:
    return {"statuses": await queries.outbox_count(db, actor),
            "followers": await queries.relation_count(db, actor, followers=True),
            "following": await queries.relation_count(db, actor, followers=False)}


async def account_entity(request: web.Request, db: AsyncSession, actor: Actor) -> dict:
    return entities.account(actor, request.app[URLS].base, await counts(db, actor),
                            request.get(LANG, "en"))


def visible(actor: Actor | None) -> Actor | None:
    """The instance actor is not an account apps should see, nor a deleted local actor's
    tombstone (404, as Mastodon's API answers for a deleted account)."""
    return (actor if actor is not None and actor.type != "Application"
            and actor.deleted_at is None else None)


async def verify_credentials(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:accounts")
    async with request.app[READERS]() as db:
        return api_json(await _credential_entity(request, db, caller.actor))


async def _credential_entity(request: web.Request, db: AsyncSession, actor: Actor) -> dict:
    pending = await db.scalar(select(func.count(Follow.id)).where(
        Follow.followed_id == actor.id, Follow.state == "pending")) or 0
    return entities.credential_account(actor, request.app[URLS].base, await counts(db, actor),
                                       pending)


async def update_credentials(request: web.Request) -> web.Response:
    """display_name, note (plain text) and locked; the new profile is sent to the followers.

    Avatars, headers and `fields_attributes` are left alone: a project's facts are edited on its
    profile page, where they are typed (stage, partners, location…), not free name/value pairs.
    """
    caller = await require_account(request, "write:accounts")
    params = await read_params(request)
    changes = {key: params[name] for name, key in (("display_name", "name"), ("note", "summary"))
               if name in params}
    async with request.app[WRITERS]() as db, db.begin():
        actor = await db.get(Actor, caller.actor.id)
        try:
            apply_changes(actor, changes)
        except ProfileError as exc:
            raise ApiError(422, f"Validation failed: {exc}") from None
        if "locked" in params:
            actor.manually_approves = str(params["locked"]).strip().lower() in TRUE_WORDS
        await db.flush()
        await send_actor_update(db, request.app[URLS], actor)
        entity = await _credential_entity(request, db, actor)
    forget_actor(request.app[DOCUMENTS], actor.username)
    if request.app.get(WORKER) is not None:
        request.app[WORKER].wakeup.set()
    return api_json(entity)


async def get_account(request: web.Request) -> web.Response:
    await optional_caller(request)  # a token sent must be valid, but none is needed
    raw = request.match_info["id"]
    async with request.app[READERS]() as db:
        actor = visible(await get_by_id(db, Actor, raw))
        if actor is None:
            raise not_found()
        return api_json(await account_entity(request, db, actor))


async def lookup(request: web.Request) -> web.Response:
    """`acct` as `name`, `@name`, `name@this.domain` or `name@remote.domain` (known ones only)."""
    await optional_caller(request)
    username, _, domain = request.query.get("acct", "").strip().lstrip("@").partition("@")
    domain = domain.lower() or request.app[SETTINGS].domain
    async with request.app[READERS]() as db:
        actor = visible(await db.scalar(select(Actor).where(
            Actor.username == username, Actor.domain == domain)))
        if actor is None:
            raise not_found()
        return api_json(await account_entity(request, db, actor))


async def relationships(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:follows")
    # Ids that are no row id are left out, as unknown ones are.
    ids = [i for i in map(parse_id, list_param(request.query, "id")) if i is not None]
    ids = ids[:MAX_RELATIONSHIPS]
    me = caller.actor
    async with request.app[READERS]() as db:
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
    from PIL import Image  # on first use only: see fedsph/projects/media.py _pillow

    out = io.BytesIO()
    Image.new("RGB", (120, 120), (200, 200, 200)).save(out, "PNG")
    return out.getvalue()


async def missing_image(request: web.Request) -> web.Response:
    return web.Response(body=_missing_png(), content_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})
