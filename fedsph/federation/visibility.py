"""Who may see a post: the one place visibility is decided for received posts and checked on reads.

Four values, Mastodon's rule (app/lib/activitypub/parser/status_parser.rb, `visibility`):
as:Public in `to` is `public`, in `cc` is `unlisted`; the author's followers collection
addressed is `followers` (Mastodon's `private`); anything else is addressed only to some actors
and is `direct`. A direct post is shown to its author and the actors it addresses, nobody else;
the addressed actors (`to`, `cc` and Mention tags, as Mastodon's mentions) are kept in
`object_audience` so that reads can filter in SQL.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.safe_links import http_url
from fedsph.federation.activitystreams import PUBLIC_ALIASES, as_list, get_id, get_type
from fedsph.models import Actor, Follow, Object, ObjectAudience

VISIBLE_TO_ALL = ("public", "unlisted")
DIRECT = "direct"
MAX_ADDRESSEES = 100  # more than Mastodon lets a post mention; the rest is not stored


def _ids(value) -> set[str]:
    return {i for i in (get_id(x) for x in as_list(value)) if isinstance(i, str)}


def visibility_of(document: dict, followers_url: str | None = None) -> str:
    """public, unlisted, followers or direct, from a received object's addressing."""
    to, cc = _ids(document.get("to")), _ids(document.get("cc"))
    if to & PUBLIC_ALIASES:
        return "public"
    if cc & PUBLIC_ALIASES:
        return "unlisted"
    if followers_url and followers_url in to | cc:
        return "followers"
    return DIRECT


def with_activity_addressing(document: dict, activity: dict) -> dict:
    """The object with its activity's `to` and `cc` when it carries no addressing of its own.

    Some servers address only the activity; Mastodon reads `object.to || activity.to` (and cc
    likewise, app/lib/activitypub/activity/create.rb). Here the activity's addressing is taken
    only whole, for an object that addresses nobody: an object that names any audience keeps
    exactly its own, so the activity (same author, same signature) can never widen it. Mastodon's
    field-by-field fallback would make an object `to: [bob]` in an activity with as:Public in
    `cc` an unlisted post.
    """
    if _ids(document.get("to")) or _ids(document.get("cc")):
        return document
    to, cc = _ordered_ids(activity.get("to")), _ordered_ids(activity.get("cc"))
    if not (to or cc):
        return document
    return {**document, "to": to, "cc": cc}


def _ordered_ids(value) -> list[str]:
    return list(dict.fromkeys(i for i in (get_id(x) for x in as_list(value)) if isinstance(i, str)))


def addressees(document: dict, followers_url: str | None = None) -> list[str]:
    """The actors a post addresses: `to`, `cc` and its Mention tags, collections left out."""
    mentions = [get_id(t.get("href")) for t in as_list(document.get("tag"))
                if isinstance(t, dict) and get_type(t) == "Mention"]
    found = [*as_list(document.get("to")), *as_list(document.get("cc")), *mentions]
    uris = (http_url(get_id(u)) for u in found)
    kept = [u for u in uris if u and u not in PUBLIC_ALIASES and u != followers_url]
    return list(dict.fromkeys(kept))[:MAX_ADDRESSEES]


async def store_addressees(db: AsyncSession, obj: Object, uris: list[str],
                           silent: list[str] = ()) -> None:
    """Add to whom `obj` addresses; only direct posts keep the list (the others need none).

    Added to, never narrowed: an edit of a direct post cannot take it back from an account
    that has it already (it was delivered), and an account reached through its own inbox
    without being named (fedsph/handlers/posts.py) stays addressed when an Update names the
    others only. `silent`: such accounts, kept apart (ObjectAudience.silent) so that the others
    in the post are not shown them; one the post names is not silent. A post that stops being
    direct drops the list."""
    if obj.visibility != DIRECT:
        await db.execute(delete(ObjectAudience).where(ObjectAudience.object_id == obj.id))
        await db.flush()
        return
    held = dict((await db.execute(select(ObjectAudience.actor_uri, ObjectAudience.silent)
                                  .where(ObjectAudience.object_id == obj.id))).all())
    named = set(uris)
    now_named = [u for u, quiet in held.items() if quiet and u in named]
    if now_named:
        await db.execute(update(ObjectAudience).where(
            ObjectAudience.object_id == obj.id, ObjectAudience.actor_uri.in_(now_named))
            .values(silent=False))
    room = MAX_ADDRESSEES - len(held)
    new = [u for u in dict.fromkeys([*uris, *silent]) if u not in held][:max(room, 0)]
    db.add_all(ObjectAudience(object_id=obj.id, actor_uri=u, silent=u not in named) for u in new)
    await db.flush()


def addressed_to(actor: Actor) -> ColumnElement[bool]:
    """SQL: the Object row is a direct post that addresses `actor`."""
    return (Object.visibility == DIRECT) & exists().where(
        ObjectAudience.object_id == Object.id, ObjectAudience.actor_uri == actor.uri)


def direct_shown_to(me: Actor | None) -> ColumnElement[bool]:
    """SQL: the Object row is not direct, or `me` wrote it or is addressed by it."""
    if me is None:
        return Object.visibility != DIRECT
    return or_(Object.visibility != DIRECT, Object.actor_id == me.id, addressed_to(me))


async def is_addressed(db: AsyncSession, obj: Object, actor: Actor) -> bool:
    found = await db.scalar(select(ObjectAudience.id).where(
        ObjectAudience.object_id == obj.id, ObjectAudience.actor_uri == actor.uri).limit(1))
    return found is not None


async def follows(db: AsyncSession, me: Actor, author_id: int) -> bool:
    found = await db.scalar(select(Follow.id).where(
        Follow.follower_id == me.id, Follow.followed_id == author_id,
        Follow.state == "accepted").limit(1))
    return found is not None


async def may_see(db: AsyncSession, obj: Object, me: Actor | None) -> bool:
    """By visibility alone (deletion, hiding and approval are the caller's): may `me` see it?"""
    if obj.visibility in VISIBLE_TO_ALL:
        return True
    if me is None:
        return False
    if obj.actor_id == me.id:
        return True
    if obj.visibility == "followers":
        return await follows(db, me, obj.actor_id)
    if obj.visibility == DIRECT:
        return await is_addressed(db, obj, me)
    return False  # a value we do not know shows to nobody but its author


async def addressed_actors(db: AsyncSession, object_uri: str) -> list[Actor]:
    """The stored actors a direct post addresses (its delivery list)."""
    uris = select(ObjectAudience.actor_uri).join(Object, Object.id == ObjectAudience.object_id) \
        .where(Object.uri == object_uri)
    return list(await db.scalars(select(Actor).where(Actor.uri.in_(uris)).order_by(Actor.id)))


async def domain_addressed(db: AsyncSession, obj: Object, domain: str) -> bool:
    """Whether a direct post addresses a stored actor of `domain` (authorized fetch)."""
    if obj.visibility != DIRECT:
        return False
    found = await db.scalar(select(Actor.id).join(
        ObjectAudience, ObjectAudience.actor_uri == Actor.uri).where(
        ObjectAudience.object_id == obj.id, Actor.domain == domain).limit(1))
    return found is not None

