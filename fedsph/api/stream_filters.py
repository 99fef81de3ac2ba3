"""Which streams an event goes to, and what each receives: the names apps subscribe to, and
per event the check, with the stream's own account, of what its timeline would show.

Streams (Mastodon's names, docs.joinmastodon.org/methods/streaming): `user` (what the home
timeline would get, and the account's notifications), `user:notification`, `public`,
`public:local`, `public:remote`, `hashtag` and `hashtag:local` (with a `tag`). The public ones
get what /api/v1/timelines/public (and /tag) would list: public posts not withheld. A
followers-only post goes to the user streams of the author and its accepted followers, a
direct one to the author and the actors it addresses (fedsph.federation.visibility), nobody
else. A `delete` carries only the id, and goes where its post could have been seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api.errors import ApiError
from fedsph.api.notifications import notification_entity
from fedsph.api.reactions import reblog_entity
from fedsph.api.statuses import status_entity
from fedsph.api.stream_hub import Row
from fedsph.api.tokens import covers
from fedsph.federation.visibility import VISIBLE_TO_ALL, addressed_to, direct_shown_to
from fedsph.models import Actor, Follow, Notification, Object, Reaction
from fedsph.projects.queries import has_tag, not_withheld

USER_STREAMS = ("user", "user:notification")
PUBLIC_STREAMS = ("public", "public:local", "public:remote")
TAG_STREAMS = ("hashtag", "hashtag:local")
# The scope each stream needs (Mastodon's streaming server asks the same of a token).
SCOPES = {"user": "read:statuses", "user:notification": "read:notifications"}
MAX_TAG = 100


class StreamError(ApiError):
    """A stream that cannot be had: sent as an error event (WebSocket) or a 4xx JSON (SSE)."""


@dataclass(frozen=True)
class Stream:
    name: str
    tag: str | None = None

    @property
    def label(self) -> list[str]:
        """The `stream` of each WebSocket message, as Mastodon sends it."""
        return [self.name, self.tag] if self.tag is not None else [self.name]


def parse_stream(name: str | None, tag: str | None, me: Actor | None,
                 scopes: list[str]) -> Stream:
    """The stream an app asked for, or a StreamError saying why it may not have it."""
    if name in TAG_STREAMS:
        tag = (tag or "").strip().lstrip("#")
        if not tag or len(tag) > MAX_TAG:
            raise StreamError(400, "Missing tag name parameter")
        return Stream(name, tag)
    if name in PUBLIC_STREAMS:
        return Stream(name)
    if name in USER_STREAMS:
        if me is None:
            raise StreamError(401, "Missing access token")
        if not covers(scopes, SCOPES[name]):
            raise StreamError(401, "Access token does not have the required scopes")
        return Stream(name)
    raise StreamError(400, "Unknown stream type")


def _followed(me: Actor):
    return select(Follow.followed_id).where(Follow.follower_id == me.id,
                                            Follow.state == "accepted")


def home_condition(me: Actor) -> ColumnElement[bool]:
    """fedsph/api/timelines.py `home`'s rule for a post (boosts apart): the account's own, the
    direct ones addressing it, and those of accounts it follows that it may see."""
    return ((Object.actor_id == me.id) | addressed_to(me)
            | (Object.actor_id.in_(_followed(me)) & direct_shown_to(me)))


def public_condition(stream: Stream, deleted: bool) -> ColumnElement[bool]:
    condition = Object.visibility == "public"
    if not deleted:
        condition = condition & not_withheld()
        if stream.tag is not None:  # a tombstone keeps no tags: its delete goes to all
            condition = condition & has_tag(stream.tag)
    if stream.name.endswith(":local"):
        condition = condition & Object.local.is_(True)
    elif stream.name.endswith(":remote"):
        condition = condition & Object.local.is_(False)
    return condition


async def _post_matches(db: AsyncSession, row: Row, stream: Stream, me: Actor | None) -> bool:
    deleted = row.kind == "delete"
    if stream.name == "user":
        condition = home_condition(me)
        if not deleted:
            condition = condition & not_withheld()
    else:
        condition = public_condition(stream, deleted)
    found = await db.scalar(select(Object.id).where(Object.id == row.ref_id, condition))
    return found is not None


async def _reblog_matches(db: AsyncSession, row: Row, me: Actor) -> Object | None:
    """A boost by the account or one it follows, of a public or unlisted post still shown."""
    if row.actor_id != me.id and await db.scalar(
            _followed(me).where(Follow.followed_id == row.actor_id).limit(1)) is None:
        return None
    reaction = await db.get(Reaction, row.ref_id)
    if reaction is None:
        return None
    return await db.scalar(select(Object).where(
        Object.uri == reaction.object_uri, Object.visibility.in_(VISIBLE_TO_ALL),
        not_withheld()))


async def matching(db: AsyncSession, row: Row, streams: list[Stream],
                   me: Actor | None) -> list[Stream]:
    """The streams of one connection that `row` goes to."""
    found = []
    for stream in streams:
        if row.kind == "notification":
            if stream.name in USER_STREAMS and me is not None and row.actor_id == me.id:
                found.append(stream)
        elif row.kind == "reblog":
            if stream.name == "user" and await _reblog_matches(db, row, me) is not None:
                found.append(stream)
        elif stream.name != "user:notification" and await _post_matches(db, row, stream, me):
            found.append(stream)
    return found


async def payload(request: web.Request, db: AsyncSession, row: Row,
                  me: Actor | None) -> str | None:
    """The event's `payload`: an entity as a JSON string, or a deleted status's id."""
    if row.kind == "delete":
        return str(row.ref_id)
    if row.kind == "notification":
        notification = await db.get(Notification, row.ref_id)
        if notification is None or notification.dismissed_at is not None:
            return None
        sender = await db.get(Actor, notification.from_actor_id)
        if sender is None:
            return None
        entity = await notification_entity(request, db, notification, sender, me)
    elif row.kind == "reblog":
        post = await _reblog_matches(db, row, me)
        reaction = await db.get(Reaction, row.ref_id)
        booster = await db.get(Actor, row.actor_id)
        if post is None or reaction is None or booster is None:
            return None
        entity = await reblog_entity(request, db, await status_entity(request, db, post, me),
                                     booster, reaction)
    else:
        obj = await db.get(Object, row.ref_id)
        if obj is None or obj.deleted_at is not None:
            return None
        entity = await status_entity(request, db, obj, me)
    return orjson.dumps(entity).decode()
