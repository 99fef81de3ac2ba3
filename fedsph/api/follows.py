"""Follows: an account's followers and following, follow/unfollow, and follow requests.

Lists page by the follow row's id (as Mastodon does), with Link headers (fedsph/api/pagination.py).
Following and answering requests go through fedsph.projects.outbox, so they federate as the CLI and the
project pages do; the background worker is woken to deliver at once.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api import entities
from fedsph.api.accounts import account_entity, visible
from fedsph.api.errors import ApiError, api_json, not_found
from fedsph.api.pagination import fetch_page, link_header, page_params
from fedsph.api.params import get_by_id
from fedsph.api.tokens import optional_caller, require_account
from fedsph.core.numbers import parse_id
from fedsph.models import Actor, Follow
from fedsph.projects import outbox
from fedsph.web.keys import READERS, URLS, WORKER, WRITERS


def wake_worker(app: web.Application) -> None:
    worker = app.get(WORKER)
    if worker is not None:
        worker.wakeup.set()


async def _account_or_404(db: AsyncSession, raw: str) -> Actor:
    actor = visible(await get_by_id(db, Actor, raw))
    if actor is None:
        raise not_found()
    return actor


async def relationship_of(db: AsyncSession, me: Actor, target: Actor) -> dict:
    """The Relationship entity between the acting account and `target`."""
    rows = await db.execute(select(Follow.follower_id, Follow.state).where(
        ((Follow.follower_id == me.id) & (Follow.followed_id == target.id))
        | ((Follow.follower_id == target.id) & (Follow.followed_id == me.id))))
    states = {follower: state for follower, state in rows}
    return entities.relationship(target, states.get(me.id), states.get(target.id))


async def _account_page(request: web.Request, db: AsyncSession, subject_id: int,
                        followers: bool, state: str) -> web.Response:
    """Accounts following `subject_id` (followers) or followed by it, in Follow.id order."""
    mine, theirs = (Follow.followed_id, Follow.follower_id) if followers else (
        Follow.follower_id, Follow.followed_id)
    query = (select(Follow.id, Actor).join(Actor, theirs == Actor.id)
             .where(mine == subject_id, Follow.state == state, Actor.type != "Application"))
    rows = await fetch_page(db, query, Follow.id, page_params(request.query))
    accounts = [await account_entity(request, db, actor) for _, actor in rows]
    return api_json(accounts, headers=link_header(request, [follow_id for follow_id, _ in rows]))


async def _relation_list(request: web.Request, followers: bool) -> web.Response:
    await optional_caller(request)  # public lists; a token sent must still be valid
    async with request.app[READERS]() as db:
        subject = await _account_or_404(db, request.match_info["id"])
        return await _account_page(request, db, subject.id, followers, "accepted")


async def followers(request: web.Request) -> web.Response:
    return await _relation_list(request, followers=True)


async def following(request: web.Request) -> web.Response:
    return await _relation_list(request, followers=False)


async def _change_follow(request: web.Request, caller, change) -> web.Response:
    """Run `change` (outbox.follow or unfollow) from the caller to the path's account."""
    async with request.app[WRITERS]() as db, db.begin():
        target = await _account_or_404(db, request.match_info["id"])
        me = await db.get(Actor, caller.actor.id)
        if change is outbox.follow and target.id == me.id:  # unfollowing oneself is a no-op
            raise ApiError(422, "You cannot follow yourself")
        await change(db, request.app[URLS], me, target)
        await db.flush()
        answer = await relationship_of(db, me, target)
    wake_worker(request.app)
    return api_json(answer)


async def follow(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:follows")
    return await _change_follow(request, caller, outbox.follow)


async def unfollow(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:follows")
    return await _change_follow(request, caller, outbox.unfollow)  # not following is no error


async def follow_requests(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:follows")
    async with request.app[READERS]() as db:
        return await _account_page(request, db, caller.actor.id, True, "pending")


async def _answer(request: web.Request, accept: bool) -> web.Response:
    """`id` is the requesting account's id, as in Mastodon."""
    caller = await require_account(request, "write:follows")
    follower_id = parse_id(request.match_info["id"])
    if follower_id is None:
        raise not_found()
    async with request.app[WRITERS]() as db, db.begin():
        relation = await db.scalar(select(Follow).where(
            Follow.follower_id == follower_id,
            Follow.followed_id == caller.actor.id, Follow.state == "pending"))
        if relation is None:
            raise not_found()
        await outbox.answer_follow(db, request.app[URLS], relation, accept=accept)
        await db.flush()
        answer = await relationship_of(db, caller.actor, await db.get(Actor, follower_id))
    wake_worker(request.app)
    return api_json(answer)


async def authorize_request(request: web.Request) -> web.Response:
    return await _answer(request, accept=True)


async def reject_request(request: web.Request) -> web.Response:
    return await _answer(request, accept=False)
