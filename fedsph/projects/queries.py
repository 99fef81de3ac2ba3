"""Read-only queries shared by the web pages, collections and the CLI."""

from __future__ import annotations

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fedsph.federation.visibility import VISIBLE_TO_ALL
from fedsph.models import (
    Activity,
    Actor,
    Follow,
    Media,
    Membership,
    Notification,
    Object,
    Reaction,
    Report,
    User,
)

PAGE_SIZE = 20
# The most rows one page or response lists from a table strangers can grow (replies under a
# post, followers, follow requests): the cap is in the query (LIMIT), never a slice afterwards.
MAX_LISTED = 50


def not_withheld():
    """Posts nobody but their author may see are out: deleted, hidden by a moderator, or held
    for approval. Every list of posts (pages, feeds, exports, client API) starts from this."""
    return (Object.deleted_at.is_(None)) & Object.hidden.is_(False) & Object.approved.is_(True)


def shown_to_visitors():
    """The one condition for a post on anything a visitor reads (pages, Atom, hub exports, the
    public API): not withheld, and public or unlisted. Callers may narrow it to "public"."""
    return not_withheld() & Object.visibility.in_(VISIBLE_TO_ALL)


async def local_projects(db: AsyncSession) -> list[Actor]:
    return list(await db.scalars(select(Actor).where(
        Actor.local.is_(True), Actor.type == "Group", Actor.deleted_at.is_(None))
        .order_by(Actor.username)))


async def node_feed(db: AsyncSession, limit: int = 30) -> list[tuple[Object, Actor]]:
    """Latest posts by actors that this node's actors follow (the solidarity feed), and our own."""
    followed = select(Follow.followed_id).join(Actor, Actor.id == Follow.follower_id).where(
        Actor.local.is_(True), Follow.state == "accepted")
    rows = await db.execute(
        select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
        .where(shown_to_visitors(), Object.in_reply_to.is_(None),
               (Object.actor_id.in_(followed)) | (Actor.local.is_(True)))
        .order_by(Object.published.desc(), Object.id.desc()).limit(limit))
    return [(obj, actor) for obj, actor in rows]


async def tagged_posts(db: AsyncSession, tag: str, limit: int = 30) -> list[tuple[Object, Actor]]:
    """Public posts on this node's pages carrying a hashtag or theme `tag` (letters, digits, _).

    The tags are a JSON list; matching its text is portable across SQLite and PostgreSQL, and
    the escaped LIKE keeps `_` literal. Either form counts: "#tag" (Hashtag) or "tag" (theme).
    """
    rows = await db.execute(
        select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
        .where(shown_to_visitors(), Object.visibility == "public", has_tag(tag))
        .order_by(Object.published.desc(), Object.id.desc()).limit(limit))
    return [(obj, actor) for obj, actor in rows]


def has_tag(tag: str):
    """The condition of tagged_posts: the object's tags hold "#tag" or "tag" (any case)."""
    escaped = tag.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    text = func.lower(cast(Object.tags, String))
    return (text.like(f'%"#{escaped.lower()}"%', escape="\\")
            | text.like(f'%"{escaped.lower()}"%', escape="\\"))


async def actors_of_user(db: AsyncSession, user: User) -> list[Actor]:
    """The local actors a user may act as: their own Person, then their projects (all, if admin)."""
    projects = select(Actor).where(Actor.local.is_(True), Actor.type == "Group",
                                   Actor.deleted_at.is_(None))
    if not user.is_admin:
        projects = projects.join(Membership, Membership.project_id == Actor.id).where(
            Membership.user_id == user.id)
    own = await db.get(Actor, user.actor_id)
    return [own, *await db.scalars(projects.order_by(Actor.username))]


