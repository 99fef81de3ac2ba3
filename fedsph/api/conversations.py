"""Direct-message conversations for apps: list, mark read, remove (Mastodon's
/api/v1/conversations, app/controllers/api/v1/conversations_controller.rb).

Rows are fedsph.models.Conversation, one per account and set of other people
(fedsph/projects/conversations.py keeps them). The list runs newest first by its newest post's
status id, and pages by it as Mastodon does: `max_id`, `since_id` and `min_id` are status ids,
and so are the cursors of the Link header. Only the account's own rows are ever read or changed;
another account's conversation id is a 404, as an unknown one.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api.accounts import account_entity
from fedsph.api.errors import ApiError, api_json, not_found
from fedsph.api.pagination import fetch_page, link_header, page_params
from fedsph.api.statuses import status_entity, visible_object
from fedsph.api.tokens import require_account
from fedsph.core.numbers import parse_id
from fedsph.models import Actor, Conversation
from fedsph.projects.conversations import conversation_of
from fedsph.web.keys import READERS, WRITERS


async def conversation_entity(request: web.Request, db: AsyncSession, row: Conversation,
                              me: Actor, held: dict[str, Actor] | None = None) -> dict:
    """Mastodon's Conversation: `accounts` are the other people we hold (the account itself
    when there are none, as Mastodon), `last_status` the newest post if it can still be seen.
    `held`: the actors by URI, read beforehand for a whole page."""
    if held is None:
        held = await _actors(db, [row])
    people = sorted((held[u] for u in row.participants if u in held), key=lambda a: a.id)
    last = None
    if row.last_status_id is not None:
        try:
            obj = await visible_object(db, str(row.last_status_id), me)
            last = await status_entity(request, db, obj, me)
        except ApiError:
            last = None
    return {"id": str(row.id), "unread": bool(row.unread),
            "accounts": [await account_entity(request, db, a) for a in people or [me]],
            "last_status": last}


async def _actors(db: AsyncSession, rows: list[Conversation]) -> dict[str, Actor]:
    """The actors in `rows`, by URI, in one query."""
    uris = {u for row in rows for u in row.participants}
    if not uris:
        return {}
    return {a.uri: a for a in await db.scalars(select(Actor).where(Actor.uri.in_(uris)))}


async def list_conversations(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:statuses")
    query = (select(Conversation.last_status_id, Conversation)
             .where(Conversation.actor_id == caller.actor.id,
                    Conversation.last_status_id.is_not(None)))
    async with request.app[READERS]() as db:
        rows = await fetch_page(db, query, Conversation.last_status_id,
                                page_params(request.query, 20, 40))
        held = await _actors(db, [row for _, row in rows])
        answer = [await conversation_entity(request, db, row, caller.actor, held)
                  for _, row in rows]
    return api_json(answer, headers=link_header(request, [last for last, _ in rows]))


async def _mine(db: AsyncSession, request: web.Request, me: Actor) -> Conversation:
    row_id = parse_id(request.match_info["id"])
    row = await conversation_of(db, me, row_id) if row_id is not None else None
    if row is None:
        raise not_found()
    return row


async def mark_read(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:conversations")
    async with request.app[WRITERS]() as db, db.begin():
        row = await _mine(db, request, caller.actor)
        row.unread = False
        await db.flush()
        answer = await conversation_entity(request, db, row, caller.actor)
    return api_json(answer)


async def remove(request: web.Request) -> web.Response:
    """The conversation leaves the list (its posts stay); a new direct post brings it back."""
    caller = await require_account(request, "write:conversations")
    async with request.app[WRITERS]() as db, db.begin():
        row = await _mine(db, request, caller.actor)
        await db.execute(delete(Conversation).where(Conversation.id == row.id))
    return api_json({})
