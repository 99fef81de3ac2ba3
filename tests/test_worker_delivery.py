"""The worker on SQLite and PostgreSQL: delivering to peers, retrying, pausing dead hosts, and
processing what peers send us.

Each test drives the worker one round at a time (`run_once`) and moves `next_attempt_at` by hand
instead of sleeping, so retry delays cost nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
from aiohttp import web
from sqlalchemy import select

from fedsph.db import make_engine, make_sessionmaker
from fedsph.federation import httpsig
from fedsph.federation.activitystreams import AS_CONTEXT, PUBLIC
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.blocks import block_domain
from fedsph.federation.delivery import PAUSE_AFTER_FAILURES
from fedsph.models import Block, Delivery, Follow, HostState, InboxItem, Object, utcnow
from fedsph.projects.outbox import follow, publish_text_post
from fedsph.web.keys import REMOTE
from fedsph.worker import Worker
from fedsph.worker_delivery import BLOCKED
from tests.fakepeer import FakePeer, free_port
from tests.support.db import (
    add_follow,
    add_remote_follower,
    deliveries,
    inbox_items,
    make_due,
    store_remote,
)
from tests.support.nodes import make_settings, wait_long_before_retries

# -- a misbehaving inbox -----------------------------------------------------------------------


@dataclass
class Sink:
    """An inbox that answers from a script of (status, headers) and records every request.

    The last answer repeats once the script runs out.
    """

    answers: list[tuple[int, dict]] = field(default_factory=lambda: [(202, {})])
    hold_until: int = 0  # answer nobody before this many requests have arrived
    cut_short: bool = False  # close the connection 5 bytes into a body promised 100 long
    port: int = field(default_factory=free_port)
    requests: list[tuple[dict, bytes]] = field(default_factory=list)
    all_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def follower_document(self) -> dict:
        uri = f"{self.base}/users/sink"
        return {"id": uri, "type": "Person", "preferredUsername": "sink", "inbox": f"{uri}/inbox"}

    async def _inbox(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if len(self.requests) >= self.hold_until:
            self.all_arrived.set()
        await self.all_arrived.wait()
        status, headers = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if self.cut_short:
            response = web.StreamResponse(status=status, headers={**headers, "Content-Length": "100"})
            await response.prepare(request)
            await response.write(b"sink ")
            request.transport.close()
            return response
        return web.Response(status=status, headers=headers, text="sink says so")

    async def start(self) -> Sink:
        app = web.Application()
        app.router.add_post("/users/sink/inbox", self._inbox)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def sink():
    running = await Sink().start()
    yield running
    await running.stop()


@pytest.fixture
async def peers():
    """Two fake servers: one advertises a shared inbox, the other only personal inboxes."""
    shared, personal = FakePeer(), FakePeer(shared_inbox=False)
    await shared.start()
    await personal.start()
    yield shared, personal
    await shared.stop()
    await personal.stop()


@dataclass
class Clock:
    """Stands in for the clock that dates HTTP signatures, so two attempts differ for sure."""

    now: datetime

    def http_date(self, now: datetime | None = None) -> str:
        return format_datetime(now or self.now, usegmt=True)


# -- helpers -----------------------------------------------------------------------------------


async def publish(node, project, text: str) -> None:
    async with node.writers() as db, db.begin():
        await publish_text_post(db, node.urls, project, text)


async def only_delivery(node) -> Delivery:
    rows = await deliveries(node)
    assert len(rows) == 1, rows
    return rows[0]


async def host_state(node, host: str) -> HostState | None:
    async with node.readers() as db:
        return await db.get(HostState, host)


def patient_worker(node) -> Worker:
    """A worker with minute-long retry steps: a paused host then stays paused during the test."""
    return wait_long_before_retries(node).worker()


# -- delivery ----------------------------------------------------------------------------------


async def test_note_reaches_every_inbox_once_with_shared_inbox_deduplicated(db_node, peers):
    shared, personal = peers
    project = await db_node.create_actor("coop")
    for name in ("ana", "bea", "caro"):
        await add_remote_follower(db_node, project, shared.add_actor(name))
    for name in ("dani", "eli"):
        await add_remote_follower(db_node, project, personal.add_actor(name))

    await publish(db_node, project, "Primera piedra colocada")
    stats = await db_node.run_worker()

    assert stats.sent == 3  # one shared inbox plus two personal ones
    assert [r.path for r in shared.received] == ["/inbox"]
    assert sorted(r.path for r in personal.received) == ["/users/dani/inbox", "/users/eli/inbox"]
    for received in shared.received + personal.received:
        assert received.verified, received.error
        assert received.activity["type"] == "Create"
        assert "Primera piedra colocada" in received.activity["object"]["content"]
    rows = await deliveries(db_node)
    assert [(r.status, r.attempts, r.last_status) for r in rows] == [("sent", 1, 202)] * 3
    # A second round finds nothing left to send.
    assert (await db_node.run_worker()).sent == 0
    assert len(shared.received) + len(personal.received) == 3


async def test_server_error_is_retried_with_a_fresh_signature(db_node, sink, monkeypatch):
    wait_long_before_retries(db_node)  # the failed try is looked at before it is due again
    clock = Clock(datetime(2030, 5, 1, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(httpsig, "http_date", clock.http_date)
    sink.answers = [(500, {}), (202, {})]
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, sink.follower_document())
    await publish(db_node, project, "Asamblea el sábado")

    before = utcnow()
    await db_node.run_worker()
    failed = await only_delivery(db_node)
    assert (failed.status, failed.attempts, failed.last_status) == ("pending", 1, 500)
    assert failed.next_attempt_at > before
    assert "HTTP 500" in failed.last_error

    clock.now += timedelta(minutes=2)
    await make_due(db_node, Delivery)
    await db_node.run_worker()
    sent = await only_delivery(db_node)
    assert (sent.status, sent.attempts, sent.last_status) == ("sent", 2, 202)

    (first_headers, first_body), (retry_headers, retry_body) = sink.requests
    # The same stored bytes are sent each time; the signature is made anew at each attempt.
    assert first_body == retry_body
    assert first_headers["Digest"] == retry_headers["Digest"]
    assert first_headers["Date"] == "Wed, 01 May 2030 12:00:00 GMT"
    assert retry_headers["Date"] == "Wed, 01 May 2030 12:02:00 GMT"
    assert first_headers["Signature"] != retry_headers["Signature"]


async def test_a_server_blocked_after_its_delivery_was_queued_gets_nothing_more(db_node, sink):
    sink.answers = [(503, {})]  # down at first: the delivery waits for a retry
    wait_long_before_retries(db_node)  # only make_due brings the retry
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, sink.follower_document())
    await publish(db_node, project, "Nueva cooperativa")
    await db_node.run_worker()
    assert len(sink.requests) == 1 and (await only_delivery(db_node)).status == "pending"

    async with db_node.writers() as db, db.begin():
        await block_domain(db, "127.0.0.1")
    await make_due(db_node, Delivery)
    await db_node.run_worker()

    row = await only_delivery(db_node)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, BLOCKED)
    assert row.finished_at is not None
    assert len(sink.requests) == 1  # the retry was never sent


async def test_a_block_made_by_another_process_stops_the_queue_within_the_refresh(db_node, sink):
    """The row is written straight, as another process's block would be: this process learns of
    it by rereading (FEDSPH_BLOCK_REFRESH_SECONDS, 0 here), not by its own invalidation. An
    account's block does not stop a server's other inboxes."""
    sink.answers = [(503, {})]
    wait_long_before_retries(db_node)  # only make_due brings the retry
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, sink.follower_document())
    await publish(db_node, project, "Nueva cooperativa")
    worker = Worker(dataclasses.replace(db_node.settings, block_refresh_seconds=0),
                    db_node.writers, db_node.app[REMOTE])
    await worker.run_once()
    async with db_node.writers() as db, db.begin():
        db.add(Block(actor_uri=f"{sink.base}/users/someone-else"))
    await make_due(db_node, Delivery)
    await worker.run_once()
    assert len(sink.requests) == 2  # an account's block: the server still gets its retry

    async with db_node.writers() as db, db.begin():
        db.add(Block(domain="127.0.0.1"))
    await make_due(db_node, Delivery)
    await worker.run_once()
    row = await only_delivery(db_node)
    assert (row.status, row.last_error, row.last_status, row.locked_until) == (
        "failed", BLOCKED, None, None)
    assert len(sink.requests) == 2


@pytest.mark.parametrize("status, outcome", [(410, "gone"), (404, "failed"), (400, "failed")])
async def test_final_answers_end_the_delivery_at_once(db_node, sink, status, outcome):
    sink.answers = [(status, {})]
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, sink.follower_document())
    await publish(db_node, project, "Nueva cooperativa")

    await db_node.run_worker()
    await make_due(db_node, Delivery)
    await db_node.run_worker()

    row = await only_delivery(db_node)
    assert (row.status, row.attempts, row.last_status) == (outcome, 1, status)
    assert row.finished_at is not None
    assert len(sink.requests) == 1


async def test_an_accepted_delivery_whose_answer_is_cut_short_counts_as_delivered(db_node, sink):
    """The inbox said 202, then closed before the body its Content-Length promised: the delivery
    was accepted and is not sent again."""
    sink.cut_short = True
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, sink.follower_document())
    await publish(db_node, project, "Nueva cooperativa")

    await db_node.run_worker()
    await make_due(db_node, Delivery)
    await db_node.run_worker()

    row = await only_delivery(db_node)
    assert (row.status, row.attempts, row.last_status, row.last_error) == ("sent", 1, 202, None)
    assert len(sink.requests) == 1


async def test_too_many_requests_waits_as_long_as_retry_after_says(db_node, sink):
    sink.answers = [(429, {"Retry-After": "120"})]
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, sink.follower_document())
    await publish(db_node, project, "Jornada de trabajo")

    before = utcnow()
    await db_node.run_worker()

    row = await only_delivery(db_node)
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, 429)
    assert row.next_attempt_at >= before + timedelta(seconds=120)


async def test_workers_failing_on_one_new_host_at_once_all_count(db_node, sink):
    # Several workers whose deliveries to the same, so far unknown, host fail at the same moment
    # (the sink answers all of them together) must each record the failure.
    workers = PAUSE_AFTER_FAILURES
    sink.answers, sink.hold_until = [(503, {})], workers
    wait_long_before_retries(db_node)  # one try each, and the pause outlasts the checks
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, sink.follower_document())
    for number in range(workers):
        await publish(db_node, project, f"Boletín {number}")
    one_each = dataclasses.replace(db_node.settings, worker_batch=1)

    rounds = [Worker(one_each, db_node.writers, db_node.app[REMOTE]).run_once()
              for _ in range(workers)]
    # The timeout only turns a hang into a failure.
    await asyncio.wait_for(asyncio.gather(*rounds), 30)

    assert [(r.status, r.attempts) for r in await deliveries(db_node)] == [("pending", 1)] * workers
    state = await host_state(db_node, f"127.0.0.1:{sink.port}")
    assert state.consecutive_failures == workers
    assert state.paused_until > utcnow()


async def test_dead_host_is_paused_then_revived_by_a_signed_request(db_node):
    offline = FakePeer()  # not started: its port refuses connections
    ana = offline.add_actor("ana")
    project = await db_node.create_actor("coop")
    await add_remote_follower(db_node, project, ana)
    await publish(db_node, project, "Mientras estabas fuera")
    worker = patient_worker(db_node)

    for attempt in range(1, PAUSE_AFTER_FAILURES + 1):
        await make_due(db_node, Delivery)
        await worker.run_once()
        row = await only_delivery(db_node)
        assert (row.status, row.attempts, row.last_status) == ("pending", attempt, None)
        if attempt < PAUSE_AFTER_FAILURES:
            assert (await host_state(db_node, offline.domain)).paused_until is None
    state = await host_state(db_node, offline.domain)
    assert state.consecutive_failures == PAUSE_AFTER_FAILURES
    assert state.paused_until > utcnow()

    # Paused: even a due row is left alone.
    await make_due(db_node, Delivery)
    assert (await worker.run_once()).sent == 0
    assert (await only_delivery(db_node)).attempts == PAUSE_AFTER_FAILURES

    # The host comes back and signs a request to us: what we owe it is due again at once.
    await offline.start()
    try:
        like = {"@context": AS_CONTEXT, "id": offline.new_id(), "type": "Like", "actor": ana.uri,
                "object": project.uri}
        assert (await offline.post(ana, project.inbox, like))[0] == 202
        state = await host_state(db_node, offline.domain)
        assert (state.consecutive_failures, state.paused_until) == (0, None)
        assert (await only_delivery(db_node)).next_attempt_at <= utcnow()

        await worker.run_once()
        assert (await only_delivery(db_node)).status == "sent"
        creates = offline.activities("Create")
        assert len(creates) == 1 and "Mientras estabas fuera" in creates[0]["object"]["content"]
    finally:
        await offline.stop()


# -- processing what peers send us -------------------------------------------------------------


def activity(peer: FakePeer, actor, activity_type: str, obj) -> dict:
    return {"@context": AS_CONTEXT, "id": peer.new_id(), "type": activity_type,
            "actor": actor.uri, "object": obj}


def note(peer: FakePeer, author, content: str, note_id: str | None = None) -> dict:
    return {"id": note_id or peer.new_id("notes"), "type": "Note", "attributedTo": author.uri,
            "content": content, "to": [PUBLIC], "cc": [author.document["followers"]],
            "published": "2030-05-01T12:00:00Z"}


async def send(node, peer: FakePeer, actor, inbox: str, document: dict) -> InboxItem:
    """POST a signed activity, run the worker, and return the stored inbox row."""
    status, text = await peer.post(actor, inbox, document)
    assert status == 202, text
    await node.run_worker()
    async with node.readers() as db:
        return await db.scalar(select(InboxItem).where(InboxItem.activity_uri == document["id"]))


async def follow_state(node, follower_id: int, followed_id: int) -> str | None:
    async with node.readers() as db:
        return await db.scalar(select(Follow.state).where(
            Follow.follower_id == follower_id, Follow.followed_id == followed_id))


async def stored_object(node, uri: str) -> Object | None:
    async with node.readers() as db:
        return await db.scalar(select(Object).where(Object.uri == uri))


async def test_follow_is_accepted_and_undo_removes_it(db_node, peer):
    project = await db_node.create_actor("coop")
    ana = peer.add_actor("ana")

    request = activity(peer, ana, "Follow", project.uri)
    item = await send(db_node, peer, ana, project.inbox, request)
    assert item.status == "done"
    async with db_node.readers() as db:
        follower = await get_actor_by_uri(db, ana.uri)
    assert await follow_state(db_node, follower.id, project.id) == "accepted"
    accepts = peer.activities("Accept")
    assert len(accepts) == 1 and accepts[0]["object"]["id"] == request["id"]
    assert accepts[0]["actor"] == project.uri

    item = await send(db_node, peer, ana, project.inbox, activity(peer, ana, "Undo", request))
    assert item.status == "done"
    assert await follow_state(db_node, follower.id, project.id) is None


async def test_posts_of_a_followed_actor_are_stored_edited_and_tombstoned(db_node, peer):
    project = await db_node.create_actor("coop")
    ana = peer.add_actor("ana")
    followed = await store_remote(db_node, ana.document)
    # Our project follows ana: the Follow goes out, ana's server accepts it.
    async with db_node.writers() as db, db.begin():
        await follow(db, db_node.urls, project, followed)
    await db_node.run_worker()
    [request] = peer.activities("Follow")
    await send(db_node, peer, ana, project.inbox, activity(peer, ana, "Accept", request))
    assert await follow_state(db_node, project.id, followed.id) == "accepted"

    post = note(peer, ana, "<p>Primera piedra</p>")
    item = await send(db_node, peer, ana, db_node.urls.shared_inbox(),
                      activity(peer, ana, "Create", post))
    assert item.status == "done"
    assert "Primera piedra" in (await stored_object(db_node, post["id"])).content

    edited = {**note(peer, ana, "<p>Techo terminado</p>", post["id"]),
              "updated": "2030-05-02T09:00:00Z"}
    item = await send(db_node, peer, ana, db_node.urls.shared_inbox(),
                      activity(peer, ana, "Update", edited))
    assert item.status == "done"
    stored = await stored_object(db_node, post["id"])
    assert "Techo terminado" in stored.content and "Primera piedra" not in stored.content
    assert stored.updated == datetime(2030, 5, 2, 9, 0)

    tombstone = {"id": post["id"], "type": "Tombstone"}
    item = await send(db_node, peer, ana, db_node.urls.shared_inbox(),
                      activity(peer, ana, "Delete", tombstone))
    assert item.status == "done"
    stored = await stored_object(db_node, post["id"])
    assert stored.deleted_at is not None and stored.content is None


async def test_handler_that_cannot_reach_the_origin_is_retried(db_node, peer):
    wait_long_before_retries(db_node)  # the failed try is looked at before it is due again
    project = await db_node.create_actor("coop")
    ana = peer.add_actor("ana")
    await add_follow(db_node, project, await store_remote(db_node, ana.document))
    post = note(peer, ana, "<p>Solo por enlace</p>")
    peer.objects[post["id"]] = post
    create = activity(peer, ana, "Create", post["id"])  # the object by reference only
    status, _ = await peer.post(ana, db_node.urls.shared_inbox(), create)
    assert status == 202

    await peer.stop()  # ana's server goes down before our worker fetches the note
    before = utcnow()
    await db_node.run_worker()
    [item] = await inbox_items(db_node)
    assert (item.status, item.attempts) == ("pending", 1)
    assert item.next_attempt_at > before
    assert post["id"] in item.last_error
    assert await stored_object(db_node, post["id"]) is None

    await peer.start()  # back on the same port
    await make_due(db_node, InboxItem)
    await db_node.run_worker()
    [item] = await inbox_items(db_node)
    assert (item.status, item.attempts) == ("done", 2)
    assert "Solo por enlace" in (await stored_object(db_node, post["id"])).content


async def test_unknown_activity_type_is_recorded_as_ignored(db_node, peer):
    project = await db_node.create_actor("coop")
    ana = peer.add_actor("ana")
    arrive = activity(peer, ana, "Arrive", {"type": "Place", "name": "Obra"})
    item = await send(db_node, peer, ana, project.inbox, arrive)
    assert (item.status, item.attempts) == ("ignored", 1)
    assert "Arrive" in item.last_error
    assert orjson.loads(item.body)["id"] == arrive["id"]


# -- the worker loop and an unavailable database -----------------------------------------------


class CountingSessions:
    """Hands out sessions and asks the worker to stop after a few rounds."""

    def __init__(self, sessions, stop: asyncio.Event, rounds: int):
        self.writers, self.stop, self.rounds, self.calls = sessions, stop, rounds, 0

    def __call__(self):
        self.calls += 1
        if self.calls >= self.rounds:
            self.stop.set()
        return self.writers()


def unreachable_database(tmp_path, kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'fedsph.sqlite3'}"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/fedsph"


@pytest.mark.parametrize("kind", [pytest.param("sqlite", marks=pytest.mark.sqlite),
                                  pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_worker_loop_outlives_an_unreachable_database(tmp_path, kind, caplog):
    settings = make_settings(tmp_path, database_url=unreachable_database(tmp_path, kind))
    engine = make_engine(settings)
    stop = asyncio.Event()
    sessions = CountingSessions(make_sessionmaker(engine, writer=True), stop, rounds=3)
    # No remote: every round fails on the database before anything could be sent.
    worker = Worker(settings, sessions, remote=None)
    try:
        # The timeout only turns a hang into a failure.
        await asyncio.wait_for(worker.run_forever(stop, idle_seconds=0.01), 30)
    finally:
        await engine.dispose()
    assert sessions.calls >= 3  # it kept trying instead of dying on the first error
    assert "worker round failed on the database" in caplog.text
