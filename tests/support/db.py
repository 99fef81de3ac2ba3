"""Database rows as a test sets them up or reads them back: remote actors, follows, the
delivery and inbox queues (due now, leases run out)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
from sqlalchemy import select, text, update

from fedsph.federation.actors import parse_actor_document, store_remote_actor
from fedsph.models import Actor, Delivery, Follow, InboxItem, utcnow
from tests.fakepeer import PeerActor
from tests.support import testdb
from tests.support.nodes import Node


async def store_remote(node: Node, document: dict) -> Actor:
    """Cache a remote actor document as we would after fetching it."""
    async with node.writers() as db, db.begin():
        return await store_remote_actor(db, parse_actor_document(document))


async def add_follow(node: Node, follower: Actor, followed: Actor) -> None:
    """An accepted follow, as if the Follow/Accept handshake had happened earlier."""
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=follower.id, followed_id=followed.id, state="accepted",
                      activity_uri=f"{follower.uri}/follows/{followed.id}"))


async def add_remote_follower(node: Node, project: Actor, remote: PeerActor | dict) -> Actor:
    """A remote actor (a fake peer's, or a bare document) that follows `project`."""
    document = remote if isinstance(remote, dict) else remote.document
    follower = await store_remote(node, document)
    await add_follow(node, follower, project)
    return follower


async def queue_signed_item(node: Node, sender: Actor, activity: dict) -> int:
    """An inbox item as the inbox stores one whose signature was `sender`'s; its id."""
    async with node.writers() as db, db.begin():
        item = InboxItem(activity_uri=activity["id"], type=activity["type"],
                         actor_uri=sender.uri, body=orjson.dumps(activity), signed_by_actor=True)
        db.add(item)
        await db.flush()
        return item.id


async def deliveries(node: Node) -> list[Delivery]:
    async with node.readers() as db:
        return list(await db.scalars(select(Delivery).order_by(Delivery.id)))


async def inbox_items(node: Node) -> list[InboxItem]:
    async with node.readers() as db:
        return list(await db.scalars(select(InboxItem).order_by(InboxItem.id)))


async def make_due(node: Node, model: type[Delivery | InboxItem]) -> None:
    """Pretend the retry delay has passed: every pending row is due now."""
    async with node.writers() as db, db.begin():
        await db.execute(update(model).where(model.status == "pending").values(
            next_attempt_at=utcnow() - timedelta(seconds=1)))


async def expire_leases(node: Node, model: type[Delivery | InboxItem]) -> None:
    """What a worker that crashed mid-batch leaves behind once its lease has run out."""
    async with node.writers() as db, db.begin():
        await db.execute(update(model).where(model.locked_until.is_not(None)).values(
            locked_until=utcnow() - timedelta(seconds=1)))


async def a_lock_is_awaited(node: Node, within: float = 30) -> bool:
    """PostgreSQL only: whether a session of this test's database is seen waiting for a lock
    within `within` seconds. Race tests wait for this rather than sleep: on a loaded machine
    the other transaction may need seconds to get that far."""
    assert testdb.on_postgresql(), "pg_stat_activity is PostgreSQL's"
    deadline = asyncio.get_running_loop().time() + within
    while True:
        # A transaction of its own for each look: PostgreSQL shows pg_stat_activity as it was
        # at a transaction's first read of it, so one long transaction would never see a change.
        async with node.readers() as db:
            if await db.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()")):
                return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
