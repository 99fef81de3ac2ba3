"""An account's posts as its profile in an app shows them: GET /api/v1/accounts/:id/statuses.

Public and unlisted posts for everyone; followers-only ones too when the requester is the account
or follows it (accepted). Deleted, hidden and held posts never show. `exclude_replies`,
`only_media` (local uploads or remote attachments) and `pinned=true` filter; pages run by status id.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import String, cast, exists, select

from fedsph.api.accounts import visible
from fedsph.api.errors import api_json, not_found
from fedsph.api.pagination import fetch_page, link_header, page_params
from fedsph.api.params import flag, get_by_id
from fedsph.api.statuses import status_entity
from fedsph.api.tokens import optional_caller
from fedsph.models import Actor, Follow, Media, Object
from fedsph.projects.queries import not_withheld
from fedsph.web.keys import READERS


def _visibilities(may_see_followers: bool) -> tuple[str, ...]:
    return ("public", "unlisted", "followers") if may_see_followers else ("public", "unlisted")


async def account_statuses(request: web.Request) -> web.Response:
    caller = await optional_caller(request)
    me = caller.actor if caller else None
    async with request.app[READERS]() as db:
        account = visible(await get_by_id(db, Actor, request.match_info["id"]))
        if account is None:
            raise not_found()
        follows = me is not None and await db.scalar(select(Follow.id).where(
            Follow.follower_id == me.id, Follow.followed_id == account.id,
            Follow.state == "accepted").limit(1)) is not None
        may_see_followers = me is not None and (me.id == account.id or follows)
        query = select(Object.id, Object).where(
            Object.actor_id == account.id, not_withheld(),
            Object.visibility.in_(_visibilities(may_see_followers)))
        if flag(request.query, "exclude_replies"):
            query = query.where(Object.in_reply_to.is_(None))
        if flag(request.query, "pinned"):
            query = query.where(Object.pinned_at.is_not(None))
        if flag(request.query, "only_media"):
            uploaded = exists().where(Media.object_id == Object.id)
            # Remote attachments are a JSON list; none may be SQL NULL or a JSON `null`.
            attached = Object.local.is_(False) & cast(Object.attachments, String).not_in(
                ["null", "[]"])
            query = query.where(uploaded | attached)
        rows = await fetch_page(db, query, Object.id, page_params(request.query, default=20))
        statuses = [await status_entity(request, db, obj, me) for _, obj in rows]
    return api_json(statuses, headers=link_header(request, [object_id for object_id, _ in rows]))
