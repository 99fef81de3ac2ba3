"""Timelines for apps: home, public and hashtag, newest first and paged by status id.

Also the account preferences apps read (fixed defaults).

Home is the acting account's own posts and those of the accounts it follows (accepted follows),
including their followers-only posts, the direct posts that address the acting account, and the
public posts of others that those accounts (or the acting account) boosted, shown as reblogs
with the boost's own status id (fedsph.models.status_ids), each post once; a direct post never shows to anyone else
(fedsph.federation.visibility). Public and hashtag timelines hold public posts only. Hidden
and held (unapproved) comments never show, nor deleted posts. Replies are kept, as in Mastodon.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Select, exists, null, select
from sqlalchemy.orm import aliased

from fedsph.api.errors import api_json
from fedsph.api.pagination import fetch_merged_page, fetch_page, link_header, page_params
from fedsph.api.params import flag
from fedsph.api.reblogs import reblog_entity
from fedsph.api.statuses import status_entity
from fedsph.api.tokens import optional_caller, require_account
from fedsph.federation.visibility import VISIBLE_TO_ALL, addressed_to, direct_shown_to
from fedsph.models import Actor, Follow, Object, Reaction
from fedsph.projects.queries import has_tag, not_withheld, shown_to_visitors
from fedsph.web.keys import READERS


def _shown():
    """Conditions every timeline applies: not deleted, not hidden, not held for approval."""
    return (not_withheld(),)


async def _timeline(request: web.Request, query: Select, me: Actor | None) -> web.Response:
    """`query` selects (Object.id, Object); the answer is one page of Status entities."""
    async with request.app[READERS]() as db:
        rows = await fetch_page(db, query, Object.id, page_params(request.query, default=20))
        statuses = [await status_entity(request, db, obj, me) for _, obj in rows]
    return api_json(statuses, headers=link_header(request, [object_id for object_id, _ in rows]))


async def home(request: web.Request) -> web.Response:
    """Posts by their ids and boosts by theirs, in one order: a boost of an old post comes to
    the top when it is made, as on Mastodon."""
    caller = await require_account(request, "read:statuses")
    me = caller.actor
    followed = select(Follow.followed_id).where(Follow.follower_id == me.id,
                                                Follow.state == "accepted")
    me_and_followed = select(Actor.id).where((Actor.id == me.id) | Actor.id.in_(followed))
    # A followed account's posts (public, unlisted, followers: an accepted follow is exactly
    # what followers-only needs), but its direct posts only when they address me.
    posts = select(Object.id, Object, null(), null()).where(
        *_shown(), (Object.actor_id == me.id) | addressed_to(me)
        | (Object.actor_id.in_(followed) & direct_shown_to(me)))
    # Boosts by me and the accounts I follow, of public posts only; a post boosted by several
    # of them shows once, as its latest boost (Mastodon too keeps one reblog of a post in home).
    # A post by me or an account I follow is in home already (every public one is, above):
    # its boosts are left out, so that it shows once. (Mastodon shows such a reblog when the
    # post is no longer among the recent ones; "never" is simpler and never shows it twice.)
    # "No later boost" rather than a max() per post: the index on status_id is then read
    # newest first and stops at the page (a grouped max read every boost, twice the time).
    later, booster = aliased(Reaction), aliased(Actor)
    boosts = (select(Reaction.status_id, Object, Reaction, booster)
              .join(Object, Object.uri == Reaction.object_uri)
              .join(booster, booster.id == Reaction.actor_id)
              .where(Reaction.type == "Announce", Reaction.actor_id.in_(me_and_followed),
                     Object.actor_id.not_in(me_and_followed),
                     ~exists().where(later.object_uri == Reaction.object_uri,
                                     later.type == "Announce",
                                     later.status_id > Reaction.status_id,
                                     later.actor_id.in_(me_and_followed)),
                     *_shown(), Object.visibility.in_(VISIBLE_TO_ALL)))
    async with request.app[READERS]() as db:
        rows = await fetch_merged_page(db, [(posts, Object.id), (boosts, Reaction.status_id)],
                                       page_params(request.query, default=20))
        statuses = []
        for _, obj, boost, boosted_by in rows:
            entity = await status_entity(request, db, obj, me)
            if boost is not None:
                entity = await reblog_entity(request, db, entity, boosted_by, boost)
            statuses.append(entity)
    return api_json(statuses, headers=link_header(request, [row[0] for row in rows]))


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
