"""Timelines for apps: home, public and hashtag, newest first and paged by status (Object) id.

Also the account preferences apps read (fixed defaults).

Home is the acting account's own posts and those of the accounts it follows (accepted follows),
including their followers-only posts, the direct posts that address the acting account, and the
public posts those accounts (or the acting account) boosted, shown as reblogs; a direct post
never shows to anyone else (fedsph.federation.visibility). Public and hashtag timelines hold public posts
only. Hidden
and held (unapproved) comments never show, nor deleted posts. Replies are kept, as in Mastodon.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Select, select

from fedsph.api.errors import api_json
from fedsph.api.pagination import fetch_page, link_header, page_params
from fedsph.api.params import flag
from fedsph.api.reactions import reblog_entity
from fedsph.api.statuses import status_entity
from fedsph.api.tokens import optional_caller, require_account
from fedsph.federation.visibility import VISIBLE_TO_ALL, addressed_to, direct_shown_to
from fedsph.models import Actor, Follow, Object, Reaction
from fedsph.projects.queries import has_tag, not_withheld, shown_to_visitors
from fedsph.web.keys import READERS


def _shown():
    """Conditions every timeline applies: not deleted, not hidden, not held for approval."""
    return (not_withheld(),)


async def _timeline(request: web.Request, query: Select, me: Actor | None,
                    boosters: Select | None = None) -> web.Response:
    """`query` selects (Object.id, Object); the answer is one page of Status entities.

    With `boosters` (a selection of actor ids), a post whose author is not among them but that
    one of them boosted is shown as that account's reblog (its latest boost).
    """
    async with request.app[READERS]() as db:
        rows = await fetch_page(db, query, Object.id, page_params(request.query, default=20))
        authors = set(await db.scalars(boosters)) if boosters is not None else set()
        statuses = []
        for _, obj in rows:
            entity = await status_entity(request, db, obj, me)
            boost = None
            if boosters is not None and obj.actor_id not in authors:
                boost = (await db.execute(
                    select(Reaction, Actor).join(Actor, Actor.id == Reaction.actor_id)
                    .where(Reaction.type == "Announce", Reaction.object_uri == obj.uri,
                           Reaction.actor_id.in_(boosters))
                    .order_by(Reaction.id.desc()).limit(1))).first()
            if boost is not None:
                entity = await reblog_entity(request, db, entity, boost.Actor, boost.Reaction)
            statuses.append(entity)
    return api_json(statuses, headers=link_header(request, [object_id for object_id, _ in rows]))


async def home(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:statuses")
    me = caller.actor
    followed = select(Follow.followed_id).where(Follow.follower_id == me.id,
                                                Follow.state == "accepted")
    me_and_followed = select(Actor.id).where((Actor.id == me.id) | Actor.id.in_(followed))
    boosted = select(Reaction.object_uri).where(Reaction.type == "Announce",
                                                Reaction.actor_id.in_(me_and_followed))
    # A followed account's posts (public, unlisted, followers: an accepted follow is exactly
    # what followers-only needs), but its direct posts only when they address me.
    # Boosts only carry public posts.
    query = select(Object.id, Object).where(
        *_shown(), (Object.actor_id == me.id) | addressed_to(me)
        | (Object.actor_id.in_(followed) & direct_shown_to(me))
        | (Object.uri.in_(boosted) & Object.visibility.in_(VISIBLE_TO_ALL)))
    return await _timeline(request, query, me, boosters=me_and_followed)


def _local_or_remote(request: web.Request, query):
    """`local=true` keeps this node's posts, `remote=true` the others."""
    if flag(request.query, "local"):
        return query.where(Object.local.is_(True))
    if flag(request.query, "remote"):
        return query.where(Object.local.is_(False))
    return query


async def public(request: web.Request) -> web.Response:
    """`local=true` keeps this node's posts, `remote=true` the others; `only_media` is ignored."""
    caller = await optional_caller(request)
    query = select(Object.id, Object).where(shown_to_visitors(), Object.visibility == "public")
    return await _timeline(request, _local_or_remote(request, query),
                           caller.actor if caller else None)


async def tag(request: web.Request) -> web.Response:
    """Public posts carrying the hashtag (or project theme) named in the path, any case."""
    caller = await optional_caller(request)
    name = request.match_info["hashtag"].lstrip("#")
    query = select(Object.id, Object).where(shown_to_visitors(), Object.visibility == "public",
                                            has_tag(name))
    return await _timeline(request, _local_or_remote(request, query),
                           caller.actor if caller else None)


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
