"""One tombstone for every delete: our posts and events, and other servers' posts and events.

A deleted object keeps its row, so that its id answers 410 Gone with an AS2 Tombstone (what
Mastodon expects) and a late Create or Update of it is refused; everything it said is cleared,
so nothing of it is shown, fed, searched or re-sent (nor its edit history, nor notifications
about it). Its images are let go (Media.object_id
cleared): fedsph.projects.media_prune deletes them and their files once they are old enough.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.federation.activitystreams import build_tombstone
from fedsph.models import Event, Media, Notification, Object, StatusEdit, utcnow
from fedsph.projects.conversations import remove_direct_post


def tombstone_document(obj: Object) -> dict:
    """The AS2 Tombstone of a deleted object, to embed in a Delete (no @context)."""
    document = build_tombstone(obj.uri, obj.type, obj.deleted_at)
    document.pop("@context")
    return document


async def turn_into_tombstone(db: AsyncSession, obj: Object) -> dict:
    """Turn `obj` into a tombstone (in the caller's transaction) and return its Tombstone.

    Kept: what the row needs to stay a tombstone and to answer for it (uri, type, owner,
    visibility and addressees, reply target, dates). A second call changes nothing more.
    """
    if obj.deleted_at is None:  # a direct message leaves its conversations once
        obj.deleted_at = utcnow()
        await remove_direct_post(db, obj)
    obj.content = obj.content_map = obj.summary = obj.document = None
    obj.name = obj.name_map = obj.kind = obj.stage_change = None
    obj.tags = obj.place = obj.attachments = obj.pinned_at = obj.source = None
    # Its earlier versions go too, and the notifications about it (favourites, boosts,
    # mentions): as on Mastodon, none is left pointing at a post that is gone. Follows are
    # about an account, not a post, and stay.
    await db.execute(delete(StatusEdit).where(StatusEdit.object_id == obj.id))
    await db.execute(delete(Notification).where(
        Notification.object_uri == obj.uri,
        Notification.type.not_in(("follow", "follow_request"))))
    for item in await db.scalars(select(Media).where(Media.object_id == obj.id)):
        item.object_id = None
    event = await db.get(Event, obj.id) if obj.type == "Event" else None
    if event is not None:
        # The times stay (the row needs them); where and with whom it was to happen go.
        event.kind = event.online_url = event.languages = event.interpretation = None
        event.organizers = event.related_projects = None
    return tombstone_document(obj)
