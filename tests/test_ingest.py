"""The inbox's group commit (fedsph/federation/ingest.py): one transaction for many requests,
duplicates answered per item, an item the database refuses fails alone, and
stopping writes what is queued. On SQLite and PostgreSQL."""

import asyncio
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, select

from fedsph.federation import ingest as ingest_module
from fedsph.federation.ingest import Ingest, IngestFailed, Received
from fedsph.models import HostState, InboxItem, utcnow
from fedsph.web.keys import INGEST
from tests.support.db import inbox_items
from tests.support.inbox import follow, project_and_sender


def received(uri: str | None, host: str = "peer.example") -> Received:
    return Received(activity_uri=uri, type="Create", actor_uri="https://peer.example/users/a",
                    body=b'{"type": "Create"}', signed_by_actor=True, host=host)


async def row_count(node) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count()).select_from(InboxItem))


async def test_duplicates_in_one_batch_and_across_batches(db_node):
    ingest = Ingest(db_node.writers, wait_ms=200, max_batch=100)
    ingest.start()
    try:
        assert await ingest.store(received("https://peer.example/a/1")) == "stored"
        outcomes = await asyncio.gather(*(ingest.store(received(uri)) for uri in [
            "https://peer.example/a/2", "https://peer.example/a/2",  # twice in this batch
            "https://peer.example/a/1",  # stored by the batch before
            "https://peer.example/a/3"]))
    finally:
        await ingest.stop()
    assert outcomes == ["stored", "duplicate", "duplicate", "stored"]
    assert ingest.batches == 2  # the four concurrent requests made one transaction
    assert sorted(item.activity_uri for item in await inbox_items(db_node)) == [
        "https://peer.example/a/1", "https://peer.example/a/2", "https://peer.example/a/3"]


async def test_an_item_the_database_refuses_fails_alone(db_node):
    ingest = Ingest(db_node.writers, wait_ms=200, max_batch=100)
    ingest.start()
    try:
        # A NULL activity id breaks the batch's INSERT: the batch is retried item by item, so
        # only that item fails and its neighbour is stored (review: one hostile request must
        # not make every request of its batch a 503).
        outcomes = await asyncio.gather(ingest.store(received("https://peer.example/a/1")),
                                        ingest.store(received(None)), return_exceptions=True)
        assert outcomes[0] == "stored"
        assert isinstance(outcomes[1], IngestFailed)
        assert await row_count(db_node) == 1
        # The batcher goes on: the next batch is stored.
        assert await ingest.store(received("https://peer.example/a/2")) == "stored"
    finally:
        await ingest.stop()
    assert await row_count(db_node) == 2


async def test_when_the_database_refuses_everything_every_waiter_fails(db_node, monkeypatch):
    ingest = Ingest(db_node.writers, wait_ms=200, max_batch=100)

    async def down(*args, **kwargs):
        raise OSError("the database is away")

    monkeypatch.setattr(ingest.writer, "write", down)
    ingest.start()
    try:
        outcomes = await asyncio.gather(*(ingest.store(received(f"https://peer.example/a/{n}"))
                                          for n in range(3)), return_exceptions=True)
    finally:
        await ingest.stop()
    assert all(isinstance(outcome, IngestFailed) for outcome in outcomes)
    assert await row_count(db_node) == 0


async def test_stopping_writes_what_is_queued_then_refuses(db_node):
    ingest = Ingest(db_node.writers, wait_ms=10_000, max_batch=1000)  # only stop() ends the wait
    ingest.start()
    waiting = [asyncio.create_task(ingest.store(received(f"https://peer.example/a/{n}")))
               for n in range(5)]
    await asyncio.sleep(0.05)
    assert await row_count(db_node) == 0
    await ingest.stop()
    assert [task.result() for task in waiting] == ["stored"] * 5
    assert await row_count(db_node) == 5
    with pytest.raises(IngestFailed):
        await ingest.store(received("https://peer.example/a/late"))


async def test_a_full_batch_is_written_without_waiting(db_node):
    ingest = Ingest(db_node.writers, wait_ms=60_000, max_batch=3)
    ingest.start()
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(
            *(ingest.store(received(f"https://peer.example/a/{n}")) for n in range(3))), 30)
    finally:
        await ingest.stop()
    assert outcomes == ["stored"] * 3


