"""Timelines for apps: home, public and hashtag, newest first and paged by status (Object) id.

Also the account preferences apps read (fixed defaults).

Home is the acting account's own posts and those of the accounts it follows (accepted follows),
including their followers-only posts; public and hashtag timelines hold public posts only. Hidden
and held (unapproved) comments never show, nor deleted posts. Replies are kept, as in Mastodon.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Select, select

from fedsph.api.errors import api_json
from fedsph.api.pagination import fetch_page, link_header, page_params
from fedsph.api.params import flag
from fedsph.api.statuses import status_entity
from fedsph.api.tokens import optional_caller, require_account
from fedsph.models import Actor, Follow, Object
from fedsph.queries import has_tag
from fedsph.web.keys import SESSIONS


def _shown():
    """Conditions every timeline applies: not deleted, not hidden, not held for approval."""
    return (Object.deleted_at.is_(None), Object.hidden.is_(False), Object.approved.is_(True))


async def _timeline(request: web.Request, query: Select, me: Actor | None) -> web.Response:
    """`query` selects (Object.id, Object); the answer is one page of Status entities."""
    async with request.app[SESSIONS]() as db:
        rows = await fetch_page(db, query, Object.id, page_params(request.query, default=20))
        statuses = [await status_entity(request, db, obj, me) for _, obj in rows]
    return api_json(statuses, headers=link_header(request, [object_id for object_id, _ in rows]))


async def home(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:statuses")
    me = caller.actor
    followed = select(Follow.followed_id).where(Follow.follower_id == me.id,
                                                Follow.state == "accepted")
    # A followed account's posts of any visibility fedsph has (public, unlisted, followers);
    # an accepted follow is exactly what followers-only needs.
    query = select(Object.id, Object).where(
        *_shown(), (Object.actor_id == me.id) | Object.actor_id.in_(followed))
    return await _timeline(request, query, me)


async def public(request: web.Request) -> web.Response:
    """`local=true` keeps this node's posts, `remote=true` the others; `only_media` is ignored."""
    caller = await optional_caller(request)
    query = select(Object.id, Object).where(*_shown(), Object.visibility == "public")
    if flag(request.query, "local"):
        query = query.where(Object.local.is_(True))
    elif flag(request.query, "remote"):
        query = query.where(Object.local.is_(False))
    return await _timeline(request, query, caller.actor if caller else None)


async def tag(request: web.Request) -> web.Response:
    """Public posts carrying the hashtag (or project theme) named in the path, any case."""
    caller = await optional_caller(request)
    name = request.match_info["hashtag"].lstrip("#")
    query = select(Object.id, Object).where(*_shown(), Object.visibility == "public",
                                            has_tag(name))
    if flag(request.query, "local"):
        query = query.where(Object.local.is_(True))
    elif flag(request.query, "remote"):
        query = query.where(Object.local.is_(False))
    return await _timeline(request, query, caller.actor if caller else None)


async def preferences(request: web.Request) -> web.Response:
    """How apps should post and show timelines by default; fedsph keeps no per-account choices."""
    await require_account(request, "read:accounts")
    return api_json({
        "posting:default:visibility": "public",
        "posting:default:sensitive": False,
        "posting:default:language": None,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    })
