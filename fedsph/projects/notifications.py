"""Notifications for local actors: follows, favourites, reblogs and mentions from other servers.

Each is keyed by the activity that caused it and its recipient, so an activity handled twice
notifies once, and one that concerns several of our actors (a post mentioning two projects)
notifies each.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.federation.activitystreams import as_list, get_id, get_type
from fedsph.models import Actor, Notification, Object

TYPES = ("follow", "follow_request", "mention", "favourite", "reblog")
# The names Mastodon's client API uses for a Like and an Announce of one of our actors' posts.
REACTION_NOTIFICATIONS = {"Like": "favourite", "Announce": "reblog"}


async def notify(db: AsyncSession, recipients: list[Actor], kind: str, sender: Actor,
                 activity_uri: str, object_uri: str | None = None) -> list[Notification]:
    """One notification per local recipient (never the sender itself); none twice per activity."""
    if kind not in TYPES:
        raise ValueError(f"unknown notification type {kind!r}")
    created = []
    seen: set[int] = set()
    for recipient in recipients:
        if not recipient.local or recipient.id == sender.id or recipient.id in seen:
            continue
        seen.add(recipient.id)
        if await db.scalar(select(Notification.id).where(
                Notification.activity_uri == activity_uri,
                Notification.recipient_id == recipient.id)):
            continue
        notification = Notification(recipient_id=recipient.id, type=kind, from_actor_id=sender.id,
                                    object_uri=object_uri, activity_uri=activity_uri)
        db.add(notification)
        created.append(notification)
    if created:
        await db.flush()
    return created


async def mentioned_or_replied(db: AsyncSession, document: dict) -> list[Actor]:
    """Our actors that a post mentions (Mention tags), then the author of the post it replies to."""
    hrefs = [get_id(tag) for tag in as_list(document.get("tag"))
             if isinstance(tag, dict) and get_type(tag) == "Mention"]
    hrefs = [href for href in hrefs if href]
    found: list[Actor] = []
    if hrefs:
        found.extend(await db.scalars(select(Actor).where(
            Actor.local.is_(True), Actor.deleted_at.is_(None),  # a tombstone reads nothing
            or_(Actor.uri.in_(hrefs), Actor.url.in_(hrefs)))
            .order_by(Actor.id)))
    reply_to = get_id(document.get("inReplyTo"))
    if reply_to:
        owner = await db.scalar(select(Actor).join(Object, Object.actor_id == Actor.id).where(
            Object.uri == reply_to, Object.local.is_(True)))
        if owner is not None and owner not in found:
            found.append(owner)
    return found
