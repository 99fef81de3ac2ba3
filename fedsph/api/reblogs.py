"""Boosts as statuses of their own: the reblog wrapper, and GET/DELETE of /api/v1/statuses/:id
when the id is a boost's.

A boost is a Reaction (type Announce) whose `status_id` comes from the posts' id space
(fedsph.models.status_ids), so a wrapper never has its post's id: apps that key statuses by id
keep the two apart, and a boost sorts in time among posts. Its owner deletes it by that id
(the same as unreblog: an Undo{Announce} goes out); other ids fall through to fedsph.api.statuses.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api import statuses
from fedsph.api.accounts import account_entity
from fedsph.api.entities import iso
from fedsph.api.errors import api_json, not_found
from fedsph.api.follows import wake_worker
from fedsph.api.tokens import optional_caller, require_account
from fedsph.models import Actor, Object, Reaction
from fedsph.projects import outbox_reactions
from fedsph.web.keys import READERS, URLS, WRITERS


async def reblog_entity(request: web.Request, db: AsyncSession, original: dict, booster: Actor,
                        reaction: Reaction) -> dict:
    """A boost as Mastodon shows it: a status by the booster, with its own id, whose `reblog`
    is the post."""
    account = await account_entity(request, db, booster)
    wrapper = {**original, "id": str(reaction.status_id), "uri": reaction.activity_uri,
               "url": reaction.activity_uri, "created_at": iso(reaction.created_at),
               "edited_at": None, "account": account, "content": "", "spoiler_text": "",
               "media_attachments": [], "mentions": [], "tags": [], "emojis": [],
               "sensitive": False, "pinned": False, "poll": None, "card": None,
               "in_reply_to_id": None, "in_reply_to_account_id": None, "language": None,
               "reblog": original}
    wrapper.pop("application", None)  # optional, never null, in Mastodon's Status
    return wrapper


async def boost_wrapper(request: web.Request, db: AsyncSession, boost: Reaction,
                        me: Actor | None) -> dict:
    """The wrapper of `boost` as `me` sees it; 404 when `me` may not see the post, or the boost
    (one addressed to the booster's followers, unless `me` is the booster or follows it)."""
    post = await db.scalar(select(Object).where(Object.uri == boost.object_uri))
    if post is None or (boost.followers_only and not await statuses.follows_booster(db, me, boost.actor_id)):
        raise not_found()
    post = await statuses.visible_object(db, str(post.id), me)
    original = await statuses.status_entity(request, db, post, me)
    return await reblog_entity(request, db, original, await db.get(Actor, boost.actor_id), boost)


async def get_status(request: web.Request) -> web.Response:
    """A boost's id answers its wrapper; a post's id, the post (fedsph.api.statuses)."""
    caller = await optional_caller(request)
    async with request.app[READERS]() as db:
        boost = await statuses.boost_by_status_id(db, request.match_info["id"])
        if boost is not None:
            return api_json(await boost_wrapper(request, db, boost,
                                                caller.actor if caller else None))
    return await statuses.get_status(request)


async def delete_status(request: web.Request) -> web.Response:
    """Deleting one's own boost by its id takes it back (Undo{Announce}) and answers the wrapper;
    anyone else's boost is a 404 and stays. A post's id deletes the post (fedsph.api.statuses)."""
    caller = await require_account(request, "write:statuses")
    async with request.app[READERS]() as db:
        boost = await statuses.boost_by_status_id(db, request.match_info["id"])
        if boost is None:
            entity = None
        elif boost.actor_id != caller.actor.id:
            raise not_found()
        else:
            entity = await boost_wrapper(request, db, boost, caller.actor)
    if entity is None:
        return await statuses.delete_status(request)
    async with request.app[WRITERS]() as db, db.begin():
        post = await db.scalar(select(Object).where(Object.uri == boost.object_uri))
        await outbox_reactions.unannounce_object(db, request.app[URLS],
                                                 await db.get(Actor, caller.actor.id), post)
    wake_worker(request.app)
    return api_json(entity)
