"""The streaming API end to end, against real `fedsph serve` processes: aiohttp's WebSocket
client and Mastodon.py's server-sent-events client (stream_user) get a post, a notification, an
edit and a delete as Mastodon's events; with two processes on one PostgreSQL database, a post
made through one reaches a stream held by the other (fedsph/api/stream_hub.py)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading

import aiohttp
import pytest
from mastodon import StreamListener
from sqlalchemy import func, select

from fedsph.admin.node import open_node
from fedsph.config import load_settings
from fedsph.models import Actor, Object, StreamEvent
from fedsph.projects import stream_events
from fedsph.projects.outbox import publish_post
from tests.mastodon_client import logged_in, start_server, stop_server
from tests.mastodon_schema import mismatches
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support.members import api, member_token

pytestmark = pytest.mark.e2e

SERVING = re.compile(r"fedsph serving .*\[pid (\d+)\]")  # a child's line once it listens
STREAM_ACCESS = re.compile(r"fedsph\.access \[pid (\d+)\].*GET /api/v1/streaming")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("streaming"))
    yield server
    stop_server(server)


def ws_base(base: str) -> str:
    return "ws" + base[len("http"):]


PAYLOADS = {"update": "Status", "status.update": "Status", "notification": "Notification"}


async def next_event(ws, event: str, timeout: float = 20) -> dict:
    """The next message of `event`, checked against Mastodon's documented shapes."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            body = json.loads(message.data)
            assert mismatches(body, "StreamingEvent") == []
            if event in PAYLOADS:
                assert mismatches(json.loads(body["payload"]), PAYLOADS[event]) == []
            if body.get("event") == event:
                return body


async def test_websocket_gets_post_notification_edit_and_delete(server):
    ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
    instance = await asyncio.to_thread(ana.instance_v2)
    streaming = instance.configuration.urls.streaming
    assert streaming == ws_base(server.base)
    url = f"{streaming}/api/v1/streaming?stream=user&access_token={ana.access_token}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        posted = await asyncio.to_thread(ana.status_post, "Hoy terminamos el techo")
        event = await next_event(ws, "update")
        assert event["stream"] == ["user"]
        assert json.loads(event["payload"])["id"] == str(posted.id)

        await asyncio.to_thread(bea.status_favourite, posted.id)  # through the worker
        event = await next_event(ws, "notification")
        note = json.loads(event["payload"])
        assert note["type"] == "favourite" and note["status"]["id"] == str(posted.id)
        assert note["account"]["username"] == "bea"

        await asyncio.to_thread(ana.status_update, posted.id, "Hoy terminamos el techo (y la puerta)")
        event = await next_event(ws, "status.update")
        edited = json.loads(event["payload"])
        assert "la puerta" in edited["content"] and edited["edited_at"] is not None

        await asyncio.to_thread(ana.status_delete, posted.id)
        event = await next_event(ws, "delete")
        assert event["payload"] == str(posted.id)


async def test_a_post_made_by_another_process_reaches_an_open_stream(server):
    """`fedsph post` runs as a process of its own: its event reaches the serve process's stream
    through the database (a poll by primary key, on both engines)."""
    url = f"{ws_base(server.base)}/api/v1/streaming?stream=public:local"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await asyncio.to_thread(server.cli, "post", "casa", "--text", "Desde la línea de órdenes")
        event = await next_event(ws, "update")
        assert event["stream"] == ["public:local"]
        status = json.loads(event["payload"])
        assert "línea de órdenes" in status["content"] and status["account"]["username"] == "casa"


class Collect(StreamListener):
    def __init__(self):
        self.updates, self.notifications = [], []
        self.lock = threading.Lock()

    def on_update(self, status):
        with self.lock:
            self.updates.append(status)

    def on_notification(self, notification):
        with self.lock:
            self.notifications.append(notification)


def test_mastodon_py_stream_user_gets_an_update_and_a_notification(server):
    ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
    listener = Collect()
    assert bea.stream_healthy()  # GET /api/v1/streaming/health answers "OK"
    handle = bea.stream_user(listener, run_async=True, timeout=30)
    try:
        wait_for(handle.is_receiving, timeout=20, what="the stream to be open")
        own = bea.status_post("Bea cuenta cómo va la obra")
        wait_for(lambda: [s.id for s in listener.updates] == [own.id], timeout=20,
                 what="bea's post on her user stream")
        assert listener.updates[0].account.username == "bea"
        ana.account_follow(bea.account_verify_credentials().id)
        wait_for(lambda: listener.notifications, timeout=20, what="the follow notification")
        [note] = listener.notifications
        assert note.type == "follow" and note.account.username == "ana"
    finally:
        handle.close()


def test_notification_stream_over_sse_gets_only_notifications(server):
    ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
    listener = Collect()
    handle = ana.stream_user_notifications(listener, run_async=True, timeout=30)
    try:
        wait_for(handle.is_receiving, timeout=20, what="the stream to be open")
        post = ana.status_post("Una nota de ana para favoritos")
        bea.status_favourite(post.id)
        wait_for(lambda: listener.notifications, timeout=20, what="the favourite notification")
        assert listener.notifications[0].type == "favourite"
        assert listener.updates == []  # user:notification carries no statuses
    finally:
        handle.close()


