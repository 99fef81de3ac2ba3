"""Three `fedsph worker` processes share one PostgreSQL queue; one is killed (SIGKILL) in the
middle of a burst. Afterwards no delivery is lost, none is duplicated except those the killed
worker had in hand, every inbox item was processed exactly once, and one sender's items kept
their order across the workers.

"Duplicated" can only mean this: a POST the killed worker had sent, or was sending, when it
died may have arrived, but it never recorded the answer. Its lease runs out and another worker
sends the delivery again. So the sink may see two copies of exactly the deliveries that were
leased (claimed, not yet recorded) at the moment of the kill, at most one extra each, and one
copy of everything else. Inbox items have no such window: a handler's effects and the item's
status are one transaction.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections import Counter

import orjson
import pytest
from aiohttp import web
from sqlalchemy import insert, select

from fedsph.config import load_settings
from fedsph.core.urls import URLs
from fedsph.db import make_engine, make_sessionmaker
from fedsph.federation.actors import get_local_actor
from fedsph.models import Activity, Actor, Delivery, Follow, InboxItem, utcnow
from fedsph.projects.outbox import publish_text_post
from tests.fakepeer import free_port
from tests.processes import NodeProcess

pytestmark = pytest.mark.postgres

AS = "https://www.w3.org/ns/activitystreams"
LEASE = 20  # seconds: far longer than a worker's round even on a loaded machine, so only a
# dead worker's lease runs out
FOLLOWERS = 240
POSTS = 3
SENDERS = 40  # remote actors that each send a Follow (and every fourth an Undo of it)


class Sink:
    """Inboxes on several loopback ports that answer slowly and count every (inbox, id)."""

    def __init__(self, ports: list[int]):
        self.ports = ports
        self.counts: Counter[tuple[str, str]] = Counter()
        self.runners: list[web.AppRunner] = []

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(0.2)  # slow enough that the burst lasts a few seconds
        self.counts[(f"http://{request.host}{request.path}", orjson.loads(body)["id"])] += 1
        return web.Response(status=202)

    async def start(self) -> Sink:
        for port in self.ports:
            app = web.Application()
            app.router.add_post("/{tail:.*}", self.receive)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.runners.append(runner)
        return self

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


def remote_actor(host: str, name: str) -> dict:
    uri = f"http://{host}/users/{name}"
    return {"uri": uri, "local": False, "type": "Person", "username": name, "domain": host,
            "inbox": f"{uri}/inbox", "key_id": f"{uri}#main-key", "fetched_at": utcnow()}


async def seed(sessions, urls: URLs, hosts: list[str]) -> dict[str, list[str]]:
    """Followers of `coop` on the sink's hosts, then POSTS posts (deliveries to all) and
    SENDERS' Follows (and some Undos) to receive later. Returns the senders by fate and the
    activities."""
    followers = [remote_actor(hosts[n % len(hosts)], f"f{n}") for n in range(FOLLOWERS)]
    senders = [remote_actor(hosts[n % len(hosts)], f"s{n}") for n in range(SENDERS)]
    async with sessions() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        await db.execute(insert(Actor), followers + senders)
        ids = await db.scalars(select(Actor.id).where(Actor.uri.in_([f["uri"] for f in followers])))
        await db.execute(insert(Follow), [
            {"follower_id": i, "followed_id": coop.id, "state": "accepted",
             "activity_uri": f"{coop.uri}#follow-{i}"} for i in ids])
    items, fates = [], {"follow": [], "undo": []}
    for n, sender in enumerate(senders):
        follow = {"@context": AS, "id": f"{sender['uri']}/follows/{uuid.uuid4().hex}",
                  "type": "Follow", "actor": sender["uri"], "object": coop.uri}
        items.append(follow)
        if n % 4 == 0:  # Follow then Undo: only in that order does no follow remain
            items.append({"@context": AS, "id": f"{follow['id']}/undo", "type": "Undo",
                          "actor": sender["uri"], "object": follow})
        fates["undo" if n % 4 == 0 else "follow"].append(sender["uri"])
    async with sessions() as db, db.begin():
        for n in range(POSTS):
            await publish_text_post(db, urls, coop, f"Burst post {n}.")
    return fates, items


async def receive(sessions, items: list[dict]) -> None:
    """The senders' activities as the inbox stores them."""
    async with sessions() as db, db.begin():
        await db.execute(insert(InboxItem), [
            {"activity_uri": a["id"], "type": a["type"], "actor_uri": a["actor"],
             "body": orjson.dumps(a), "signed_by_actor": True} for a in items])


