"""The one way to send: an activity is recorded once, and one delivery row is queued per inbox.

Every feature sends through here (`send`, `send_to_followers`, or `forward` for another actor's
activity as received); no other module makes `Activity` or `Delivery` rows for
outgoing activities. The worker sends the rows later (fedsph/worker_delivery.py), with retries.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.errors import N_, Gone
from fedsph.federation import blocks, proofs
from fedsph.models import Activity, Actor, Delivery, Follow, InboxItem


def signed_body(actor: Actor, document: dict) -> dict:
    """`document` as we send it: with a proof by `actor` when it is a public
    Create/Update/Delete/Announce (what relays may pass on), unchanged otherwise.

    The key is only read: every local actor is created with one (federation/actors.py), and
    migration 0010 gave one to those made before proofs.
    """
    if not actor.local or not proofs.should_sign(document) or "proof" in document:
        return document
    if not actor.proof_key_pem:
        raise RuntimeError(f"local actor {actor.uri} has no proof key: run `fedsph migrate`")
    return proofs.sign_activity(document, actor.uri, actor.proof_key_pem)


async def record_activity(db: AsyncSession, actor: Actor, document: dict, object_uri: str | None,
                          public: bool = False) -> Activity:
    """Store an activity with its body serialised once: these bytes are signed and sent.

    A public Create/Update/Delete/Announce gets its integrity proof here (FEP-8b32), once.
    A deleted actor (projects/deletion.py) sends nothing more but its own Delete: Gone (410).
    """
    await refuse_tombstone(db, actor, document)
    document = signed_body(actor, document)
    activity = Activity(uri=document["id"], type=document["type"], actor_id=actor.id,
                        object_uri=object_uri, public=public, body=orjson.dumps(document))
    db.add(activity)
    await db.flush()
    return activity


async def refuse_tombstone(db: AsyncSession, actor: Actor, document: dict) -> None:
    """Gone if `actor` was deleted, read from its row now, not from the caller's copy: a form
    loads the actor, then writes, and the deletion may commit in between. FOR KEY SHARE (on
    PostgreSQL; SQLite has one writer) waits for a deletion holding the row (it locks it first),
    and holds a deletion off until this transaction ends: its post is then purged with the rest.
    A caller that locked a row pointing at the actor before this (an unfollow, an edit) does not
    simply wait: the deletion wants that row next, PostgreSQL ends one of the two (40P01) and a
    deletion so ended is run again (projects.deletion.retried).
    """
    if not actor.local:
        return
    deleted = await db.scalar(select(Actor.deleted_at).where(Actor.id == actor.id)
                              .with_for_update(read=True, key_share=True))  # KEY SHARE
    if deleted is not None and not (document.get("type") == "Delete"
                                    and document.get("object") == actor.uri):
        raise Gone(N_("This account was deleted."))


def inboxes_for(recipients: list[Actor]) -> tuple[set[str], list[Actor]]:
    """Remote inboxes (shared inbox preferred, de-duplicated) and local recipients."""
    remote: set[str] = set()
    local: list[Actor] = []
    for actor in recipients:
        if actor.local:
            local.append(actor)
        elif actor.delivery_inbox:
            remote.add(actor.delivery_inbox)
    return remote, local


async def follower_actors(db: AsyncSession, actor: Actor) -> list[Actor]:
    rows = await db.scalars(
        select(Actor).join(Follow, Follow.follower_id == Actor.id)
        .where(Follow.followed_id == actor.id, Follow.state == "accepted",
               # Relay subscribers get members' activities as they are (fedsph/hub/relay.py).
               Follow.relay.is_(False)))
    return list(rows)


async def enqueue_deliveries(db: AsyncSession, activity: Activity, recipients: list[Actor]) -> int:
    """One delivery row per remote inbox; local recipients get an inbox row, no HTTP. Blocked
    accounts and servers get nothing."""
    remote, local = inboxes_for(await blocks.unblocked(db, recipients))
    for inbox in sorted(remote):
        db.add(Delivery(activity_id=activity.id, inbox=inbox, host=urlsplit(inbox).netloc))
    if local:
        exists = await db.scalar(select(InboxItem.id).where(InboxItem.activity_uri == activity.uri))
        if exists is None:
            sender = await db.get(Actor, activity.actor_id)
            db.add(InboxItem(activity_uri=activity.uri, type=activity.type,
                             actor_uri=sender.uri, body=activity.body))
    return len(remote)


async def send(db: AsyncSession, actor: Actor, document: dict, recipients: list[Actor],
               object_uri: str | None = None, public: bool = False) -> Activity:
    """Record `document` as `actor`'s activity and queue it to `recipients`."""
    activity, _ = await _record_and_queue(db, actor, document, recipients, object_uri, public)
    return activity


async def send_to_followers(db: AsyncSession, actor: Actor, document: dict,
                            object_uri: str | None = None, public: bool = False) -> int:
    """`send` to `actor`'s accepted followers (relay subscribers left out); returns how many
    remote inboxes were queued."""
    recipients = await follower_actors(db, actor)
    _, queued = await _record_and_queue(db, actor, document, recipients, object_uri, public)
    return queued


async def _record_and_queue(db: AsyncSession, actor: Actor, document: dict,
                            recipients: list[Actor], object_uri: str | None,
                            public: bool) -> tuple[Activity, int]:
    activity = await record_activity(db, actor, document, object_uri, public)
    return activity, await enqueue_deliveries(db, activity, recipients)


async def forward(db: AsyncSession, actor: Actor, body: bytes, uri: str, activity_type: str,
                  recipients: list[Actor]) -> Activity:
    """Queue another actor's activity to `recipients` as it was received: `body` unchanged, so its
    author's integrity proof still verifies, HTTP-signed by `actor` when sent (a hub forwarding
    its members' activities to relay subscribers, fedsph/hub/relay.py). `uri` keys the row."""
    activity = Activity(uri=uri, type=activity_type[:32], actor_id=actor.id, object_uri=None,
                        public=True, body=body)
    db.add(activity)
    await db.flush()
    await enqueue_deliveries(db, activity, recipients)
    return activity
