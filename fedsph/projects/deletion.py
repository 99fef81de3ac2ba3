"""Deleting a local actor (a project, or a member's own Person when the member is deleted).

As Mastodon's DeleteAccountService with reserve_username (its default), the actor's row stays as
a tombstone and everything else it held goes:
- its row keeps its URI, name and keys, and gets `deleted_at`: the name is never given again
  (federation.actors.local_name_taken), its URL answers 410 Gone with a Tombstone, and its key
  signs the `Delete` of the actor when the worker sends it, on every retry, however late. The
  worker signs at send time (worker_delivery.py reads the key of the activity's actor): signing
  at enqueue would not do, as the HTTP signature's Date must be fresh (Mastodon refuses one
  older than an hour) and retries run for two days. The key stays afterwards too: it can only
  ever sign as a tombstone, and keeping it is what lets a late retry still be signed;
- every row that points at it (posts, follows both ways, memberships, media, notifications,
  tokens, its earlier activities with the deliveries still waiting for them, a member's user
  row with sessions and tokens): found from the schema's foreign keys, so a table added later
  is purged too. Its media files are deleted after the commit (`delete_files`).
The Delete goes to its followers and to those it follows (both hold a follow row naming it),
addressed to the public as Mastodon's DeleteActorSerializer does, with our integrity proof.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.config import Settings
from fedsph.core.db_errors import lock_conflict
from fedsph.core.urls import URLs
from fedsph.errors import N_, UserError
from fedsph.federation.activitystreams import AS_CONTEXT, PUBLIC
from fedsph.federation.emit import send
from fedsph.federation.keycache import forget_when_committed
from fedsph.models import (
    Actor,
    Base,
    Follow,
    Hub,
    HubMembership,
    Media,
    Membership,
    User,
    utcnow,
)
from fedsph.models.mail import withdraw_invitations
from fedsph.projects.conversations import before_actor_deleted
from fedsph.projects.media import delete_files

log = logging.getLogger("fedsph.deletion")
TRIES = 3


class AlreadyDeleted(UserError):
    """A second deletion of the same actor, racing the first (the admin page answers 404)."""


async def retried(writers: async_sessionmaker, work):
    """`await work(db)` in a transaction of its own, run again (TRIES times in all) when
    PostgreSQL chose it as the victim of a deadlock. A deletion locks the actor's row, then
    deletes the rows pointing at it; a writer holding one of those rows (an unfollow, an edit,
    a Follow handled again, `refuse_last_admin`'s user rows) that then asks for the actor's row
    (emit.refuse_tombstone) takes the two in the opposite order, and one must give way. When
    the deletion gave way, the writer has finished and the deletion, run again, purges what it
    wrote (or it found the tombstone: Gone); when the writer gave way, nothing of it stayed."""
    for attempt in range(1, TRIES + 1):
        try:
            async with writers() as db, db.begin():
                return await work(db)
        except DBAPIError as exc:
            if attempt == TRIES or not lock_conflict(exc):
                raise
            log.warning("a deletion and a writer locked each other (try %d of %d): again",
                        attempt, TRIES)


@dataclass
class Deleted:
    """What a deletion left for after its commit: the media whose files to delete."""

    actor_uri: str
    username: str
    queued: int  # remote inboxes the Delete was queued to
    media: list[Media] = field(default_factory=list)


def delete_document(actor: Actor) -> dict:
    """The Delete of an actor, by itself (Mastodon's DeleteActorSerializer: id `<actor>#delete`,
    object the actor's id, to the public)."""
    return {"@context": AS_CONTEXT, "id": f"{actor.uri}#delete", "type": "Delete",
            "actor": actor.uri, "object": actor.uri, "to": [PUBLIC]}


async def _recipients(db: AsyncSession, actor: Actor) -> list[Actor]:
    """Its followers (relay subscribers too) and those it follows or asked to follow."""
    followers = select(Follow.follower_id).where(Follow.followed_id == actor.id,
                                                 Follow.state == "accepted")
    followed = select(Follow.followed_id).where(Follow.follower_id == actor.id)
    # Servers that got its public posts through this node's hub, which Announces an approved
    # member's posts to the hub's followers (hub/reshare.py) and forwards them to its relay
    # subscribers (hub/relay.py; their Follow rows are the hub's too). Read before the purge.
    joined = select(HubMembership.hub_id).where(HubMembership.project_id == actor.id,
                                                HubMembership.state == "approved")
    hubs = joined.where(HubMembership.hub_id.in_(select(Hub.actor_id)))
    via_hub = select(Follow.follower_id).where(Follow.followed_id.in_(hubs),
                                               Follow.state == "accepted")
    return list(await db.scalars(select(Actor).where(
        # Remote hubs it is a member of (`joined`) hold its membership and reshared its posts.
        Actor.id.in_(followers) | Actor.id.in_(followed) | Actor.id.in_(via_hub)
        | Actor.id.in_(joined),
        Actor.local.is_(False))))


async def refuse_hub(db: AsyncSession, actor: Actor) -> None:
    """UserError if `actor` is this node's hub (see `not_a_hub`)."""
    if await db.scalar(select(Hub.id).where(Hub.actor_id == actor.id)) is not None:
        raise UserError(N_("%(name)s is this node's hub, not a project: it cannot be deleted"),
                        name=actor.username)


def not_a_hub():
    """A condition on Actor: not this node's hub, a Group that is no project to delete (its
    members are other projects; `fedsph hub` runs it)."""
    return Actor.id.not_in(select(Hub.actor_id))


async def _purge_rows(db: AsyncSession, actor_id: int) -> None:
    """Every row pointing at the actor: deleted where its key cascades, cleared where it is
    SET NULL (a report keeps its text). Dependent rows (a post's audiences and versions, an
    activity's deliveries) go by the database's own cascades."""
    for table in reversed(Base.metadata.sorted_tables):
        if table.name == "actors":
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name != "actors":
                continue
            if (fk.ondelete or "").upper() == "SET NULL":
                await db.execute(update(table).where(fk.parent == actor_id)
                                 .values({fk.parent.name: None}))
            else:
                await db.execute(delete(table).where(fk.parent == actor_id))


async def delete_actor(db: AsyncSession, urls: URLs, actor: Actor) -> Deleted:
    """Delete a local actor in the caller's transaction (see the module's docstring); call
    `free_media` with the result after the commit."""
    # Locked first (FOR UPDATE; SQLite has one writer): a post being written for this actor
    # either commits before (and is purged here) or waits, then finds a tombstone
    # (federation.emit.record_activity refuses it). A writer that already holds a row pointing
    # at the actor (an unfollow, an edit) and then asks for the actor's row waits on us while we
    # wait on it: PostgreSQL ends one of the two, and `retried` runs the deletion again.
    await db.refresh(actor, with_for_update=True)
    if actor.deleted_at is not None:  # two admins at once: the second finds the tombstone
        raise AlreadyDeleted(f"{actor.username} was already deleted; nothing more was done")
    if not actor.local or actor.type == "Application":
        raise ValueError(f"{actor.uri} is not a live local project or person")
    await refuse_hub(db, actor)
    recipients = await _recipients(db, actor)
    # Copies of what names the files: the rows themselves are gone once this commits.
    media = [Media(key=m.key, renditions=m.renditions)
             for m in await db.scalars(select(Media).where(Media.owner_id == actor.id))]
    await before_actor_deleted(db, actor.id)
    await _purge_rows(db, actor.id)
    now = utcnow()
    await db.execute(update(Actor).where(Actor.id == actor.id).values(
        deleted_at=now, name=None, summary=None, profile=None, name_map=None, summary_map=None,
        icon_url=None, header_url=None, also_known_as=None, moved_to=None,
        manually_approves=False, hold_replies=False))
    await db.refresh(actor)
    await send(db, actor, delete_document(actor), recipients, object_uri=actor.uri, public=True)
    queued = len({r.delivery_inbox for r in recipients if r.delivery_inbox})
    forget_when_committed(db, actor.uri)  # this process's inbox key cache
    return Deleted(actor.uri, actor.username, queued, media)


def log_deleted(deleted: Deleted) -> None:
    """Called once `retried` returned: logged inside the transaction, a deletion tried again
    after a deadlock would have said "deleted" for a rollback."""
    log.info("deleted %s; Delete %s#delete queued to %d inbox(es)", deleted.actor_uri,
             deleted.actor_uri, deleted.queued)


def free_media(settings: Settings, deleted: Deleted) -> None:
    """Delete the files of a deleted actor's media, after the commit (a rollback must not
    leave rows whose files are gone)."""
    for media in deleted.media:
        try:
            delete_files(settings, media)
        except OSError as exc:
            log.warning("could not delete the files of image %s: %s", media.key, exc)


async def sole_projects(db: AsyncSession, user: User) -> list[Actor]:
    """The live projects of which `user` is the only member (any member may manage a project:
    web.auth_middleware.require_member), so nobody would be left to run them."""
    others = select(Membership.project_id).where(Membership.user_id != user.id)
    return list(await db.scalars(
        select(Actor).join(Membership, Membership.project_id == Actor.id)
        .where(Membership.user_id == user.id, Actor.id.not_in(others),
               Actor.deleted_at.is_(None), not_a_hub()).order_by(Actor.username)))


async def lock_projects_of(db: AsyncSession, user: User) -> None:
    """Lock (FOR UPDATE, in id order as every deletion does) the rows of the projects `user`
    belongs to, before counting their members: adding a member inserts a row pointing at the
    project (FOR KEY SHARE on it), so until this transaction ends nobody joins one of them and
    turns a project counted as theirs alone into a shared one that would be deleted anyway."""
    await db.execute(select(Actor.id).where(Actor.id.in_(
        select(Membership.project_id).where(Membership.user_id == user.id)))
        .order_by(Actor.id).with_for_update())


async def projects_going_with(db: AsyncSession, user: User, with_projects: bool) -> list[Actor]:
    """The projects deleting `user` would delete: those they alone belong to, only when
    `with_projects` says so (else UserError: nobody would be left to run them)."""
    alone = await sole_projects(db, user)
    if alone and not with_projects:
        raise UserError(N_("%(user)s is the only member of %(projects)s: delete those projects "
                           "too with --with-projects, or invite someone else first; nothing was "
                           "deleted"), user=user.username,
                        projects=", ".join(p.username for p in alone))
    return alone


async def delete_user(db: AsyncSession, urls: URLs, user: User,
                      with_projects: bool = False) -> list[Deleted]:
    """Delete a member: the projects they alone belong to (only `with_projects`: else
    UserError, nothing done; counted here, in the deleting transaction), then their own Person,
    which takes the user row with it (and so their sessions, tokens and memberships: ON DELETE
    CASCADE). Their unused invitations go too, and their invitation mails not sent yet.
    Projects with other members simply lose this member."""
    await lock_projects_of(db, user)
    alone = await projects_going_with(db, user, with_projects)
    await withdraw_invitations(db, user.id)  # and their invitation mails not sent yet
    person = await db.get(Actor, user.actor_id)
    done = [await delete_actor(db, urls, project) for project in alone]
    done.append(await delete_actor(db, urls, person))
    return done