async def test_inbox_answers_503_and_stores_nothing_when_the_commit_fails(node, peer, monkeypatch):
    project, alice, inbox = await project_and_sender(node, peer)

    async def broken(writers, batch):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest_module, "write_batch", broken)
    status, text = await peer.post(alice, inbox, follow(peer, alice, project.uri))
    assert status == 503
    assert "send it again later" in text
    assert await inbox_items(node) == []
    monkeypatch.undo()
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert len(await inbox_items(node)) == 1
    assert node.app[INGEST].batches >= 1


async def test_a_batch_revives_the_hosts_of_its_senders(db_node):
    async with db_node.writers() as db, db.begin():
        db.add(HostState(host="down.example", consecutive_failures=3,
                         paused_until=utcnow() + timedelta(hours=1)))
        db.add(HostState(host="other.example", consecutive_failures=2))
    ingest = Ingest(db_node.writers)
    ingest.start()
    try:
        assert await ingest.store(received("https://down.example/a/1", "down.example")) == "stored"
    finally:
        await ingest.stop()
    async with db_node.readers() as db:
        down = await db.get(HostState, "down.example")
        other = await db.get(HostState, "other.example")
    assert (down.consecutive_failures, down.paused_until) == (0, None)
    assert other.consecutive_failures == 2  # it sent nothing


async def test_a_type_with_control_characters_is_refused_and_not_stored(node, peer):
    # On PostgreSQL a NUL in the type would fail the whole batch's INSERT: refused up front.
    project, alice, inbox = await project_and_sender(node, peer)
    status, text = await peer.post(alice, inbox, {**follow(peer, alice, project.uri),
                                                  "type": "Follow\u0000"})
    assert status == 400
    assert "control characters" in text
    assert await inbox_items(node) == []


async def test_a_batch_larger_than_one_sqlite_insert_is_stored_whole(db_node):
    # SQLite writes a batch in INSERTs of SQLITE_ROWS_PER_INSERT rows (bound parameters have a
    # limit); the statement's numbered parameters must give every row its own values.
    uris = [f"https://peer.example/a/{n}" for n in range(ingest_module.SQLITE_ROWS_PER_INSERT + 40)]

    def own_values(n: int, uri: str) -> Received:  # every column differs from row to row
        return Received(activity_uri=uri, type=f"Type{n}", actor_uri=f"https://peer.example/u/{n}",
                        body=b'{"n": %d}' % n, signed_by_actor=n % 2 == 0, host="peer.example")

    ingest = Ingest(db_node.writers, wait_ms=60_000, max_batch=len(uris) + 3)  # one full batch
    ingest.start()
    try:
        outcomes = await asyncio.gather(*(ingest.store(own_values(n, uri))
                                          for n, uri in enumerate(uris + uris[:3])))
    finally:
        await ingest.stop()
    assert ingest.batches == 1
    assert outcomes == ["stored"] * len(uris) + ["duplicate"] * 3
    items = await inbox_items(db_node)
    assert sorted(item.activity_uri for item in items) == sorted(uris)
    assert {item.activity_uri: (item.type, item.actor_uri, item.body, item.signed_by_actor)
            for item in items} == {
        uri: (f"Type{n}", f"https://peer.example/u/{n}", b'{"n": %d}' % n, n % 2 == 0)
        for n, uri in enumerate(uris)}
    assert {(item.status, item.attempts) for item in items} == {("pending", 0)}
    assert all(item.next_attempt_at == item.created_at and item.next_attempt_at <= utcnow()
               for item in items)


async def test_one_bad_row_in_a_later_insert_costs_only_itself(db_node):
    # A row the driver cannot bind (a lone surrogate), in the second of SQLite's INSERTs: the
    # batch's transaction is rolled back whole, then each item is stored on its own.
    uris = [f"https://peer.example/a/{n}" for n in range(ingest_module.SQLITE_ROWS_PER_INSERT + 44)]
    bad = "https://peer.example/a/\ud800"
    uris[-20] = bad
    ingest = Ingest(db_node.writers, wait_ms=60_000, max_batch=len(uris))
    ingest.start()
    try:
        outcomes = await asyncio.gather(*(ingest.store(received(uri)) for uri in uris),
                                        return_exceptions=True)
    finally:
        await ingest.stop()
    assert [type(o) for o in outcomes if not isinstance(o, str)] == [IngestFailed]
    assert isinstance(outcomes[-20], IngestFailed)
    assert outcomes.count("stored") == len(uris) - 1
    stored = [item.activity_uri for item in await inbox_items(db_node)]
    assert sorted(stored) == sorted(uri for uri in uris if uri != bad)  # each once, the bad none


