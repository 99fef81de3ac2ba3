"""Favourites and boosts from apps: favourite/unfavourite, reblog/unreblog, and who did them.

Reacting goes through fedsph.projects.outbox_reactions (like_object, announce_object and their undos), so a favourite
from an app federates as a Like and a boost as an Announce. The lists of accounts page by the
Reaction row's id, with Link headers (fedsph/api/pagination.py).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from fedsph.api.accounts import account_entity
from fedsph.api.errors import ApiError, api_json
from fedsph.api.follows import wake_worker
from fedsph.api.pagination import fetch_page, link_header, page_params
from fedsph.api.reblogs import reblog_entity
from fedsph.api.statuses import status_entity, visible_object
from fedsph.api.tokens import optional_caller, require_account
from fedsph.errors import UserError
from fedsph.models import Actor, Reaction
from fedsph.projects import outbox_reactions
from fedsph.web.keys import READERS, URLS, WRITERS

ACTIONS = {"favourite": outbox_reactions.like_object, "unfavourite": outbox_reactions.unlike_object,
           "reblog": outbox_reactions.announce_object, "unreblog": outbox_reactions.unannounce_object}


async def _act(request: web.Request, action: str) -> tuple[int, int | None, Actor]:
    """Do `action` on the status; its id, the reaction's id (for a reblog) and who acted."""
    caller = await require_account(request, "write:favourites" if "favourite" in action
                                   else "write:statuses")
    async with request.app[WRITERS]() as db, db.begin():
        me = await db.get(Actor, caller.actor.id)
        obj = await visible_object(db, request.match_info["id"], me)
        try:
            result = await ACTIONS[action](db, request.app[URLS], me, obj)
        except UserError as exc:
            raise ApiError(422, f"Validation failed: {exc}") from None
        await db.flush()
        reaction_id = result.id if isinstance(result, Reaction) else None
    wake_worker(request.app)
    return obj.id, reaction_id, caller.actor


async def _status_answer(request: web.Request, object_id: int, me: Actor) -> dict:
    async with request.app[READERS]() as db:
        return await status_entity(request, db, await visible_object(db, str(object_id), me), me)


async def favourite(request: web.Request) -> web.Response:
    object_id, _, me = await _act(request, "favourite")
    return api_json(await _status_answer(request, object_id, me))


async def unfavourite(request: web.Request) -> web.Response:
    object_id, _, me = await _act(request, "unfavourite")
    return api_json(await _status_answer(request, object_id, me))


async def reblog(request: web.Request) -> web.Response:
    object_id, reaction_id, me = await _act(request, "reblog")
    original = await _status_answer(request, object_id, me)
    async with request.app[READERS]() as db:
        reaction = await db.get(Reaction, reaction_id)
        wrapper = await reblog_entity(request, db, original, await db.get(Actor, me.id), reaction)
    return api_json(wrapper)


async def unreblog(request: web.Request) -> web.Response:
    object_id, _, me = await _act(request, "unreblog")
    return api_json(await _status_answer(request, object_id, me))


async def _reactors(request: web.Request, kind: str) -> web.Response:
    caller = await optional_caller(request)  # public lists; a token sent must still be valid
    me = caller.actor if caller else None
    async with request.app[READERS]() as db:
        obj = await visible_object(db, request.match_info["id"], me)
        # A boost addressed to its booster's followers only is nobody else's to list.
        query = (select(Reaction.id, Actor).join(Actor, Actor.id == Reaction.actor_id)
                 .where(Reaction.object_uri == obj.uri, Reaction.type == kind,
                        Reaction.followers_only.is_(False)))
        rows = await fetch_page(db, query, Reaction.id, page_params(request.query))
        accounts = [await account_entity(request, db, actor) for _, actor in rows]
    return api_json(accounts, headers=link_header(request, [row_id for row_id, _ in rows]))


async def favourited_by(request: web.Request) -> web.Response:
    return await _reactors(request, "Like")


async def reblogged_by(request: web.Request) -> web.Response:
    return await _reactors(request, "Announce")
