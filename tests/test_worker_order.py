"""The concurrent worker: independent inbox items are processed side by side (never more than
FEDSPH_WORKER_CONCURRENCY at once), the items of one sender one after another in arrival order,
also when several workers share the queue (claim_inbox_items), on SQLite and PostgreSQL. A
sender's chain stops at an item left for a retry, and never writes an item another claim took
from it (the lease is a fencing token).

Fetches are held by a fake peer (tests/support/slowpeer.py), so these tests see orders and
counts, never durations.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import orjson
from sqlalchemy import select, update

from fedsph.federation.queue import claim_inbox_items
from fedsph.models import Actor, Follow, InboxItem, Object, utcnow
from fedsph.web.keys import REMOTE
from fedsph.worker import Worker
from tests.support.db import expire_leases, inbox_items, make_due
from tests.support.nodes import PATIENT_RETRY_SECONDS
from tests.support.slowpeer import HoldingPeer

AS = "https://www.w3.org/ns/activitystreams"


class RecordingWorker(Worker):
    """A worker that writes down when it starts and ends each inbox item."""

    def __init__(self, node, **settings):
        super().__init__(dataclasses.replace(node.settings, **settings), node.writers,
                         node.app[REMOTE])
        self.events: list[tuple[str, int]] = []

    async def _process_item_once(self, item_id: int) -> None:
        self.events.append(("start", item_id))
        try:
            return await super()._process_item_once(item_id)
        finally:
            self.events.append(("end", item_id))

    def index(self, what: str, item_id: int) -> int:
        return self.events.index((what, item_id))


async def queue_items(node, activities: list[dict]) -> list[int]:
    """Inbox rows as the inbox stores them (signed by their actor), in this order."""
    async with node.writers() as db, db.begin():
        items = [InboxItem(activity_uri=a["id"], type=a["type"], actor_uri=a["actor"],
                           body=orjson.dumps(a), signed_by_actor=True) for a in activities]
        db.add_all(items)
        await db.flush()
        return [item.id for item in items]


def follow(peer, actor, target: str) -> dict:
    return {"@context": AS, "id": peer.new_id(), "type": "Follow", "actor": actor.uri,
            "object": target}


async def follower_uris(node) -> set[str]:
    async with node.readers() as db:
        return set(await db.scalars(select(Actor.uri).join(Follow, Follow.follower_id == Actor.id)))


async def start_peer(**holds) -> HoldingPeer:
    return await HoldingPeer(**holds).start()


async def test_one_senders_items_are_processed_in_order_while_others_overlap(db_node):
    peer = await start_peer()
    try:
        project = await db_node.create_actor("coop")
        ana, bob, carl = (peer.add_actor(name) for name in ("ana", "bob", "carl"))
        # Ana's document is slow to come: done side by side, her Undo would overtake her Follow.
        peer.delays["/users/ana"] = 0.5
        ana_follow = follow(peer, ana, project.uri)
        undo = {"@context": AS, "id": peer.new_id(), "type": "Undo", "actor": ana.uri,
                "object": ana_follow}
        ids = await queue_items(db_node, [ana_follow, undo, follow(peer, bob, project.uri),
                                          follow(peer, carl, project.uri)])
        worker = RecordingWorker(db_node, worker_concurrency=4)

        assert (await worker.run_once()).processed == 4

        ana_first, ana_undo, bob_follow, _ = ids
        assert worker.index("start", ana_undo) > worker.index("end", ana_first)
        # Bob's Follow did not wait for Ana's: it began while hers was still being fetched.
        assert worker.index("start", bob_follow) < worker.index("end", ana_first)
        assert await follower_uris(db_node) == {bob.uri, carl.uri}
    finally:
        await peer.stop()


async def test_no_more_items_at_once_than_the_concurrency_and_that_many_overlap(db_node):
    # Every fetch is held until four are waiting together: a worker that did fewer at once
    # would wait out the barrier's timeout (counted), one that did more would show in the max.
    peer = await start_peer(gather=4)
    try:
        project = await db_node.create_actor("coop")
        senders = [peer.add_actor(f"user{n}") for n in range(12)]
        await queue_items(db_node, [follow(peer, sender, project.uri) for sender in senders])
        worker = RecordingWorker(db_node, worker_concurrency=4)

        assert (await worker.run_once()).processed == 12

        assert peer.max_in_flight == 4
        assert peer.gather_timeouts == 0
        assert await follower_uris(db_node) == {sender.uri for sender in senders}
    finally:
        await peer.stop()


async def test_many_items_at_once_all_commit_without_database_is_locked(db_node, caplog):
    # On SQLite every handler transaction takes the one write lock: 32 items at once must
    # queue for it (Worker.writers), not fail with "database is locked".
    peer = await start_peer()
    try:
        project = await db_node.create_actor("coop")
        senders = [peer.add_actor(f"user{n}") for n in range(64)]
        await queue_items(db_node, [follow(peer, sender, project.uri) for sender in senders])
        worker = RecordingWorker(db_node, worker_concurrency=32)

        assert (await worker.run_once()).processed == 64

        async with db_node.readers() as db:
            statuses = list(await db.scalars(select(InboxItem.status)))
        assert statuses == ["done"] * 64
        assert await follower_uris(db_node) == {sender.uri for sender in senders}
        assert "locked" not in caplog.text
    finally:
        await peer.stop()


# -- the claim, as several workers see it ----------------------------------------------------


async def add_items(node, senders: list[str]) -> list[int]:
    async with node.writers() as db, db.begin():
        items = [InboxItem(activity_uri=f"https://peer.example/activities/{uuid.uuid4().hex}",
                           type="Like", actor_uri=sender, body=b"{}") for sender in senders]
        db.add_all(items)
        await db.flush()
        return [item.id for item in items]


async def claim_now(node, limit: int = 10) -> list[int]:
    async with node.writers() as db, db.begin():
        return sorted(await claim_inbox_items(db, limit))


async def finish(node, item_id: int, **values) -> None:
    values = values or {"status": "done", "locked_until": None, "finished_at": utcnow()}
    async with node.writers() as db, db.begin():
        await db.execute(update(InboxItem).where(InboxItem.id == item_id).values(**values))


async def test_a_senders_later_items_wait_while_an_earlier_one_is_in_hand(db_node):
    ana, bob = "https://a.example/users/ana", "https://b.example/users/bob"
    first, second, third, other = await add_items(db_node, [ana, ana, ana, bob])

    # A batch too small for all of them takes the oldest; a second worker then gets Bob's
    # item, but none of Ana's while her first is leased.
    assert await claim_now(db_node, limit=1) == [first]
    assert await claim_now(db_node) == [other]
    assert await claim_now(db_node) == []

    await finish(db_node, first)
    assert await claim_now(db_node) == [second, third]  # one batch: processed in id order


async def test_an_item_waiting_for_a_retry_holds_back_the_senders_later_ones(db_node):
    ana = "https://a.example/users/ana"
    first, second = await add_items(db_node, [ana, ana])
    assert await claim_now(db_node, limit=1) == [first]
    # It failed to fetch something and waits for its retry: Ana's next item waits with it.
    await finish(db_node, first, locked_until=None, attempts=1,
                 next_attempt_at=utcnow() + timedelta(minutes=5))
    assert await claim_now(db_node) == []
    # Once it ends (done, ignored or failed after its last attempt) the next one goes.
    await finish(db_node, first, status="failed", finished_at=utcnow())
    assert await claim_now(db_node) == [second]


async def test_a_crashed_workers_items_come_back_together_in_order(db_node):
    ana = "https://a.example/users/ana"
    ids = await add_items(db_node, [ana, ana])
    assert await claim_now(db_node) == ids
    # The worker dies holding both; once the lease runs out another takes both, in order.
    await expire_leases(db_node, InboxItem)
    assert await claim_now(db_node) == ids


# -- chains: retries, leases, backlogs --------------------------------------------------------


def worker_for(node, **settings) -> Worker:
    return Worker(dataclasses.replace(node.settings, **settings), node.writers, node.app[REMOTE])


async def test_an_item_left_for_a_retry_holds_back_its_senders_later_ones(db_node):
    # A Create naming its post by id, whose server answers 503, then the Delete of that post:
    # done while the Create waits, the Delete would find nothing, and the retried Create would
    # bring the deleted post back.
    peer = await start_peer()
    try:
        project = await db_node.create_actor("coop")
        ana = peer.add_actor("ana")
        note = f"{peer.base}/notes/1"
        peer.statuses["/notes/1"] = 503
        create = {"@context": AS, "id": peer.new_id(), "type": "Create", "actor": ana.uri,
                  "object": note}
        delete = {"@context": AS, "id": peer.new_id(), "type": "Delete", "actor": ana.uri,
                  "object": note}
        worker = worker_for(db_node, retry_base_seconds=PATIENT_RETRY_SECONDS)

        await queue_items(db_node, [create, delete])
        assert (await worker.run_once()).processed == 1
        waiting, held_back = await inbox_items(db_node)
        assert (waiting.status, waiting.attempts) == ("pending", 1)
        assert (held_back.status, held_back.attempts, held_back.locked_until) == ("pending", 0, None)

        # The post's server answers again: the Create, then the Delete, in that order.
        del peer.statuses["/notes/1"]
        peer.objects[note] = {"@context": AS, "id": note, "type": "Note", "attributedTo": ana.uri,
                              "content": "hello", "to": [project.uri]}
        await make_due(db_node, InboxItem)
        assert (await worker.run_once()).processed == 2
        assert [item.status for item in await inbox_items(db_node)] == ["done", "done"]
        async with db_node.readers() as db:
            post = await db.scalar(select(Object).where(Object.uri == note))
        assert post is None or post.deleted_at is not None
    finally:
        await peer.stop()


class OvertakenWorker(Worker):
    """While it fetches the sender of its first item, its lease runs out and another worker
    claims the items (what a chain slower than FEDSPH_WORKER_LEASE_SECONDS meets)."""

    def __init__(self, node):
        super().__init__(node.settings, node.writers, node.app[REMOTE])
        self.node, self.taken = node, None

    async def _sender(self, item_id: int):
        found = await super()._sender(item_id)
        if self.taken is None:
            await expire_leases(self.node, InboxItem)
            self.taken = await claim_now(self.node)
        return found


async def test_an_item_another_claim_took_is_not_written_and_its_handler_is_undone(db_node):
    peer = await start_peer()
    try:
        project = await db_node.create_actor("coop")
        ana = peer.add_actor("ana")
        ids = await queue_items(db_node, [follow(peer, ana, project.uri),
                                          follow(peer, ana, f"{project.uri}#again")])
        worker = OvertakenWorker(db_node)

        await worker.run_once()

        assert worker.taken == ids
        assert await follower_uris(db_node) == set()  # the Follow's writes were rolled back
        async with db_node.readers() as db:
            rows = (await db.execute(select(InboxItem.status, InboxItem.attempts,
                                            InboxItem.locked_until))).all()
        # Both are the other claim's, untouched: its lease, pending, never attempted by us.
        assert [(status, attempts) for status, attempts, _ in rows] == [("pending", 0)] * 2
        assert all(until > utcnow() for _, _, until in rows)
    finally:
        await peer.stop()


async def test_a_chain_longer_than_its_lease_renews_it_and_finishes(db_node):
    # Each sender fetch takes longer than the whole lease: the second item starts with its
    # claim's lease run out, renews it (nobody took it) and is done, as is the first.
    peer = await start_peer()
    try:
        project = await db_node.create_actor("coop")
        ana = peer.add_actor("ana")
        peer.delays["/users/ana"] = 0.6
        await queue_items(db_node, [follow(peer, ana, project.uri),
                                    follow(peer, ana, project.uri) | {"id": peer.new_id()}])
        worker = worker_for(db_node, worker_lease_seconds=0.4)

        assert (await worker.run_once()).processed == 2

        assert [item.status for item in await inbox_items(db_node)] == ["done", "done"]
        assert await follower_uris(db_node) == {ana.uri}
    finally:
        await peer.stop()


async def test_a_senders_backlog_behind_a_slow_item_does_not_hold_back_others(db_node):
    ana = "https://a.example/users/ana"
    backlog = await add_items(db_node, [ana] * 3000)
    others = await add_items(db_node, [f"https://b.example/users/u{n}" for n in range(3)])
    assert await claim_now(db_node, limit=1) == [backlog[0]]  # Ana's first is in hand

    assert await claim_now(db_node, limit=10) == others
    assert await claim_now(db_node, limit=10) == []


async def test_a_senders_items_wait_while_any_of_them_is_in_hand(db_node):
    # Not reached by the worker, but never two of one sender's items at once: a later item
    # leased (say by a claim that took it when an earlier one was not due) holds back all.
    ana = "https://a.example/users/ana"
    _, second = await add_items(db_node, [ana, ana])
    async with db_node.writers() as db, db.begin():
        await db.execute(update(InboxItem).where(InboxItem.id == second).values(
            locked_until=utcnow() + timedelta(minutes=5)))
    assert await claim_now(db_node) == []
