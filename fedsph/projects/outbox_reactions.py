"""Our actors' favourites and boosts of posts: Like and Announce, and their Undo.

Like `fedsph.projects.outbox`, each function runs inside the caller's transaction, records the Reaction
row and queues the deliveries together.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.errors import UserError
from fedsph.federation import emit
from fedsph.federation.activitystreams import PUBLIC, build_activity
from fedsph.models import Actor, Object, Reaction
from fedsph.projects.notifications import REACTION_NOTIFICATIONS, notify


async def my_reaction(db: AsyncSession, actor: Actor, kind: str, obj: Object) -> Reaction | None:
    """`actor`'s Like or Announce of `obj`, if it made one."""
    return await db.scalar(select(Reaction).where(
        Reaction.type == kind, Reaction.actor_id == actor.id, Reaction.object_uri == obj.uri))


async def _reaction_audience(db: AsyncSession, actor: Actor, kind: str, obj: Object
                             ) -> tuple[dict, list[Actor]]:
    """Addressing and recipients: a Like goes to the author only; an Announce is public, to our
    followers and the author (who counts it)."""
    author = await db.get(Actor, obj.actor_id)
    others = [author] if author is not None and author.id != actor.id else []
    if kind == "Like":
        return {"to": [a.uri for a in others]}, others
    cc = [actor.followers_url] + [a.uri for a in others]
    return {"to": [PUBLIC], "cc": cc}, others + await emit.follower_actors(db, actor)


async def _react(db: AsyncSession, urls: URLs, actor: Actor, obj: Object, kind: str) -> Reaction:
    if obj.deleted_at is not None:
        raise UserError("this post was deleted")
    if kind == "Announce" and obj.visibility not in ("public", "unlisted"):
        raise UserError("only public posts can be boosted")
    existing = await my_reaction(db, actor, kind, obj)
    if existing is not None:
        return existing
    addressing, recipients = await _reaction_audience(db, actor, kind, obj)
    document = build_activity(kind, urls.new_activity(), actor.uri, obj.uri, **addressing)
    reaction = Reaction(type=kind, actor_id=actor.id, object_uri=obj.uri,
                        activity_uri=document["id"])
    db.add(reaction)
    await emit.send(db, actor, document, recipients, obj.uri, public=kind == "Announce")
    # The row exists already when our inbox handles the local copy, so it would not notify.
    await notify(db, recipients[:1], REACTION_NOTIFICATIONS[kind], actor, document["id"], obj.uri)
    return reaction


async def _unreact(db: AsyncSession, urls: URLs, actor: Actor, obj: Object, kind: str) -> bool:
    reaction = await my_reaction(db, actor, kind, obj)
    if reaction is None:
        return False
    addressing, recipients = await _reaction_audience(db, actor, kind, obj)
    original = {"id": reaction.activity_uri, "type": kind, "actor": actor.uri, "object": obj.uri,
                **addressing}
    document = build_activity("Undo", urls.new_activity(), actor.uri, original, **addressing)
    await db.delete(reaction)
    await emit.send(db, actor, document, recipients, reaction.activity_uri,
                    public=kind == "Announce")
    return True


async def like_object(db: AsyncSession, urls: URLs, actor: Actor, obj: Object) -> Reaction:
    """Favourite `obj` as `actor`: a Like to its author. Liking twice changes nothing."""
    return await _react(db, urls, actor, obj, "Like")


async def unlike_object(db: AsyncSession, urls: URLs, actor: Actor, obj: Object) -> bool:
    """Take a favourite back with Undo{Like}; False if `actor` had not liked `obj`."""
    return await _unreact(db, urls, actor, obj, "Like")


async def announce_object(db: AsyncSession, urls: URLs, actor: Actor, obj: Object) -> Reaction:
    """Boost a public `obj` as `actor`: a public Announce to our followers and its author."""
    return await _react(db, urls, actor, obj, "Announce")


async def unannounce_object(db: AsyncSession, urls: URLs, actor: Actor, obj: Object) -> bool:
    """Take a boost back with Undo{Announce}; False if `actor` had not announced `obj`."""
    return await _unreact(db, urls, actor, obj, "Announce")