async def actor_posts(db: AsyncSession, actor: Actor, page: int = 1) -> list[Object]:
    return list(await db.scalars(
        select(Object).where(Object.actor_id == actor.id, shown_to_visitors())
        .order_by(Object.published.desc(), Object.id.desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))


async def outbox_count(db: AsyncSession, actor: Actor) -> int:
    return await db.scalar(select(func.count(Object.id)).where(
        Object.actor_id == actor.id, shown_to_visitors())) or 0


async def create_activities(db: AsyncSession, objects: list[Object]) -> dict[str, bytes]:
    """The stored Create activity body for each object URI (the outbox shows the originals)."""
    if not objects:
        return {}
    rows = await db.execute(select(Activity.object_uri, Activity.body).where(
        Activity.type == "Create", Activity.object_uri.in_([o.uri for o in objects])))
    return {uri: body for uri, body in rows}


async def relation_actors(db: AsyncSession, actor: Actor, followers: bool, page: int | None = None,
                          state: str = "accepted") -> list[Actor]:
    """Followers of `actor` (followers=True) or the actors it follows."""
    mine, theirs = (Follow.followed_id, Follow.follower_id) if followers else (
        Follow.follower_id, Follow.followed_id)
    query = (select(Actor).join(Follow, theirs == Actor.id)
             .where(mine == actor.id, Follow.state == state).order_by(Follow.id.desc()))
    if page is not None:
        query = query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    return list(await db.scalars(query.limit(MAX_LISTED)))


async def relation_count(db: AsyncSession, actor: Actor, followers: bool) -> int:
    mine = Follow.followed_id if followers else Follow.follower_id
    return await db.scalar(select(func.count(Follow.id)).where(
        mine == actor.id, Follow.state == "accepted")) or 0


async def reaction_counts(db: AsyncSession, uri: str) -> dict[str, int]:
    rows = await db.execute(select(Reaction.type, func.count(Reaction.id))
                            .where(Reaction.object_uri == uri).group_by(Reaction.type))
    return {kind: count for kind, count in rows}


# -- web pages -------------------------------------------------------------------------------------

async def project_posts(db: AsyncSession, actor: Actor, page: int = 1) -> list[Object]:
    """An actor's public top-level posts for its page: pinned ones first, then newest first."""
    return list(await db.scalars(
        select(Object).where(Object.actor_id == actor.id, shown_to_visitors(),
                             Object.in_reply_to.is_(None))
        .order_by(Object.pinned_at.is_(None), Object.pinned_at.desc(),
                  Object.published.desc(), Object.id.desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))


async def media_for(db: AsyncSession, object_ids: list[int]) -> dict[int, list[Media]]:
    """Uploaded images of local objects, in the order the member chose."""
    found: dict[int, list[Media]] = {}
    if object_ids:
        for media in await db.scalars(select(Media).where(Media.object_id.in_(object_ids))
                                      .order_by(Media.position, Media.id)):
            found.setdefault(media.object_id, []).append(media)
    return found


async def is_member(db: AsyncSession, user: User | None, project: Actor) -> bool:
    """True for the project's members (and the user whose own actor it is, and admins)."""
    if user is None:
        return False
    if user.is_admin or user.actor_id == project.id:
        return True
    return await db.scalar(select(Membership.id).where(
        Membership.user_id == user.id, Membership.project_id == project.id)) is not None


async def public_remote_object(db: AsyncSession, uri: str) -> tuple[Object, Actor] | None:
    """A stored remote post that anyone may see here."""
    row = (await db.execute(
        select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
        .where(Object.uri == uri, Object.local.is_(False), shown_to_visitors()))).first()
    return (row[0], row[1]) if row else None


async def comments_for(db: AsyncSession, obj: Object, include_hidden: bool = False,
                       include_held: bool = False, page: int = 1,
                       visibilities: tuple[str, ...] = VISIBLE_TO_ALL,
                       ) -> list[tuple[Object, Actor]]:
    """One page (MAX_LISTED) of the replies under a post, oldest first. Visitors see neither
    hidden nor held ones; members moderating pass include_hidden/include_held."""
    query = (select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
             .where(Object.in_reply_to == obj.uri, Object.deleted_at.is_(None),
                    Object.visibility.in_(visibilities)))
    if not include_hidden:
        query = query.where(Object.hidden.is_(False))
    if not include_held:
        query = query.where(Object.approved.is_(True))
    rows = await db.execute(query.order_by(Object.published, Object.id)
                            .offset((page - 1) * MAX_LISTED).limit(MAX_LISTED))
    return [(comment, author) for comment, author in rows]


async def comment_count(db: AsyncSession, obj: Object,
                        visibilities: tuple[str, ...] = VISIBLE_TO_ALL) -> int:
    """How many replies a visitor may see under a post (what comments_for pages through)."""
    return await db.scalar(select(func.count(Object.id)).where(
        Object.in_reply_to == obj.uri, not_withheld(),
        Object.visibility.in_(visibilities))) or 0


async def pinned_posts(db: AsyncSession, actor: Actor) -> list[Object]:
    """The actor's `featured` posts, most recently pinned first."""
    return list(await db.scalars(
        select(Object).where(Object.actor_id == actor.id, Object.pinned_at.is_not(None),
                             shown_to_visitors())
        .order_by(Object.pinned_at.desc(), Object.id.desc())))


async def public_posts(db: AsyncSession, actor: Actor, limit: int = PAGE_SIZE) -> list[Object]:
    """The actor's latest public posts (not replies): the Atom feed."""
    return list(await db.scalars(
        select(Object).where(Object.actor_id == actor.id, shown_to_visitors(),
                             Object.visibility == "public", Object.in_reply_to.is_(None))
        .order_by(Object.published.desc(), Object.id.desc()).limit(limit)))


# -- notifications and reports (fedsph/projects/notifications.py, fedsph/handlers/reports.py) ---------------

async def notifications_for(db: AsyncSession, actor: Actor, limit: int = PAGE_SIZE,
                            max_id: int | None = None, since_id: int | None = None,
                            types: list[str] | tuple[str, ...] | None = None,
                            include_dismissed: bool = False) -> list[tuple[Notification, Actor]]:
    """A local actor's notifications with who caused them, newest first.

    max_id/since_id page by notification id (exclusive), as Mastodon's client API does."""
    query = (select(Notification, Actor).join(Actor, Actor.id == Notification.from_actor_id)
             .where(Notification.recipient_id == actor.id))
    if not include_dismissed:
        query = query.where(Notification.dismissed_at.is_(None))
    if max_id is not None:
        query = query.where(Notification.id < max_id)
    if since_id is not None:
        query = query.where(Notification.id > since_id)
    if types:
        query = query.where(Notification.type.in_(list(types)))
    rows = await db.execute(query.order_by(Notification.id.desc()).limit(limit))
    return [(notification, sender) for notification, sender in rows]


async def reports(db: AsyncSession, include_resolved: bool = False,
                  limit: int = 100) -> list[tuple[Report, Actor | None, Actor | None]]:
    """Reports received from other servers, newest first, with reporter and reported actor."""
    reporter, target = aliased(Actor), aliased(Actor)
    query = (select(Report, reporter, target)
             .outerjoin(reporter, reporter.id == Report.reporter_id)
             .outerjoin(target, target.id == Report.target_id))
    if not include_resolved:
        query = query.where(Report.resolved_at.is_(None))
    rows = await db.execute(query.order_by(Report.id.desc()).limit(limit))
    return [(report, by, about) for report, by, about in rows]