async def queue_state(sessions) -> tuple[list, list]:
    async with sessions() as db:
        deliveries = (await db.execute(
            select(Delivery.inbox, Activity.uri, Delivery.status, Delivery.attempts,
                   Delivery.locked_until).join(Activity))).all()
        items = (await db.execute(select(InboxItem.status, InboxItem.attempts))).all()
    return deliveries, items


async def wait_until(predicate, timeout: float, what: str) -> None:
    for _ in range(int(timeout * 10)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_three_workers_one_killed_mid_burst(tmp_path, pg_database_url):
    sink = await Sink([free_port() for _ in range(8)]).start()
    node = NodeProcess(tmp_path / "node", FEDSPH_DATABASE_URL=pg_database_url,
                       FEDSPH_WORKER_LEASE_SECONDS=str(LEASE), FEDSPH_WORKER_BATCH="16",
                       FEDSPH_DELIVERY_CONCURRENCY="8", FEDSPH_WORKER_CONCURRENCY="4")
    node.cli("migrate")
    node.cli("project", "create", "coop", "--name", "Coop")
    engine = make_engine(node_settings(node))
    sessions = make_sessionmaker(engine, writer=True)
    workers: list[asyncio.subprocess.Process] = []
    try:
        fates, received = await seed(sessions, URLs(node.base),
                                     [f"127.0.0.1:{p}" for p in sink.ports])
        workers = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fedsph", "worker", env=node.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            for _ in range(3)]

        async def burst_under_way():
            return sum(sink.counts.values()) >= 150

        await wait_until(burst_under_way, 120, "the burst to start")
        # The inbox items arrive now, so the workers are claiming and handling them when one
        # dies (handled at once, they would all be done long before the kill).
        await receive(sessions, received)
        await asyncio.sleep(0.5)
        workers[0].send_signal(signal.SIGKILL)
        await workers[0].wait()
        # What the dead worker had in hand is still leased (LEASE is far from over): the only
        # deliveries that may arrive twice. Leases of the live workers are in it too.
        deliveries, _ = await queue_state(sessions)
        now = utcnow()
        in_hand = {(inbox, uri) for inbox, uri, status, _, locked in deliveries
                   if status == "pending" and locked is not None and locked > now}
        assert in_hand, "the kill came after the burst: nothing was in flight"

        async def all_done():
            deliveries, items = await queue_state(sessions)
            return (all(row.status != "pending" for row in deliveries)
                    and all(row.status != "pending" for row in items))

        await wait_until(all_done, 180, "the live workers to finish the burst")
        deliveries, items = await queue_state(sessions)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                await asyncio.wait_for(worker.wait(), 30)
        await engine.dispose()
        await sink.stop()

    expected = {(inbox, uri) for inbox, uri, *_ in deliveries}
    assert len(expected) == POSTS * FOLLOWERS + SENDERS  # the posts, and one Accept per Follow
    assert expected <= set(sink.counts), "a delivery was lost"
    assert not set(sink.counts) - expected
    duplicated = {pair: n for pair, n in sink.counts.items() if n > 1}
    assert set(duplicated) <= in_hand, "a delivery not in the dead worker's hands came twice"
    assert all(n == 2 for n in duplicated.values())
    # Every delivery row was recorded sent once: resent ones were never recorded by the dead.
    assert Counter((row.status, row.attempts) for row in deliveries) == {("sent", 1): len(expected)}
    # Every inbox item processed exactly once, and one sender's Follow before its Undo.
    assert Counter((row.status, row.attempts) for row in items) == {
        ("done", 1): SENDERS + len(fates["undo"])}
    following = await follower_uris(node)
    assert following >= set(fates["follow"])
    assert not following & set(fates["undo"])


def node_settings(node: NodeProcess):
    return load_settings(environ={k: v for k, v in node.env.items() if k.startswith("FEDSPH_")})


async def follower_uris(node) -> set[str]:
    engine = make_engine(node_settings(node))
    try:
        async with make_sessionmaker(engine)() as db:
            return set(await db.scalars(select(Actor.uri).join(Follow, Follow.follower_id == Actor.id)))
    finally:
        await engine.dispose()