@pytest.mark.postgres
async def test_a_post_through_one_process_reaches_a_stream_on_another(tmp_path, pg_database_url):
    first = NodeProcess(tmp_path / "a", FEDSPH_DATABASE_URL=pg_database_url)
    second = NodeProcess(tmp_path / "b", FEDSPH_DATABASE_URL=pg_database_url,
                         FEDSPH_BASE_URL=first.base)
    first.cli("migrate")
    settings = load_settings(environ={}, base_url=first.base, data_dir=tmp_path / "a",
                             database_url=pg_database_url)
    async with open_node(settings) as node:
        token, _person = await member_token(node, "ana", None)
    first.start()
    second.start()
    try:
        url = f"{ws_base(second.base)}/api/v1/streaming?access_token={token}"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws, \
                http.ws_connect(f"{ws_base(second.base)}/api/v1/streaming?stream=public") as pub:
            await ws.send_json({"type": "subscribe", "stream": "user"})
            await asyncio.sleep(0.5)  # the subscription is read before the post is made
            status, posted = await api(first, token, "POST", "/api/v1/statuses",
                                       data={"status": "Desde el primer proceso"})
            assert status == 200
            for stream in (ws, pub):
                event = await next_event(stream, "update", timeout=10)
                assert json.loads(event["payload"])["id"] == posted["id"]
            await api(first, token, "DELETE", f"/api/v1/statuses/{posted['id']}")
            assert (await next_event(ws, "delete", timeout=10))["payload"] == posted["id"]
    finally:
        first.stop()
        second.stop()
    for process in (first, second):
        assert "Traceback" not in process.server_log()



def _start_group(node: NodeProcess, log) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "fedsph", "serve", "--processes", "2"],
                                env=node.env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.postgres
async def test_serve_processes_share_events_through_the_database(tmp_path, pg_database_url):
    """`fedsph serve --processes 2`: streams land on both children (the kernel spreads the
    connections), and each gets a post made through whichever child took the request."""
    node = NodeProcess(tmp_path / "n", FEDSPH_DATABASE_URL=pg_database_url)
    node.cli("migrate")
    settings = load_settings(environ={}, base_url=node.base, data_dir=tmp_path / "n",
                             database_url=pg_database_url)
    async with open_node(settings) as opened:
        token, _person = await member_token(opened, "ana", None)
    log = tmp_path / "group.log"
    group = await asyncio.to_thread(_start_group, node, log)
    try:
        wait_for(lambda: len(set(SERVING.findall(log.read_text()))) == 2, timeout=120,
                 what="both children to listen")
        url = f"{ws_base(node.base)}/api/v1/streaming?stream=public"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            # 16: all on one child by chance once in 2^15 runs
            streams = [await http.ws_connect(url) for _ in range(16)]
            status, posted = await api(node, token, "POST", "/api/v1/statuses",
                                       data={"status": "Para todos los procesos"})
            assert status == 200
            for ws in streams:
                event = await next_event(ws, "update", timeout=10)
                assert json.loads(event["payload"])["id"] == posted["id"]
            for ws in streams:
                await ws.close()
        # Which child held each stream: its access line, written when the stream closed.
        wait_for(lambda: len(set(STREAM_ACCESS.findall(log.read_text()))) == 2, timeout=10,
                 what="streams held by both children")
    finally:
        stop_process(group)
    assert "Traceback" not in log.read_text()


async def test_savepoint_events_go_with_their_savepoint_and_never_to_a_later_commit(node):
    """Review 2, item 5: rolled back with a savepoint, kept with a released one, and a root
    committed with a savepoint open leaves nothing for the session's next transaction."""
    _, ana = await member_token(node, "ana", None)

    async def events_of(obj) -> int:
        async with node.readers() as db:
            return await db.scalar(select(func.count()).select_from(StreamEvent).where(
                StreamEvent.ref_id == obj.id, StreamEvent.kind == "update"))

    async with node.writers() as db:
        async with db.begin():
            author = await db.get(Actor, ana.id)
            async with db.begin_nested() as savepoint:
                dropped = await publish_post(db, node.urls, author, contents={"": "deshecha"})
                await db.flush()
                dropped_uri = dropped.uri
                await savepoint.rollback()
            async with db.begin_nested():
                kept = await publish_post(db, node.urls, author, contents={"": "guardada"})
        assert await events_of(kept) == 1
        async with node.readers() as db2:
            # The savepoint's post is gone, and so is its event: only the kept post's is there
            # (SQLite gives the kept post the id the dropped one had).
            assert await db2.scalar(select(Object.id).where(Object.uri == dropped_uri)) is None
            assert await db2.scalar(select(func.count()).select_from(StreamEvent).where(
                StreamEvent.kind == "update", StreamEvent.actor_id == ana.id)) == 1
        await db.begin()
        author = await db.get(Actor, ana.id)
        await db.begin_nested()
        open_one = await publish_post(db, node.urls, author, contents={"": "abierta"})
        await db.flush()
        await db.commit()  # the root, the savepoint still open
        written = await events_of(open_one)
        assert written == 1  # the root commit writes the open savepoint's events
        async with db.begin():  # the same session's next transaction
            await publish_post(db, node.urls, await db.get(Actor, ana.id),
                               contents={"": "siguiente"})
        assert await events_of(open_one) == written  # not written again, nor late
        assert not db.sync_session.info.get(stream_events.PENDING)
