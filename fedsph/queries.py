"""Read-only queries shared by the web pages, collections and the CLI."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.models import Activity, Actor, Follow, Object, Reaction

PAGE_SIZE = 20


async def local_projects(db: AsyncSession) -> list[Actor]:
    return list(await db.scalars(select(Actor).where(
        Actor.local.is_(True), Actor.type == "Group").order_by(Actor.username)))


async def node_feed(db: AsyncSession, limit: int = 30) -> list[tuple[Object, Actor]]:
    """Latest posts by actors that this node's actors follow (the solidarity feed), and our own."""
    followed = select(Follow.followed_id).join(Actor, Actor.id == Follow.follower_id).where(
        Actor.local.is_(True), Follow.state == "accepted")
    rows = await db.execute(
        select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
        .where(Object.deleted_at.is_(None), Object.in_reply_to.is_(None),
               Object.visibility.in_(("public", "unlisted")),
               (Object.actor_id.in_(followed)) | (Actor.local.is_(True)))
        .order_by(Object.published.desc(), Object.id.desc()).limit(limit))
    return [(obj, actor) for obj, actor in rows]


async def actor_posts(db: AsyncSession, actor: Actor, page: int = 1) -> list[Object]:
    return list(await db.scalars(
        select(Object).where(Object.actor_id == actor.id, Object.deleted_at.is_(None),
                             Object.visibility.in_(("public", "unlisted")))
        .order_by(Object.published.desc(), Object.id.desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))


async def outbox_count(db: AsyncSession, actor: Actor) -> int:
    return await db.scalar(select(func.count(Object.id)).where(
        Object.actor_id == actor.id, Object.deleted_at.is_(None),
        Object.visibility.in_(("public", "unlisted")))) or 0


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
    return list(await db.scalars(query))


async def relation_count(db: AsyncSession, actor: Actor, followers: bool) -> int:
    mine = Follow.followed_id if followers else Follow.follower_id
    return await db.scalar(select(func.count(Follow.id)).where(
        mine == actor.id, Follow.state == "accepted")) or 0


async def replies_to(db: AsyncSession, uri: str) -> list[tuple[Object, Actor]]:
    rows = await db.execute(
        select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
        .where(Object.in_reply_to == uri, Object.deleted_at.is_(None))
        .order_by(Object.published))
    return [(obj, actor) for obj, actor in rows]


async def reaction_counts(db: AsyncSession, uri: str) -> dict[str, int]:
    rows = await db.execute(select(Reaction.type, func.count(Reaction.id))
                            .where(Reaction.object_uri == uri).group_by(Reaction.type))
    return {kind: count for kind, count in rows}
