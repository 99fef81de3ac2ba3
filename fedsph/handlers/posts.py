"""Create, Update and Delete: posts from others, their edits and deletions, actor updates."""

from __future__ import annotations

from sqlalchemy import delete, select

from fedsph.federation.activitystreams import as_list, get_id, get_type, parse_iso, same_origin
from fedsph.federation.actors import (
    InvalidActor,
    embedded_update_is_fresh,
    get_actor_by_uri,
    store_remote_actor,
    values_from_update,
)
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.federation.keycache import forget_when_committed
from fedsph.federation.remote_objects import (
    POST_TYPES,
    OlderThanHeld,
    get_object,
    is_followed_locally,
    store_object,
)
from fedsph.federation.visibility import (
    DIRECT,
    VISIBLE_TO_ALL,
    addressed_actors,
    is_addressed,
    store_addressees,
    visibility_of,
    with_activity_addressing,
)
from fedsph.hub.reshare import reshare_member_activity
from fedsph.models import Actor, Object, utcnow
from fedsph.projects.conversations import add_direct_post, before_actor_deleted
from fedsph.projects.deleted_boosts import withdraw_boosts
from fedsph.projects.edits import current_version, is_an_edit, keep_version
from fedsph.projects.notifications import mentioned_or_replied, notify
from fedsph.projects.tombstone import turn_into_tombstone


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
    return with_activity_addressing(obj, activity)


async def _delivered_to(ctx: HandlerContext) -> Actor | None:
    """Our actor whose own inbox the activity came to (None: the shared inbox). As on Mastodon,
    that delivery addresses it: a direct post reaches it even when it names nobody here. Only
    when the actor's own key signed the request: a relay (signer other than the actor, believed
    on the integrity proof, which does not cover the inbox) chose that inbox, not the author."""
    if ctx.delivered_to is None or not ctx.signed_by_actor:
        return None
    found = await get_actor_by_uri(ctx.db, ctx.delivered_to)
    # The node's own actor (an Application) is nobody's account: nothing is addressed to it.
    return found if found is not None and found.local and found.type != "Application" else None


def _organiser(document: dict | None) -> str | None:
    """The Event's `actor`: the organiser who made it (Mobilizon), None if it names none."""
    return get_id(document.get("actor")) if isinstance(document, dict) else None


def speaks_for_group(group: Actor | None, sender: Actor, object_type: str | None,
                     organiser: str | None) -> bool:
    """The Mobilizon organiser exception, the one place it is decided.

    Mobilizon sends a group's event in a Create by the organiser (a person), with the group as
    the Event's attributedTo and the organiser as its `actor` (lib/federation/activity_pub/types/
    events.ex). So a sender acts for an Event's owner only when that owner is an actor we hold
    as a Group, on the sender's own server, and the Event names the sender as its organiser. For
    an Event we hold, `organiser` is the one in our stored copy: the organiser who created it, so
    another account of the same server cannot take it over.
    """
    return (object_type == "Event" and group is not None and group.type == "Group"
            and not group.local and group.id != sender.id and organiser == sender.uri
            and same_origin(group.uri, sender.uri))


async def _owner(ctx: HandlerContext, obj: dict, actor: Actor) -> Actor:
    """Who a received object belongs to: its sender, or the Group its organiser speaks for."""
    attributed = get_id(obj.get("attributedTo"))
    if not attributed or attributed == actor.uri:
        return actor
    group = await get_actor_by_uri(ctx.db, attributed)
    if not speaks_for_group(group, actor, get_type(obj), _organiser(obj)):
        raise Ignored("object is attributed to someone else")
    return group


def check_may_change(existing: Object, owner: Actor, sender: Actor) -> None:
    """The one ownership rule for changing a stored object: only its owner (the sender, or the
    Group whose organiser created it) may; a remote actor never changes one of ours (the inbox
    refuses our actors from the network: a local owner means a delivery inside this node)."""
    if existing.local != owner.local or existing.actor_id != owner.id:
        raise Ignored("the object belongs to another actor")
    if owner.id != sender.id and _organiser(existing.document) != sender.uri:
        raise Ignored("the event was organised by another actor of its group")


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
    inbox_owner = await _delivered_to(ctx)
    if inbox_owner is not None and visibility_of(obj, owner.followers_url) != DIRECT:
        # Only a direct message is for the inbox's owner alone: a public post sent there by an
        # actor nobody here follows would otherwise reach the public and tag timelines.
        inbox_owner = None
    if not (inbox_owner or await _concerns_us(ctx, obj, owner)
            or await _concerns_us(ctx, obj, actor)):
        raise Ignored("post from an actor nobody here follows, not addressed to us")
    existing = await get_object(ctx.db, obj["id"])
    if existing is not None and existing.deleted_at is not None:
        raise Ignored("object was deleted already")
    if existing is not None:
        check_may_change(existing, owner, actor)
    elif owner.local:
        raise Ignored("a post of this node that we do not hold")
    # Ours is stored already (a local hub receives its member's post): never rewritten from here.
    silent = [inbox_owner.uri] if inbox_owner else []
    stored = existing if owner.local else await store_object(ctx.db, obj, owner, keep_held=True,
                                                             silently_addressed=silent)
    if existing is None:  # a post sent again (another Create of it) does not notify again
        await notify(ctx.db, await _to_notify(ctx, obj, stored), "mention", actor,
                     activity["id"], obj["id"])
        await add_direct_post(ctx.db, stored)
    elif inbox_owner and not owner.local:
        await _reached_another_inbox(ctx, stored, inbox_owner, actor, activity["id"])
    await reshare_member_activity(ctx, activity, actor)  # a hub shares its members' posts
    return "done"


