"""Which streams an event goes to, and what each receives: the names apps subscribe to, and
per event the check, with the stream's own account, of what its timeline would show.

Streams (Mastodon's names, docs.joinmastodon.org/methods/streaming): `user` (what the home
timeline would get, and the account's notifications), `user:notification`, `public`,
`public:local`, `public:remote`, `hashtag` and `hashtag:local` (with a `tag`). The public ones
get what /api/v1/timelines/public (and /tag) would list: public posts not withheld. A
followers-only post goes to the user streams of the author and its accepted followers, a
direct one to the author and the actors it addresses (fedsph.federation.visibility), nobody
else. A `delete` carries only the id, and goes only where its post could have been seen: a
post hidden or held for approval was seen nowhere, and a tag stream gets the deletes of the
posts with its tag (the event row keeps them). A boost taken back is a `delete` of the boost's
own status id, on the user streams its `update` went to.

The public and tag streams decide by the event row alone (no query); a user stream asks the
database only for a direct post (who it addresses), a followers-only one (the follow still
there) and a boost (the post boosted), and knows whom its account follows from a set it
reloads at each heartbeat.
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
from fedsph.federation.visibility import (
    DIRECT,
    VISIBLE_TO_ALL,
    addressed_to,
    direct_shown_to,
)
from fedsph.models import Actor, Follow, Notification, Object, Reaction
from fedsph.projects.queries import not_withheld

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


POST_KINDS = ("update", "status.update", "delete")


def _followed(me: Actor):
    return select(Follow.followed_id).where(Follow.follower_id == me.id,
                                            Follow.state == "accepted")


async def followed_ids(db: AsyncSession, me: Actor | None) -> frozenset[int]:
    """The accounts `me` follows (accepted), for a user stream to decide without a query."""
    if me is None:
        return frozenset()
    return frozenset(await db.scalars(_followed(me)))


def home_condition(me: Actor) -> ColumnElement[bool]:
    """fedsph/api/timelines.py `home`'s rule for a post (boosts apart): the account's own, the
    direct ones addressing it, and those of accounts it follows that it may see."""
    return ((Object.actor_id == me.id) | addressed_to(me)
            | (Object.actor_id.in_(_followed(me)) & direct_shown_to(me)))


def public_wants(row: Row, stream: Stream) -> bool:
    """A public or tag stream's rule, from the event row alone: a public post, shown."""
    if row.kind not in POST_KINDS or row.visibility != "public" or not row.shown:
        return False
    if stream.tag is not None and f" {stream.tag.lower()} " not in (row.tags or ""):
        return False
    if stream.name.endswith(":local"):
        return bool(row.local)
    if stream.name.endswith(":remote"):
        return not row.local
    return True


async def _home_wants(db: AsyncSession, row: Row, me: Actor, followed: frozenset[int]) -> bool:
    if not row.shown:
        return False  # hidden or held: not on any timeline, so not its edit or delete either
    if row.actor_id == me.id:
        return True
    if row.visibility == DIRECT:  # who it addresses is in the database
        found = await db.scalar(select(Object.id).where(Object.id == row.ref_id,
                                                        home_condition(me)))
        return found is not None
    if row.actor_id not in followed:
        return False
    if row.visibility == "followers" and row.kind != "delete":
        # The followed set may be HEARTBEAT_SECONDS old: one who just stopped following (or
        # was removed) gets no followers-only post. One query, for such posts only.
        return await db.scalar(_followed(me).where(Follow.followed_id == row.actor_id)
                               .limit(1)) is not None
    return True


async def _reblog_matches(db: AsyncSession, row: Row, me: Actor,
                          followed: frozenset[int]) -> Object | None:
    """A boost by the account or one it follows, of a public or unlisted post still shown, by
    someone else: a post by the account or one it follows is in home as itself already, so its
    boost is not sent (the home timeline's rule, fedsph/api/timelines.py)."""
    if row.actor_id != me.id and row.actor_id not in followed:
        return None
    return await db.scalar(select(Object).join(Reaction, Reaction.object_uri == Object.uri).where(
        # Its type and booster too: on SQLite a reaction id is reused after a delete, and
        # another account's Like must not be rendered as this boost.
        Reaction.id == row.ref_id, Reaction.type == "Announce", Reaction.actor_id == row.actor_id,
        Object.visibility.in_(VISIBLE_TO_ALL), not_withheld(),
        Object.actor_id.not_in([me.id, *followed])))


async def matching(db: AsyncSession, row: Row, streams: list[Stream], me: Actor | None,
                   followed: frozenset[int]) -> tuple[list[Stream], Object | None]:
    """The streams of one connection that `row` goes to, and for a boost the post boosted."""
    found, boosted = [], None
    for stream in list(streams):  # a subscribe or unsubscribe may change it at an await
        if stream.name in PUBLIC_STREAMS or stream.name in TAG_STREAMS:
            if public_wants(row, stream):
                found.append(stream)
        elif row.kind == "notification":
            if me is not None and row.actor_id == me.id:
                found.append(stream)
        elif stream.name != "user" or me is None:
            continue
        elif row.kind == "unreblog":  # where its boost went (its post shown to all)
            if row.shown and row.visibility in VISIBLE_TO_ALL and (
                    row.actor_id == me.id or row.actor_id in followed):
                found.append(stream)
        elif row.kind == "reblog":
            boosted = await _reblog_matches(db, row, me, followed)
            if boosted is not None:
                found.append(stream)
        elif row.kind in POST_KINDS and await _home_wants(db, row, me, followed):
            found.append(stream)
    return found, boosted


async def payload(request: web.Request, db: AsyncSession, row: Row, me: Actor | None,
                  boosted: Object | None = None) -> str | None:
    """The event's `payload`: an entity as a JSON string, or a deleted status's id."""
    if row.kind in ("delete", "unreblog"):
        return str(row.ref_id)
    if row.kind == "notification":
        notification = await db.get(Notification, row.ref_id)
        # The recipient too: on SQLite a notification id is reused after a hard delete, and
        # another account's notification must not reach this one's stream.
        if notification is None or notification.dismissed_at is not None \
                or notification.recipient_id != row.actor_id:
            return None
        sender = await db.get(Actor, notification.from_actor_id)
        if sender is None:
            return None
        entity = await notification_entity(request, db, notification, sender, me)
    elif row.kind == "reblog":
        reaction = await db.get(Reaction, row.ref_id)
        booster = await db.get(Actor, row.actor_id)
        if boosted is None or reaction is None or booster is None \
                or reaction.type != "Announce" or reaction.actor_id != row.actor_id:
            return None
        entity = await reblog_entity(request, db, await status_entity(request, db, boosted, me),
                                     booster, reaction)
    else:
        obj = await db.get(Object, row.ref_id)
        if obj is None or obj.deleted_at is not None or obj.hidden or not obj.approved:
            return None  # withheld since the event
        # The streams were chosen by the row's author and visibility: a post narrowed since
        # (a received Update may narrow it) or another post under a reused id (SQLite reuses
        # the largest id after a hard delete) is not what they were chosen for.
        if obj.actor_id != row.actor_id or obj.visibility != row.visibility:
            return None
        entity = await status_entity(request, db, obj, me)
    return orjson.dumps(entity).decode()