async def test_a_create_held_already_gets_a_row_for_each_other_personal_inbox(db_node):
    """Servers without a shared inbox send one activity, same id, to each inbox: each further
    personal inbox gets a row of its own (handled as the Create sent there again), in the
    batch's transaction, once per inbox; the shared inbox and other types get none."""
    def to(uri: str, inbox: str | None, kind: str = "Create") -> Received:
        item = received(uri)
        item.delivered_to, item.type = inbox, kind
        return item

    ana, bea, cid = (f"https://node.example/actors/{n}" for n in ("ana", "bea", "cid"))
    ingest = Ingest(db_node.writers, wait_ms=200, max_batch=100)
    ingest.start()
    try:
        assert await ingest.store(to("https://peer.example/a/1", ana)) == "stored"
        outcomes = await asyncio.gather(*(ingest.store(item) for item in [
            to("https://peer.example/a/1", bea),  # held: a row for Bea
            to("https://peer.example/a/1", ana),  # Ana's again (a retry): nothing
            to("https://peer.example/a/2", ana), to("https://peer.example/a/2", cid),  # one batch
            to("https://peer.example/a/2", cid),
            to("https://peer.example/a/1", None),  # the shared inbox: nothing more
            to("https://peer.example/a/3", bea, "Update"), to("https://peer.example/a/3", cid,
                                                              "Update")]))
        assert outcomes == ["duplicate", "duplicate", "stored", "duplicate", "duplicate",
                            "duplicate", "stored", "duplicate"]
        assert await ingest.store(to("https://peer.example/a/1", bea)) == "duplicate"
    finally:
        await ingest.stop()
    rows = sorted((item.delivered_to, orjson.loads(item.body) == {"type": "Create"},
                   item.activity_uri.startswith("urn:fedsph:delivered:"), item.type)
                  for item in await inbox_items(db_node))
    assert rows == sorted([(ana, True, False, "Create"), (bea, True, True, "Create"),
                           (ana, True, False, "Create"), (cid, True, True, "Create"),
                           (bea, True, False, "Update")])


async def test_an_extra_row_is_the_first_senders_own_and_carries_its_new_body(db_node):
    """Another account of the author's server reusing the author's activity id at a personal
    inbox gets no row for it, nor blocks the author's own delivery there; a relay's copy (not
    signed by its actor) gets none either; the row made carries that delivery's own body."""
    eva, mallory = "https://peer.example/users/eva", "https://peer.example/users/mallory"
    ana, bea, cid = (f"https://node.example/actors/{n}" for n in ("ana", "bea", "cid"))

    def to(inbox: str, sender: str, body: bytes, by_actor: bool = True) -> Received:
        return Received(activity_uri="https://peer.example/a/dm", type="Create",
                        actor_uri=sender, body=body, signed_by_actor=by_actor,
                        host="peer.example", delivered_to=inbox)

    ingest = Ingest(db_node.writers, wait_ms=50, max_batch=100)
    ingest.start()
    try:
        assert await ingest.store(to(ana, eva, b'{"n": 1}')) == "stored"
        assert await ingest.store(to(bea, mallory, b'{"n": "forged"}')) == "duplicate"
        assert await ingest.store(to(cid, eva, b'{"n": "relayed"}', by_actor=False)) == \
            "duplicate"
        assert await ingest.store(to(bea, eva, b'{"n": 2}')) == "duplicate"
    finally:
        await ingest.stop()
    rows = sorted((item.delivered_to, item.actor_uri, item.body, item.signed_by_actor,
                   item.activity_uri.startswith("urn:fedsph:delivered:"))
                  for item in await inbox_items(db_node))
    assert rows == [(ana, eva, b'{"n": 1}', True, False), (bea, eva, b'{"n": 2}', True, True)]