async def _reached_another_inbox(ctx: HandlerContext, stored: Object, inbox_owner: Actor,
                                  sender: Actor, activity_uri: str) -> None:
    """A direct post we hold, sent again to the own inbox of an account it did not reach yet
    (a sender without a shared inbox): that account is added to it silently, as Mastodon does,
    and only its own conversation changes (the others' neither show it nor turn unread)."""
    if stored.visibility != DIRECT or await is_addressed(ctx.db, stored, inbox_owner):
        return
    await store_addressees(ctx.db, stored, [], silent=[inbox_owner.uri])
    if not await is_addressed(ctx.db, stored, inbox_owner):
        return  # the post names as many people as it may (MAX_ADDRESSEES): no row, no notice
    await notify(ctx.db, [inbox_owner], "mention", sender, activity_uri, stored.uri)
    await add_direct_post(ctx.db, stored, only=inbox_owner)


async def handle_update(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    if get_id(activity.get("object")) == actor.uri:
        # The embedded document is read only when it is certainly new (the actor's own server
        # sent it now, or its proof is newer than our copy), and never for keys; otherwise the
        # worker refetched the actor from its own id before this handler ran (fedsph.worker).
        obj = activity["object"]
        if not actor.local and isinstance(obj, dict) and embedded_update_is_fresh(activity, actor,
                                                                            ctx.signed_by_actor):
            try:
                await store_remote_actor(ctx.db, values_from_update(obj, actor))
            except InvalidActor as exc:
                raise Ignored(str(exc)) from None
        await reshare_member_activity(ctx, activity, actor)
        return "done"
    obj = await _embedded_object(ctx, activity, actor)
    existing = await get_object(ctx.db, obj["id"])
    if existing is None:
        return await handle_create(ctx, activity, actor)
    owner = await _owner(ctx, obj, actor)
    check_may_change(existing, owner, actor)
    if existing.deleted_at is not None:
        raise Ignored("Update of a deleted object")
    if existing.visibility == DIRECT and visibility_of(obj, owner.followers_url) != DIRECT:
        # Mastodon never changes a post's visibility on edit; a direct message above all must
        # not be opened to more people by an Update (nor by the activity's addressing).
        raise Ignored("an Update cannot make a direct message visible to more people")
    if not owner.local:
        # The personal inbox an Update came to adds nobody (as on Mastodon): else an edit would
        # widen a direct message without a notification or a conversation.
        before, edited_at, readers = current_version(existing), existing.updated, existing.visibility
        if existing.type != "Event" and not is_an_edit(existing, obj):
            raise Ignored("Update of a post without an edit date later than the version we hold")
        try:
            await store_object(ctx.db, obj, owner)
        except OlderThanHeld:
            raise Ignored("Update older than the version we hold") from None
        if existing.type != "Event" and _wider(existing.visibility, readers):
            # As on Mastodon, a post's Update never widens who may read it: the versions kept
            # were written for its first readers (a followers-only post made public must not
            # show them to everyone). Narrowing is kept: it shows nothing to anyone new.
            existing.visibility = readers
        existing.updated = parse_iso(obj.get("updated")) or utcnow()
        # An event's changes are its own (fedsph.events.received). A post's Update that changes
        # nothing readers see keeps its edit date, as on Mastodon (the stored document still
        # dates it, so a replay of an older one stays refused).
        if existing.type != "Event" and not await keep_version(ctx.db, existing, before):
            existing.updated = edited_at
    await reshare_member_activity(ctx, activity, actor)
    return "done"


# From the widest audience to the narrowest; an unknown value counts as the narrowest.
_AUDIENCE = {"public": 0, "unlisted": 1, "followers": 2, DIRECT: 3}


def _wider(visibility: str, than: str) -> bool:
    return _AUDIENCE.get(visibility, 3) < _AUDIENCE.get(than, 3)


async def handle_delete(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    target = get_id(activity.get("object"))
    if target is None:
        raise Ignored("Delete without an object")
    if target == actor.uri:
        # The account is gone: its follows, posts and reactions go with it (ON DELETE CASCADE),
        # and the inbox of this process stops believing its key at once. Conversations its
        # posts were the newest of show the previous post first (not an empty conversation).
        await before_actor_deleted(ctx.db, actor.id)
        await ctx.db.execute(delete(Actor).where(Actor.id == actor.id))
        forget_when_committed(ctx.db, actor.uri)
        return "done"
    obj = await ctx.db.scalar(select(Object).where(Object.uri == target))
    if obj is None:
        raise Ignored("Delete of an object we never had")
    owner = await ctx.db.get(Actor, obj.actor_id)
    if obj.local != actor.local or (obj.actor_id != actor.id and not speaks_for_group(
            owner, actor, obj.type, _organiser(obj.document))):
        raise Ignored("Delete of an object this actor does not own")
    await turn_into_tombstone(ctx.db, obj)
    await withdraw_boosts(ctx.db, ctx.urls, obj, activity,
                          ctx.body if ctx.proof_verified else None)
    await reshare_member_activity(ctx, activity, actor, public=obj.visibility in VISIBLE_TO_ALL)
    return "done"
