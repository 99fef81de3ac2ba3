"""Fixtures that run a test once on SQLite and once on PostgreSQL, and helpers for queue rows.

`database_url` is a plain (synchronous) fixture on purpose: it asks for the asynchronous
`pg_database_url` through `request.getfixturevalue`, which pytest-asyncio can only run while no
event loop is running, i.e. not from inside another async fixture. The PostgreSQL cluster is only
started when a postgres case actually runs, so `-k sqlite` works without the server binaries.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from fedsph.federation.actors import parse_actor_document, store_remote_actor
from fedsph.models import Actor, Delivery, Follow, InboxItem, utcnow
from tests.fakepeer import PeerActor
from tests.support.nodes import Node, make_settings, start_node

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """An empty database: an SQLite file in tmp_path, or a fresh database on the test cluster."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'queue.sqlite3'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
async def db_node(tmp_path, database_url):
    """A migrated node (no background worker) on each database in turn."""
    running = await start_node(make_settings(tmp_path, database_url=database_url))
    yield running
    await running.runner.cleanup()


@pytest.fixture
async def pg_node(tmp_path, pg_database_url):
    """A migrated node on PostgreSQL only, for behaviour SQLite cannot show (row locks)."""
    running = await start_node(make_settings(tmp_path, database_url=pg_database_url))
    yield running
    await running.runner.cleanup()


# -- helpers shared by the queue and delivery tests --------------------------------------------


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
