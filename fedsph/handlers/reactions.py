"""Like and Announce of our posts, counted as reactions; boosts by the accounts we follow."""

from __future__ import annotations

from sqlalchemy import select

from fedsph.federation.activitystreams import get_id, get_type, is_public
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.blocks import fetchable
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.federation.remote_objects import (
    POST_TYPES,
    get_object,
    is_followed_locally,
    store_object,
)
from fedsph.federation.remote_objects import visibility_of as document_visibility
from fedsph.federation.visibility import VISIBLE_TO_ALL
from fedsph.models import Actor, Reaction
from fedsph.projects.notifications import REACTION_NOTIFICATIONS, notify


async def _react(ctx: HandlerContext, activity: dict, actor: Actor, kind: str) -> str:
    if actor.local:
        # Our own actors' reactions are recorded (and undone, and notified) by the outbox when
        # they happen; a copy handled here later could bring back one that was undone since.
        raise Ignored(f"{kind} by one of our actors, recorded when it was sent")
    object_uri = get_id(activity.get("object"))
    if kind == "Announce" and object_uri and not ctx.urls.is_local(object_uri):
        return await _keep_boosted_post(ctx, activity, actor)
    if not object_uri or not ctx.urls.is_local(object_uri):
        raise Ignored(f"{kind} of something that is not ours")
    obj = await get_object(ctx.db, object_uri)
    if obj is None or obj.deleted_at is not None:
        raise Ignored(f"{kind} of an object we do not have")
    if kind == "Announce" and obj.visibility not in VISIBLE_TO_ALL:
        # Only a public post can be boosted (Mastodon refuses the rest too); a stored boost of a
        # followers-only post would make its booster a recipient of the post's edits and Delete
        # (fedsph.projects.outbox._booster_followers).
        raise Ignored("Announce of a post that is not public")
    exists = await ctx.db.scalar(select(Reaction.id).where(Reaction.activity_uri == activity["id"]))
    if exists is None:
        ctx.db.add(Reaction(type=kind, actor_id=actor.id, object_uri=object_uri,
                            activity_uri=activity["id"], followers_only=not is_public(activity)))
        owner = await ctx.db.get(Actor, obj.actor_id)
        await notify(ctx.db, [owner], REACTION_NOTIFICATIONS[kind], actor, activity["id"], object_uri)
    return "done"


async def _keep_boosted_post(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """A followed account boosted someone's post: keep the post and the boost, so home timelines
    show it as a reblog. The object is a document only when the worker fetched it from the
    post's own server (fedsph.worker_prefetch.Prefetch.boosted_post); a bare id names a post we keep."""
    if not await is_followed_locally(ctx.db, actor):
        raise Ignored("boost by an account nobody here follows")
    document = activity["object"]
    if isinstance(document, str):
        kept = await get_object(ctx.db, document)
        if kept is None or kept.deleted_at is not None or kept.visibility not in ("public",
                                                                               "unlisted"):
            raise Ignored("boost of a post we do not have")
        await _refuse_blocked(ctx, kept.uri, (await ctx.db.get(Actor, kept.actor_id)).uri)
        await _record_boost(ctx, activity, actor, kept.uri)
        return "done"
    await _refuse_blocked(ctx, document["id"], get_id(document.get("attributedTo")))
    if get_type(document) not in POST_TYPES:
        raise Ignored(f"boost of a {get_type(document)}, which we do not keep")
    if document_visibility(document) not in ("public", "unlisted"):
        raise Ignored("boost of a post that is not public")
    author = await get_actor_by_uri(ctx.db, get_id(document.get("attributedTo")) or "")
    if author is None:
        raise Ignored("boost of a post whose author we could not fetch")
    existing = await get_object(ctx.db, document["id"])
    if existing is not None and existing.deleted_at is not None:
        raise Ignored("boost of a post that was deleted")
    if existing is None:  # one we hold meanwhile is kept as it is (remote_objects.store_object)
        await store_object(ctx.db, document, author)
    await _record_boost(ctx, activity, actor, document["id"])
    return "done"


async def _refuse_blocked(ctx: HandlerContext, post_uri: str, author_uri: str | None) -> None:
    """A boost of a post on a blocked server or by a blocked account is not kept (checked here
    again: a block may come between the worker's fetch and this handler)."""
    for uri in (post_uri, author_uri):
        if uri and not await fetchable(ctx.db, uri):
            raise Ignored("boost of a post on a blocked server or by a blocked account")


async def _record_boost(ctx: HandlerContext, activity: dict, actor: Actor, uri: str) -> None:
    exists = await ctx.db.scalar(select(Reaction.id).where(Reaction.activity_uri == activity["id"]))
    if exists is None:
        ctx.db.add(Reaction(type="Announce", actor_id=actor.id, object_uri=uri,
                            activity_uri=activity["id"], followers_only=not is_public(activity)))


async def handle_like(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    return await _react(ctx, activity, actor, "Like")


async def handle_announce(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    return await _react(ctx, activity, actor, "Announce")
