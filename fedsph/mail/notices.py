"""What waits for a member, by topic, and when to mail them about it.

Topics: `follows` (follow requests waiting for one of the member's projects, or their own
account), `comments` (replies held for approval on a project's updates), `hub` (projects asking
to join this node's hub, for its coordinators: its members and the node's admins). A notice is
queued when something new waits (an item id above the last one mailed), at most once an hour
per member and topic, only to a confirmed address, never after the member unsubscribed. The
mail lists what waits when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import false, func, select, true, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fedsph.mail.links import may_use_account
from fedsph.mail.queue import queue_notice
from fedsph.models import (
    Actor,
    Follow,
    Hub,
    HubMembership,
    MailNotice,
    Membership,
    Object,
    OutgoingMail,
    User,
    utcnow,
)

TOPICS = ("follows", "comments", "hub")
NOTICE_INTERVAL = timedelta(hours=1)
LISTED = 20


def _audience(hub: bool = False):
    """(user_id, actor_id): who acts for which local actor. Members of a project, each member
    for their own Person; for the hub also every admin."""
    parts = [select(Membership.user_id.label("user_id"), Membership.project_id.label("actor_id")),
             select(User.id.label("user_id"), User.actor_id.label("actor_id"))]
    if hub:
        parts.append(select(User.id, Hub.actor_id).join(Hub, true())  # every admin, the hub
                     .where(User.is_admin.is_(True)))
    return union_all(*parts).subquery()


def waiting(topic: str):
    """(user_id, item, place, who): each waiting item with the member it waits for, the local
    actor it is about and the other actor (the follower, the comment's author, the project)."""
    if topic == "follows":
        aud = _audience()
        return (select(aud.c.user_id, Follow.id.label("item"), Follow.followed_id.label("place"),
                       Follow.follower_id.label("who"))
                .join(aud, aud.c.actor_id == Follow.followed_id).where(Follow.state == "pending"))
    if topic == "comments":
        aud, parent = _audience(), aliased(Object)
        return (select(aud.c.user_id, Object.id.label("item"), parent.actor_id.label("place"),
                       Object.actor_id.label("who"))
                .join(parent, parent.uri == Object.in_reply_to)
                .join(aud, aud.c.actor_id == parent.actor_id)
                .where(Object.approved == false(), Object.hidden.is_(False),
                       Object.deleted_at.is_(None)))
    aud = _audience(hub=True)
    return (select(aud.c.user_id, HubMembership.id.label("item"),
                   HubMembership.hub_id.label("place"), HubMembership.project_id.label("who"))
            .join(Hub, Hub.actor_id == HubMembership.hub_id)
            .join(aud, aud.c.actor_id == HubMembership.hub_id)
            .where(HubMembership.state == "requested"))


async def queue_due_notices(db: AsyncSession) -> int:
    """Queue a notice for every member and topic that is due; returns how many."""
    queued, now = 0, utcnow()
    if await db.scalar(select(User.id).where(User.email == User.email_confirmed).limit(1)) is None:
        return 0  # nobody to tell: the usual case on a node without confirmed addresses
    for topic in TOPICS:
        rows = waiting(topic).subquery()
        newest = (await db.execute(
            select(User, func.max(rows.c.item)).join(rows, rows.c.user_id == User.id)
            .where(User.email.is_not(None), User.email == User.email_confirmed)
            .group_by(User.id))).all()
        if not newest:
            continue
        told = {row.user_id: row for row in await db.scalars(select(MailNotice).where(
            MailNotice.topic == topic, MailNotice.user_id.in_([u.id for u, _ in newest])))}
        for user, item in newest:
            notice = told.get(user.id)
            if notice is not None and (notice.unsubscribed_at is not None
                                       or item <= notice.seen_up_to
                                       or (notice.last_mailed_at is not None
                                           and notice.last_mailed_at > now - NOTICE_INTERVAL)):
                continue
            if may_use_account(user) and await queue_notice(db, user, topic):
                queued += 1
    return queued


@dataclass(frozen=True)
class Waiting:
    total: int
    newest: int
    items: list[tuple[Actor, Actor]]  # (place, who), newest first, at most LISTED


async def what_waits(db: AsyncSession, user: User, topic: str) -> Waiting:
    rows = waiting(topic).subquery()
    mine = select(rows).where(rows.c.user_id == user.id).subquery()
    total, newest = (await db.execute(
        select(func.count(func.distinct(mine.c.item)), func.max(mine.c.item)))).one()
    # One row per item (a member may see one twice: as an admin and a hub member), ids only:
    # PostgreSQL cannot DISTINCT the actors' JSON columns.
    first = (select(mine.c.item, mine.c.place, mine.c.who).distinct()
             .order_by(mine.c.item.desc()).limit(LISTED).subquery())
    place, who = aliased(Actor), aliased(Actor)
    listed = (await db.execute(
        select(place, who).select_from(first).join(place, place.id == first.c.place)
        .join(who, who.id == first.c.who).order_by(first.c.item.desc()))).all()
    return Waiting(total or 0, newest or 0, [(p, w) for p, w in listed])


async def mark_told(db: AsyncSession, user_id: int, topic: str, newest: int) -> None:
    notice = await db.get(MailNotice, (user_id, topic))
    if notice is None:
        notice = MailNotice(user_id=user_id, topic=topic, seen_up_to=0)
        db.add(notice)
    notice.last_mailed_at = utcnow()
    notice.seen_up_to = max(notice.seen_up_to or 0, newest)


async def unsubscribe(db: AsyncSession, user: User, topic: str) -> None:
    notice = await db.get(MailNotice, (user.id, topic))
    if notice is None:
        notice = MailNotice(user_id=user.id, topic=topic, seen_up_to=0)
        db.add(notice)
    notice.unsubscribed_at = notice.unsubscribed_at or utcnow()
    await db.execute(update(OutgoingMail).where(
        OutgoingMail.user_id == user.id, OutgoingMail.kind == "notice",
        OutgoingMail.topic == topic, OutgoingMail.status == "pending")
        .values(status="cancelled", finished_at=utcnow(), last_error="unsubscribed")
        .execution_options(synchronize_session=False))
