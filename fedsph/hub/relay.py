"""Relay (FEP-ae0c) on a hub node.

A server subscribes by sending `Follow{object: as:Public}` from its instance actor (what
Mastodon does when an admin adds a relay) to the hub's inbox or the shared inbox: it becomes a
Follow row follower=that actor, followed=the hub actor, relay=True, state pending, and waits for
a coordinator (`fedsph hub relay approve`) unless its server is on FEDSPH_RELAY_ALLOW; past
FEDSPH_RELAY_MAX_SUBSCRIBERS approved ones, or RELAY_MAX_PENDING waiting ones, or when its
server (by host) has subscribed already, it gets a Reject and no row. Approved, it gets an
Accept. The hub then forwards its members' public activities to every subscriber as they were
received (the original bytes, so the author's integrity proof still verifies), HTTP-signed by
the hub actor.
`Undo{Follow}` unsubscribes (fedsph/handlers/undo.py finds the row by the Follow's id).

A LitePub relay follows the hub actor itself: it is an ordinary follower and gets the hub's
Announces (FEP-1b12), not the forwarded originals.
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import urlsplit

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.config import Settings
from fedsph.core.urls import URLs
from fedsph.db import one_at_a_time
from fedsph.errors import UserError
from fedsph.federation import emit
from fedsph.federation.activitystreams import PUBLIC, build_activity, get_id, get_type, is_public
from fedsph.federation.blocks import host_of
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.hub.membership import local_hub
from fedsph.models import Activity, Actor, Follow

log = logging.getLogger("fedsph.relay")

# Subscriptions waiting for a coordinator; more are refused until some are decided.
RELAY_MAX_PENDING = 20


async def relay_subscribers(db: AsyncSession, hub: Actor) -> list[Actor]:
    """Approved subscribers only: a pending one is sent nothing."""
    return list(await db.scalars(select(Actor).join(Follow, Follow.follower_id == Actor.id).where(
        Follow.followed_id == hub.id, Follow.relay.is_(True), Follow.state == "accepted")))


async def relay_subscriptions(db: AsyncSession, hub: Actor) -> list[tuple[Follow, Actor]]:
    """Every relay subscription of `hub`, pending first (for coordinators)."""
    rows = await db.execute(select(Follow, Actor).join(Actor, Actor.id == Follow.follower_id)
                            .where(Follow.followed_id == hub.id, Follow.relay.is_(True))
                            .order_by(Follow.state.desc(), Follow.id))
    return [(follow, actor) for follow, actor in rows]


def is_allowed(settings: Settings, actor: Actor) -> bool:
    """The subscriber's server is on FEDSPH_RELAY_ALLOW (host, or host:port)."""
    parts = urlsplit(actor.uri)
    allowed = settings.relay_allowed_domains
    return bool(allowed) and ((parts.hostname or "") in allowed or parts.netloc.lower() in allowed)


async def subscribe(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """`Follow{as:Public}` from `actor` (a server's instance actor): a pending subscription,
    accepted at once if its server is allow-listed, rejected past FEDSPH_RELAY_MAX_SUBSCRIBERS.

    A relay passes on whatever it is sent to every subscriber, so who may subscribe is the
    coordinators' choice (`fedsph hub relay approve`), not any stranger's.
    """
    hub = await local_hub(ctx.db)
    if hub is None:
        raise Ignored("Follow of as:Public, but this node is not a hub (no relay here)")
    relation = await ctx.db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == hub.id))
    if relation is None or not relation.relay:
        refused = await subscription_refusal(ctx.db, ctx.settings, hub, actor)
        if refused:
            log.warning("relay subscription from %s refused: %s", actor.uri, refused)
            await answer_subscription(ctx.db, ctx.urls, hub, actor, activity["id"], accept=False)
            return "done"
        if relation is None:
            relation = Follow(follower_id=actor.id, followed_id=hub.id)
            ctx.db.add(relation)
        # An ordinary follower of the hub asking to subscribe waits like anyone else.
        relation.state, relation.relay = "pending", True
    relation.activity_uri = activity["id"]
    if relation.state == "accepted" or is_allowed(ctx.settings, actor):
        # Accept again when accepted already: the subscriber may have lost our first Accept.
        relation.state = "accepted"
        await ctx.db.flush()
        await answer_subscription(ctx.db, ctx.urls, hub, actor, activity["id"], accept=True)
    else:
        await ctx.db.flush()
        log.info("relay subscription from %s waits for a coordinator", actor.uri)
    return "done"


async def subscription_refusal(db: AsyncSession, settings: Settings, hub: Actor,
                               actor: Actor) -> str | None:
    """Why a new relay subscription is refused at once, or None.

    A server subscribes once, with its instance actor: servers are compared by normalised host
    (`EVIL.example`, `evil.example:443` and `x@evil.example` are one server), so one stranger
    cannot take every place by sending Follows from many actors or spellings. Pending requests
    have a small cap of their own, so strangers cannot fill the approved places either.
    """
    host = host_of(actor.uri)
    await one_at_a_time(db, "relay subscriptions")  # the caps below count every subscriber
    rows = (await db.execute(select(Actor.uri, Follow.state)
                             .join(Follow, Follow.follower_id == Actor.id)
                             .where(Follow.followed_id == hub.id, Follow.relay.is_(True)))).all()
    if host is None:
        return "the subscriber's host name cannot be read"
    if any(host_of(uri) == host for uri, _ in rows):
        return f"{host} has subscribed (or asked to) with another actor"
    accepted = sum(state == "accepted" for _, state in rows)
    if accepted >= settings.relay_max_subscribers:
        return f"{accepted} subscribers already (FEDSPH_RELAY_MAX_SUBSCRIBERS)"
    if len(rows) - accepted >= RELAY_MAX_PENDING and not is_allowed(settings, actor):
        return f"{len(rows) - accepted} subscriptions wait for a coordinator already"
    return None


async def answer_subscription(db: AsyncSession, urls: URLs, hub: Actor, subscriber: Actor,
                              follow_id: str | None, accept: bool) -> None:
    """Send Accept or Reject of a relay Follow; a Reject also ends the subscription."""
    if not accept:
        await db.execute(delete(Follow).where(Follow.follower_id == subscriber.id,
                                              Follow.followed_id == hub.id,
                                              Follow.relay.is_(True)))
    # The answer names the Follow as it was (its object is as:Public): Mastodon matches its
    # relay by the Follow's id.
    original = {"id": follow_id, "type": "Follow", "actor": subscriber.uri, "object": PUBLIC}
    document = build_activity("Accept" if accept else "Reject", urls.new_activity(), hub.uri,
                              original, to=[subscriber.uri])
    await emit.send(db, hub, document, [subscriber], follow_id)


async def decide_subscription(db: AsyncSession, urls: URLs, hub: Actor, subscriber: Actor,
                              accept: bool) -> Follow:
    """A coordinator approves (Accept) or refuses/ends (Reject) a relay subscription."""
    relation = await db.scalar(select(Follow).where(
        Follow.follower_id == subscriber.id, Follow.followed_id == hub.id,
        Follow.relay.is_(True)))
    if relation is None:
        raise UserError(f"{subscriber.uri} has not asked to subscribe to the relay")
    if accept:
        relation.state = "accepted"
    await answer_subscription(db, urls, hub, subscriber, relation.activity_uri, accept)
    return relation


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
    await emit.forward(db, hub, body, uri, get_type(document) or "Create", subscribers)
