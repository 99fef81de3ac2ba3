"""Migrations and queue claiming, on SQLite and on PostgreSQL.

Claiming is what lets several workers (and several machines, on PostgreSQL) share one queue, so
these tests check what a crash or a second worker would actually see: each due row is handed out
once, a lease keeps it from a second worker, and an expired lease gives it back.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from fedsph.db import (
    NotMigrated,
    current_revision,
    ensure_migrated,
    head_revision,
    make_engine,
    migrate,
)
from fedsph.federation.emit import record_activity
from fedsph.federation.queue import claim
from fedsph.models import Base, Delivery, HostState, InboxItem, utcnow
from tests.support.db import expire_leases
from tests.support.nodes import make_settings

# -- migrations --------------------------------------------------------------------------------


async def test_migrate_brings_an_empty_database_to_head(tmp_path, database_url):
    engine = make_engine(make_settings(tmp_path, database_url=database_url))
    try:
        with pytest.raises(NotMigrated, match="fedsph migrate"):
            await ensure_migrated(engine)
        await asyncio.to_thread(migrate, database_url)
        await ensure_migrated(engine)
        assert await current_revision(engine) == head_revision()
        # Running it again (every deploy does) changes nothing and does not fail.
        await asyncio.to_thread(migrate, database_url)
        assert await current_revision(engine) == head_revision()
        # The migrations build exactly the schema the models describe.
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"include_object": _modelled}),
                    Base.metadata))
        assert differences == []
        # Alembic's comparison leaves out an index's condition, and the models name it for
        # SQLite only (fedsph/models/mail.py): each engine's partial indexes must be partial.
        async with engine.connect() as conn:
            for name in PARTIAL_INDEXES:
                if engine.dialect.name == "postgresql":
                    made = await conn.scalar(text(
                        "SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name})
                else:
                    made = await conn.scalar(text(
                        "SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name})
                assert made and " WHERE " in made.upper(), (name, made)
    finally:
        await engine.dispose()


def _modelled(obj, name, type_, reflected, compare_to) -> bool:
    """What the models describe: not the search structures 0011 makes in raw SQL (SQLite's
    FTS5 table and its shadow tables, PostgreSQL's trigram GIN index)."""
    return not (name or "").startswith("hub_directory_fts") and name != "ix_hub_directory_search"


PARTIAL_INDEXES = ("ux_outgoing_mails_notice", "ux_outgoing_mails_link", "ix_objects_held",
                   "ix_follows_pending")


# -- helpers -----------------------------------------------------------------------------------


async def add_inbox_items(node, count: int, due_in: timedelta = timedelta(0),
                          sender: str | None = None) -> list[int]:
    """`count` pending inbox rows that become due `due_in` from now, each of its own sender
    unless `sender` is given (the items of one sender are claimed in order: test_worker_order.py)."""
    due = utcnow() + due_in
    async with node.writers() as db, db.begin():
        items = [InboxItem(activity_uri=f"https://peer.example/activities/{uuid.uuid4().hex}",
                           type="Like", actor_uri=sender or f"https://peer.example/users/{uuid.uuid4().hex}",
                           body=b"{}", next_attempt_at=due)
                 for n in range(count)]
        db.add_all(items)
        await db.flush()
        return [item.id for item in items]


async def claim_in_own_transaction(node, model, limit: int) -> list[int]:
    async with node.writers() as db, db.begin():
        return await claim(db, model, limit)


async def add_deliveries(node, hosts: list[str]) -> dict[str, int]:
    """One pending delivery of one activity to an inbox on each host; returns host -> row id."""
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        document = {"id": node.urls.new_activity(), "type": "Create", "actor": project.uri}
        activity = await record_activity(db, project, document, None)
        rows = {host: Delivery(activity_id=activity.id, inbox=f"http://{host}/inbox", host=host)
                for host in hosts}
        db.add_all(rows.values())
        await db.flush()
        return {host: row.id for host, row in rows.items()}


# -- claiming ----------------------------------------------------------------------------------


async def test_due_rows_are_claimed_once_and_future_rows_not_at_all(db_node):
    due = await add_inbox_items(db_node, 3)
    await add_inbox_items(db_node, 2, due_in=timedelta(hours=1))

    first = await claim_in_own_transaction(db_node, InboxItem, 10)
    again = await claim_in_own_transaction(db_node, InboxItem, 10)

    assert sorted(first) == due
    assert again == []  # the lease keeps them from a second worker


async def test_claim_respects_the_batch_limit_oldest_first(db_node):
    ids = await add_inbox_items(db_node, 5)
    # RETURNING gives no order, so compare the sets each batch holds.
    assert sorted(await claim_in_own_transaction(db_node, InboxItem, 2)) == ids[:2]
    assert sorted(await claim_in_own_transaction(db_node, InboxItem, 2)) == ids[2:4]


async def test_rows_of_a_crashed_worker_are_claimed_again_after_the_lease(db_node):
    ids = await add_inbox_items(db_node, 2)
    assert sorted(await claim_in_own_transaction(db_node, InboxItem, 10)) == ids
    # The worker dies here without recording anything; its lease runs out.
    await expire_leases(db_node, InboxItem)
    assert sorted(await claim_in_own_transaction(db_node, InboxItem, 10)) == ids


async def test_concurrent_claimers_never_share_a_row(db_node):
    ids = await add_inbox_items(db_node, 24)
    batches = await asyncio.gather(
        *(claim_in_own_transaction(db_node, InboxItem, 5) for _ in range(6)))
    claimed = [row_id for batch in batches for row_id in batch]
    assert len(claimed) == len(set(claimed)), f"a row was handed out twice: {batches}"
    assert sorted(claimed) == ids
    assert all(len(batch) <= 5 for batch in batches)


@pytest.mark.postgres
async def test_postgres_claimer_skips_rows_locked_by_an_open_transaction(pg_node):
    # Deliveries: inbox claims instead wait for each other (an advisory lock keeps the items
    # of one sender in order across workers, test_worker_order.py).
    rows = await add_deliveries(pg_node, [f"h{n}.example" for n in range(6)])
    async with pg_node.writers() as first_db, first_db.begin():
        first = await claim(first_db, Delivery, 4)
        # The first worker has not committed: without SKIP LOCKED the second would wait for it.
        # The timeout only turns such a hang into a failure; it is not a speed assertion.
        second = await asyncio.wait_for(claim_in_own_transaction(pg_node, Delivery, 10), 30)
    assert len(first) == 4
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == sorted(rows.values())


async def test_deliveries_to_a_paused_host_are_not_claimed(db_node):
    rows = await add_deliveries(db_node, ["paused.example", "resting.example", "up.example"])
    async with db_node.writers() as db, db.begin():
        db.add(HostState(host="paused.example", consecutive_failures=7,
                         paused_until=utcnow() + timedelta(hours=1)))
        # A pause that has run out no longer holds anything back.
        db.add(HostState(host="resting.example", consecutive_failures=5,
                         paused_until=utcnow() - timedelta(seconds=1)))

    claimed = await claim_in_own_transaction(db_node, Delivery, 10)

    assert sorted(claimed) == sorted([rows["resting.example"], rows["up.example"]])
