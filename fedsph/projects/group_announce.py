"""A project shares its members' posts with its followers (FEP-1b12, as Lemmy groups do).

A member posting from a Mastodon app acts as their own Person. When the post addresses a project
they belong to (a mention of it, or the project in `to`/`cc`), the project announces the post,
so the project's followers see it as the project's boost. Only public and unlisted posts are
announced: an Announce is public, and Mastodon refuses boosts of anything narrower.

Announce of the object itself (not of the Create): that is the form Mastodon shows as a boost.
Edits and the deletion of an announced post reach the project's followers too
(fedsph.projects.outbox.send_to_followers).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.models import Actor, Membership, Object, User
from fedsph.projects.outbox_reactions import announce_object

ANNOUNCED_VISIBILITIES = ("public", "unlisted")


async def projects_of(db: AsyncSession, person: Actor) -> list[Actor]:
    """The local projects whose member acts as `person`."""
    return list(await db.scalars(
        select(Actor).join(Membership, Membership.project_id == Actor.id)
        .join(User, User.id == Membership.user_id).where(User.actor_id == person.id)))


def addressed_uris(obj: Object) -> set[str]:
    """Who a post addresses: its Mention tags and its to/cc."""
    document = obj.document or {}
    uris = {t.get("href") for t in obj.tags or [] if t.get("type") == "Mention"}
    for field in ("to", "cc"):
        value = document.get(field) or []
        uris.update(value if isinstance(value, list) else [value])
    return {u for u in uris if isinstance(u, str)}


async def announce_member_post(db: AsyncSession, urls: URLs, author: Actor, obj: Object
                               ) -> list[Actor]:
    """Have every project the post addresses, and `author` belongs to, announce it.

    Runs in the caller's transaction, after the post was published. Returns the projects that
    announced it.
    """
    if author.type != "Person" or not obj.local or obj.visibility not in ANNOUNCED_VISIBILITIES:
        return []
    addressed = addressed_uris(obj)
    projects = [p for p in await projects_of(db, author) if p.uri in addressed]
    for project in projects:
        await announce_object(db, urls, project, obj)
    return projects
