"""What the worker fetches for an inbox item before its handler's transaction begins: the
activity's object from its own server, a boosted post and its author, a Move's target, an actor
that updated itself, a new member's outbox. No transaction is held open during these requests;
every URI fetched came in the activity, so each is asked of `may_fetch` (this node's own URIs
and blocked servers are never fetched). Failures that a retry may mend propagate (the item is
retried); gone or refused ones leave the activity as it came."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.core.urls import URLs
from fedsph.errors import BlockedAddress, FetchError
from fedsph.federation.activitystreams import get_id, get_type, same_origin
from fedsph.federation.actors import embedded_update_is_fresh, resolve_actor
from fedsph.federation.blocks import fetchable
from fedsph.federation.remote import Remote
from fedsph.federation.remote_objects import (
    UnboundObject,
    author_of,
    fetch_object,
    is_followed_locally,
)
from fedsph.hub.backfill import BACKFILL, fetch_backfill
from fedsph.models import Actor, Object

# Activities whose object may arrive as a bare id and must then be fetched from its server.
DEREFERENCED_OBJECTS = {"Create", "Update"}


def reads_the_sender(activity: dict) -> bool:
    """Whether Prefetch.what_the_handler_needs reads the sender's row (an Update of itself, the
    booster of an Announce): the worker stores a sender fetched anew before it, not after."""
    return get_type(activity) in ("Update", "Announce")


class Prefetch:
    def __init__(self, readers: async_sessionmaker[AsyncSession],
                 writers: async_sessionmaker[AsyncSession], remote: Remote, urls: URLs):
        self.readers, self.writers, self.remote, self.urls = readers, writers, remote, urls

    async def what_the_handler_needs(self, activity: dict, actor_id: int | None,
                                     signed_by_actor: bool) -> None:
        """The activity's object dereferenced (in place), and what its handler reads; every
        URI fetched here came in the activity, so each is asked of `_may_fetch` first.
        `actor_id`: the sender's row, None when not stored yet (never so when reads_the_sender)."""
        obj, actor_uri = activity.get("object"), get_id(activity.get("actor"))
        if get_type(activity) == "Update" and get_id(obj) == actor_uri:
            async with self.readers() as db:  # maybe old unless certainly new (fedsph.federation.actors)
                fresh = embedded_update_is_fresh(activity, await db.get(Actor, actor_id),
                                                 signed_by_actor)
            if not (isinstance(obj, dict) and fresh):
                await self.refresh_actor(actor_uri)  # its own document decides
        elif (get_type(activity) in DEREFERENCED_OBJECTS and isinstance(obj, str)
                and same_origin(obj, actor_uri) and await self.may_fetch(obj)):
            # Only the object's own server is asked, as Mastodon does; a foreign one is refused
            # later by the handler's origin check without a request.
            try:
                activity["object"] = await fetch_object(self.remote, obj)
            except UnboundObject:
                pass  # left a bare id: the handler finds no object it could believe
        if get_type(activity) == "Move" and get_id(activity.get("target")):
            await self.refresh_actor(get_id(activity.get("target")))
        if get_type(activity) == "Announce":
            await self.boosted_post(activity, actor_id)
        if get_type(activity) == BACKFILL:
            activity["items"] = []  # nothing to keep from a blocked project's outbox
            if await self.may_fetch(get_id(activity.get("object"))):
                await fetch_backfill(self.remote, activity)

    async def may_fetch(self, *uris: str | None) -> bool:
        """True when every URI is another server's and fetchable (fedsph.federation.blocks.fetchable)."""
        async with self.readers() as db:
            for uri in uris:
                if uri is None or self.urls.is_local(uri) or not await fetchable(db, uri):
                    return False
        return True

    async def boosted_post(self, activity: dict, actor_id: int) -> None:
        """A followed account's boost of a post that is not ours: the post, fetched from its own
        server, and its author's actor row, so the handler can keep it for home timelines.

        What the booster embeds is never trusted: the object is first cut down to its id, and
        only a copy fetched here is put back. So an Announce whose object reaches the handler
        as a document carries a post its own server gave us. Boosts of our posts, of posts we
        keep already, by accounts nobody here follows, and of blocked posts or authors (as the
        booster says, then as the post's server says) need nothing fetched. Lemmy-style groups
        (FEP-1b12) announce the Create activity: its object is the post."""
        boosted = activity.get("object")
        if isinstance(boosted, dict) and get_type(boosted) in ("Create", "Update"):
            boosted = boosted.get("object")
        uri = get_id(boosted)
        if not uri or self.urls.is_local(uri):
            return
        activity["object"] = uri
        claimed = [get_id(boosted.get("attributedTo")) or uri] if isinstance(boosted, dict) else []
        if not (await self._boost_needs_fetching(uri, actor_id)
                and await self.may_fetch(uri, *claimed)):
            return
        try:
            document = await fetch_object(self.remote, uri, refetch=False)
            author = author_of(document)
            if get_id(document) != uri or author is None or not await self.may_fetch(author):
                return  # the handler ignores the boost: no post of a known author to keep
            await resolve_actor(self.writers, self.remote, author, readers=self.readers)
        except FetchError as exc:
            if exc.status in (404, 410) or isinstance(exc, BlockedAddress | UnboundObject):
                return  # gone, or not somewhere we may ask: the boost is ignored
            raise
        activity["object"] = document

    async def _boost_needs_fetching(self, uri: str, actor_id: int) -> bool:
        """False when nobody here follows the booster, or we keep the post (or deleted it)."""
        async with self.readers() as db:
            booster = await db.get(Actor, actor_id)
            if booster is None or not await is_followed_locally(db, booster):
                return False
            return await db.scalar(select(Object.id).where(Object.uri == uri)) is None

    async def refresh_actor(self, uri: str) -> None:
        """An actor fetched afresh from its own id (a Move's target, fedsph/handlers/moves.py,
        or the sender of an Update of itself). Gone or blocked: we keep the copy we hold, if
        any (the handler ignores a Move to none); other failures retry the item."""
        if not await self.may_fetch(uri):
            return
        try:
            await resolve_actor(self.writers, self.remote, uri, refresh=True, readers=self.readers)
        except FetchError as exc:
            if exc.status not in (404, 410) and not isinstance(exc, BlockedAddress):
                raise
