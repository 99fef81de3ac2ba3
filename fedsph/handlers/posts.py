"""Create, Update and Delete: posts from others, their edits and deletions, actor updates."""

from __future__ import annotations

from sqlalchemy import delete, select

from fedsph.activitystreams import as_list, get_id, get_type, parse_iso, same_origin
from fedsph.actors import (
    InvalidActor,
    get_actor_by_uri,
    parse_actor_document,
    store_remote_actor,
)
from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.hub.reshare import reshare_member_activity
from fedsph.models import Actor, Object, utcnow
from fedsph.notifications import mentioned_or_replied, notify
from fedsph.remote_objects import (
    POST_TYPES,
    get_object,
    is_followed_locally,
    is_older_than_held,
    store_object,
)
from fedsph.visibility import DIRECT, addressed_actors


async def _embedded_object(ctx: HandlerContext, activity: dict, actor: Actor) -> dict:
    """The activity's object as a dict, origin-checked.

    An object sent as a bare id was fetched by the worker before this handler ran (only from the
    actor's own host): an id still left here is on another host.
    """
    obj = activity.get("object")
    if isinstance(obj, str):
        raise Ignored("object is on another host than its actor")
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise Ignored("activity has no usable object")
    if not same_origin(obj["id"], actor.uri):
        raise Ignored("object is on another host than its actor")
    attributed = get_id(obj.get("attributedTo"))
    if attributed and attributed != actor.uri and get_type(obj) in POST_TYPES \
            and not _group_event_by_organiser(obj, actor):
        raise Ignored("object is attributed to someone else")
    return obj


def _group_event_by_organiser(obj: dict, actor: Actor) -> bool:
    """Mobilizon sends a group's event in a Create by the organiser (a person), with the group
    as the Event's attributedTo (lib/federation/activity_pub/types/events.ex). The organiser
    speaks for a group of the same server."""
    attributed = get_id(obj.get("attributedTo"))
    return (get_type(obj) == "Event" and bool(attributed)
            and get_id(obj.get("actor")) in (None, actor.uri) and same_origin(attributed, actor.uri))


async def _owner(ctx: HandlerContext, obj: dict, actor: Actor) -> Actor:
    """Who a received post belongs to: its sender, or the group a Mobilizon organiser speaks for
    (when we know that group)."""
    if _group_event_by_organiser(obj, actor):
        group = await get_actor_by_uri(ctx.db, get_id(obj.get("attributedTo")))
        if group is not None:
            return group
    return actor


def check_may_change(existing: Object, owner: Actor) -> None:
    """The one ownership rule for changing a stored object: only its owner (the sender, or the
    group a Mobilizon organiser speaks for) may; a remote actor never changes one of ours (the
    inbox refuses our actors from the network: a local owner means a delivery inside this node)."""
    if existing.local != owner.local or existing.actor_id != owner.id:
        raise Ignored("the object belongs to another actor")


async def _concerns_us(ctx: HandlerContext, document: dict, actor: Actor) -> bool:
    """Keep posts from actors we follow, replies to our posts, and posts addressed to us."""
    if await is_followed_locally(ctx.db, actor):
        return True
    reply_to = get_id(document.get("inReplyTo"))
    if reply_to and ctx.urls.is_local(reply_to):
        return True
    audience = as_list(document.get("to")) + as_list(document.get("cc")) + [
        t.get("href") for t in as_list(document.get("tag")) if isinstance(t, dict)]
    return any(ctx.urls.is_local(get_id(a)) for a in audience)


async def _to_notify(ctx: HandlerContext, document: dict, stored: Object) -> list[Actor]:
    """Our actors a new post mentions or answers; a direct post notifies exactly the local actors
    it addresses (Mastodon turns every addressed actor of a direct post into a mention)."""
    found = await mentioned_or_replied(ctx.db, document)
    if stored.visibility != DIRECT:
        return found
    return [a for a in await addressed_actors(ctx.db, stored.uri) if a.local]


async def handle_create(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    obj = await _embedded_object(ctx, activity, actor)
    if get_type(obj) not in POST_TYPES:
        raise Ignored(f"{get_type(activity)} of a {get_type(obj)}, which we do not keep")
    owner = await _owner(ctx, obj, actor)
    if not (await _concerns_us(ctx, obj, owner) or await _concerns_us(ctx, obj, actor)):
        raise Ignored("post from an actor nobody here follows, not addressed to us")
    existing = await get_object(ctx.db, obj["id"])
    if existing is not None and existing.deleted_at is not None:
        raise Ignored("object was deleted already")
    if existing is not None:
        check_may_change(existing, owner)
    elif owner.local:
        raise Ignored("a post of this node that we do not hold")
    # Ours is stored already (a local hub receives its member's post): never rewritten from here.
    stored = existing if owner.local else await store_object(ctx.db, obj, owner)
    if existing is None:  # a post sent again (another Create of it) does not notify again
        await notify(ctx.db, await _to_notify(ctx, obj, stored), "mention", actor,
                     activity["id"], obj["id"])
    await reshare_member_activity(ctx, activity, actor)  # a hub shares its members' posts
    return "done"


async def handle_update(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    obj = activity.get("object")
    if get_id(obj) == actor.uri:
        if not isinstance(obj, dict):
            raise Ignored("actor Update without the actor document")
        try:
            if not actor.local:  # our own actor is never rewritten from a document
                await store_remote_actor(ctx.db, parse_actor_document(obj))
        except InvalidActor as exc:
            raise Ignored(str(exc)) from None
        await reshare_member_activity(ctx, activity, actor)
        return "done"
    obj = await _embedded_object(ctx, activity, actor)
    existing = await get_object(ctx.db, obj["id"])
    if existing is None:
        return await handle_create(ctx, activity, actor)
    owner = await _owner(ctx, obj, actor)
    check_may_change(existing, owner)
    if existing.deleted_at is not None:
        raise Ignored("Update of a deleted object")
    if is_older_than_held(existing, obj):
        # A relay (or a replay) may deliver an old version late: it must not undo an edit.
        raise Ignored("Update older than the version we hold")
    if not owner.local:
        await store_object(ctx.db, obj, owner)
        existing.updated = parse_iso(obj.get("updated")) or utcnow()
    await reshare_member_activity(ctx, activity, actor)
    return "done"


async def handle_delete(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    target = get_id(activity.get("object"))
    if target is None:
        raise Ignored("Delete without an object")
    if target == actor.uri:
        # The account is gone: its follows, posts and reactions go with it (ON DELETE CASCADE).
        await ctx.db.execute(delete(Actor).where(Actor.id == actor.id))
        return "done"
    obj = await ctx.db.scalar(select(Object).where(Object.uri == target))
    if obj is None:
        raise Ignored("Delete of an object we never had")
    owner = await ctx.db.get(Actor, obj.actor_id)
    speaks_for_group = (obj.type == "Event" and owner is not None and owner.type == "Group"
                        and same_origin(owner.uri, actor.uri))  # see _group_event_by_organiser
    if obj.local != actor.local or (obj.actor_id != actor.id and not speaks_for_group):
        raise Ignored("Delete of an object this actor does not own")
    obj.deleted_at = utcnow()
    obj.content, obj.content_map, obj.summary, obj.document = None, None, None, None
    await reshare_member_activity(ctx, activity, actor,
                                  public=obj.visibility in ("public", "unlisted"))
    return "done"
