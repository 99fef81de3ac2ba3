"""Local actions become activities: store the result, serialise once, queue the deliveries.

Each function runs inside the caller's transaction, so the object, the activity and its
delivery rows are committed together or not at all.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.activitystreams import build_activity, build_tombstone
from fedsph.delivery import enqueue_deliveries, follower_actors
from fedsph.models import Activity, Actor, Follow, Object, utcnow
from fedsph.notes import build_note, text_to_html
from fedsph.urls import URLs

LANGUAGE_TAG_MAX = 16


async def record_activity(db: AsyncSession, actor: Actor, document: dict, object_uri: str | None,
                          public: bool = False) -> Activity:
    """Store an activity with its body serialised once: these bytes are signed and sent."""
    activity = Activity(uri=document["id"], type=document["type"], actor_id=actor.id,
                        object_uri=object_uri, public=public, body=orjson.dumps(document))
    db.add(activity)
    await db.flush()
    return activity


async def publish_note(db: AsyncSession, urls: URLs, actor: Actor, text: str,
                       language: str | None = None, visibility: str = "public",
                       summary: str | None = None, published: datetime | None = None) -> Object:
    """Create a Note as `actor` and queue a Create to its followers."""
    if not text.strip():
        raise ValueError("an update needs some text")
    if language and len(language) > LANGUAGE_TAG_MAX:
        raise ValueError(f"{language!r} is not a language tag")
    uri = urls.new_object()
    obj = Object(uri=uri, type="Note", actor_id=actor.id, local=True, content=text_to_html(text),
                 language=language, visibility=visibility, summary=summary, url=uri,
                 published=published or utcnow())
    db.add(obj)
    await db.flush()
    note = build_note(obj, actor)
    obj.document = note
    create = build_activity("Create", urls.new_activity(), actor.uri, note,
                            to=note["to"], cc=note["cc"], published=note["published"])
    await _send_to_followers(db, actor, create, obj.uri, visibility)
    return obj


async def edit_note(db: AsyncSession, urls: URLs, actor: Actor, obj: Object, text: str) -> Object:
    """Change a Note's text and queue an Update carrying `updated`."""
    if obj.deleted_at is not None:
        raise ValueError("this update was deleted")
    if not text.strip():
        raise ValueError("an update needs some text")
    obj.content = text_to_html(text)
    obj.updated = utcnow()
    note = build_note(obj, actor)
    obj.document = note
    update = build_activity("Update", urls.new_activity(), actor.uri, note,
                            to=note["to"], cc=note["cc"])
    await _send_to_followers(db, actor, update, obj.uri, obj.visibility)
    return obj


async def delete_note(db: AsyncSession, urls: URLs, actor: Actor, obj: Object) -> Object:
    """Turn a Note into a tombstone and queue a Delete; its URL then answers 410."""
    if obj.deleted_at is not None:
        return obj
    obj.deleted_at = utcnow()
    obj.content, obj.content_map, obj.summary = None, None, None
    tombstone = build_tombstone(obj.uri, obj.type, obj.deleted_at)
    tombstone.pop("@context")
    to, cc = (obj.document or {}).get("to"), (obj.document or {}).get("cc")
    obj.document = None
    delete_activity = build_activity("Delete", urls.new_activity(), actor.uri, tombstone, to=to, cc=cc)
    await _send_to_followers(db, actor, delete_activity, obj.uri, obj.visibility)
    return obj


async def _send_to_followers(db: AsyncSession, actor: Actor, document: dict, object_uri: str,
                             visibility: str) -> Activity:
    activity = await record_activity(db, actor, document, object_uri,
                                     public=visibility in ("public", "unlisted"))
    await enqueue_deliveries(db, activity, await follower_actors(db, actor))
    return activity


async def follow(db: AsyncSession, urls: URLs, actor: Actor, target: Actor) -> Follow:
    """Ask `target` to let `actor` follow it; pending until an Accept arrives."""
    if target.id == actor.id:
        raise ValueError("an actor cannot follow itself")
    existing = await db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == target.id))
    if existing is not None:
        return existing
    document = build_activity("Follow", urls.new_activity(), actor.uri, target.uri, to=[target.uri])
    relation = Follow(follower_id=actor.id, followed_id=target.id, state="pending",
                      activity_uri=document["id"])
    db.add(relation)
    activity = await record_activity(db, actor, document, target.uri)
    await enqueue_deliveries(db, activity, [target])
    return relation


async def unfollow(db: AsyncSession, urls: URLs, actor: Actor, target: Actor) -> bool:
    """Stop following `target` and tell it with Undo{Follow}. False if we did not follow it."""
    relation = await db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == target.id))
    if relation is None:
        return False
    original = {"id": relation.activity_uri, "type": "Follow", "actor": actor.uri,
                "object": target.uri}
    document = build_activity("Undo", urls.new_activity(), actor.uri, original, to=[target.uri])
    await db.delete(relation)
    activity = await record_activity(db, actor, document, relation.activity_uri)
    await enqueue_deliveries(db, activity, [target])
    return True


async def answer_follow(db: AsyncSession, urls: URLs, relation: Follow, accept: bool) -> None:
    """Accept or Reject a follow request that was made to one of our actors."""
    followed = await db.get(Actor, relation.followed_id)
    follower = await db.get(Actor, relation.follower_id)
    original = {"id": relation.activity_uri, "type": "Follow", "actor": follower.uri,
                "object": followed.uri}
    verb = "Accept" if accept else "Reject"
    document = build_activity(verb, urls.new_activity(), followed.uri, original, to=[follower.uri])
    if accept:
        relation.state = "accepted"
    else:
        await db.execute(delete(Follow).where(Follow.id == relation.id))
    activity = await record_activity(db, followed, document, relation.activity_uri)
    await enqueue_deliveries(db, activity, [follower])
