"""One sender's chain of inbox items: it stops at an item left pending for a retry (the later
ones wait behind it), it never writes an item another claim took from it (the lease is a
fencing token), and a sender's backlog behind a blocked item does not keep others' from being
claimed; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select, update

from fedsph.models import InboxItem, Object, utcnow
from fedsph.web.keys import REMOTE
from fedsph.worker import Worker
from tests.support.db import expire_leases, inbox_items, make_due
from tests.test_worker_order import (
    AS,
    add_items,
    claim_now,
    follow,
    follower_uris,
    queue_items,
    start_peer,
)


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
        worker = worker_for(db_node)

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
    first, second = await add_items(db_node, [ana, ana])
    async with db_node.writers() as db, db.begin():
        await db.execute(update(InboxItem).where(InboxItem.id == second).values(
            locked_until=utcnow() + timedelta(minutes=5)))
    assert await claim_now(db_node) == []
