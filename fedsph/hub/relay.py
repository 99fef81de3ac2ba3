"""Relay (FEP-ae0c) on a hub node.

A server subscribes by sending `Follow{object: as:Public}` from its instance actor (what
Mastodon does when an admin adds a relay) to the hub's inbox or the shared inbox: it becomes a
Follow row follower=that actor, followed=the hub actor, relay=True, and gets an Accept. The hub
then forwards its members' public activities to every subscriber as they were received (the
original bytes, so the author's integrity proof still verifies), HTTP-signed by the hub actor.
`Undo{Follow}` unsubscribes (fedsph/handlers/undo.py finds the row by the Follow's id).

A LitePub relay follows the hub actor itself: it is an ordinary follower and gets the hub's
Announces (FEP-1b12), not the forwarded originals.
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import urlsplit

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.activitystreams import PUBLIC, build_activity, get_id, get_type, is_public
from fedsph.delivery import enqueue_deliveries
from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.hub.membership import local_hub
from fedsph.models import Activity, Actor, Follow
from fedsph.outbox import record_activity

log = logging.getLogger("fedsph.relay")


async def relay_subscribers(db: AsyncSession, hub: Actor) -> list[Actor]:
    return list(await db.scalars(select(Actor).join(Follow, Follow.follower_id == Actor.id).where(
        Follow.followed_id == hub.id, Follow.relay.is_(True), Follow.state == "accepted")))


async def subscribe(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """`Follow{as:Public}` from `actor` (a server's instance actor): subscribe it, Accept."""
    hub = await local_hub(ctx.db)
    if hub is None:
        raise Ignored("Follow of as:Public, but this node is not a hub (no relay here)")
    relation = await ctx.db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == hub.id))
    if relation is None:
        relation = Follow(follower_id=actor.id, followed_id=hub.id)
        ctx.db.add(relation)
    relation.state, relation.relay, relation.activity_uri = "accepted", True, activity["id"]
    await ctx.db.flush()
    # The Accept names the Follow as it was (its object is as:Public): Mastodon matches its
    # relay by the Follow's id.
    original = {"id": activity["id"], "type": "Follow", "actor": actor.uri, "object": PUBLIC}
    document = build_activity("Accept", ctx.urls.new_activity(), hub.uri, original, to=[actor.uri])
    accepted = await record_activity(ctx.db, hub, document, activity["id"])
    await enqueue_deliveries(ctx.db, accepted, [actor])
    return "done"


async def forward_to_relays(db: AsyncSession, hub: Actor, body: bytes) -> None:
    """Queue ``body`` (a member's original activity, as received) to every relay subscriber of
    ``hub``, HTTP-signed by the hub actor. Runs in the caller's transaction; the worker delivers.

    Only public activities that can vouch for themselves (an integrity proof, or Mastodon's LD
    signature) are worth forwarding: Mastodon drops relayed content without one.
    """
    subscribers = await relay_subscribers(db, hub)
    if not subscribers:
        return
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if not isinstance(document, dict) or not is_public(document):
        return
    if "proof" not in document and "signature" not in document:
        log.info("not relaying %s: it carries no integrity proof", document.get("id"))
        return
    # The author's own server has it already.
    origin = urlsplit(get_id(document.get("actor")) or "").netloc
    subscribers = [s for s in subscribers if s.domain != origin]
    # A row of its own (the original id may be a row of ours already, when the member is local),
    # keyed by the activity's id: FEP-ae0c says a relay forwards an activity once, and the same
    # activity may reach the hub twice with other bytes (a redelivery serialised anew).
    key = document["id"].encode() if isinstance(document.get("id"), str) else body
    uri = "urn:fedsph:relayed:" + hashlib.sha256(key).hexdigest()
    if not subscribers or await db.scalar(select(Activity.id).where(Activity.uri == uri)):
        return
    activity = Activity(uri=uri, type=(get_type(document) or "Create")[:32], actor_id=hub.id,
                        object_uri=None, public=True, body=body)
    db.add(activity)
    await db.flush()
    await enqueue_deliveries(db, activity, subscribers)
