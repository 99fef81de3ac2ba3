"""The streaming API against a node running in the test's loop (real HTTP, aiohttp's WebSocket
client): who gets which event, multiplexed subscriptions, bad input, limits, revoked tokens,
and events made by the worker from other servers' activities (fedsph/api/streaming.py)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from sqlalchemy import func, select, update

from fedsph.api import stream_hub, streaming
from fedsph.api.instance import streaming_url
from fedsph.api.tokens import issue_token
from fedsph.federation.actors import resolve_actor
from fedsph.models import OAuthApp, OAuthToken, Object, Reaction, StreamEvent, utcnow
from fedsph.projects.outbox import delete_post, edit_post_text, follow, publish_post
from fedsph.projects.outbox_reactions import announce_object, unannounce_object
from fedsph.web.keys import ENGINE, REMOTE
from tests.mastodon_schema import mismatches
from tests.support.members import api, member_token
from tests.support.nodes import make_settings, settle, start_node
from tests.support.streams import (
    accepted_follow,
    boost_scene,
    has_event,
    receive,
    status_with,
    ws_url,
)


async def test_health_and_instance_url(node):
    async with aiohttp.ClientSession() as http:
        async with http.get(node.base + "/api/v1/streaming/health") as answer:
            assert answer.status == 200 and await answer.text() == "OK"
        async with http.get(node.base + "/api/v2/instance") as answer:
            instance = await answer.json()
    assert instance["configuration"]["urls"]["streaming"] == "ws" + node.base[4:]
    assert "api_versions" not in instance  # a 4.2 server has none (fedsph/api/instance.py)
    assert streaming_url("https://node.example/") == "wss://node.example"


async def test_user_stream_gets_post_edit_delete_and_notification(node):
    token, ana = await member_token(node, "ana", None)
    _, bea = await member_token(node, "bea", None)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={token}")) as ws:
        status, posted = await api(node, token, "POST", "/api/v1/statuses",
                                   data={"status": "Hola desde el stream"})
        assert status == 200
        got = await receive(ws, has_event("update"))
        assert got[-1]["stream"] == ["user"]
        assert json.loads(got[-1]["payload"])["id"] == posted["id"]
        await api(node, token, "PUT", f"/api/v1/statuses/{posted['id']}",
                  data={"status": "Hola, editado"})
        await receive(ws, has_event("status.update", status_with("editado")))
        # bea follows ana (a local follow goes through the worker's local inbox)
        async with node.writers() as db, db.begin():
            await follow(db, node.urls, await db.get(type(bea), bea.id),
                         await db.get(type(ana), ana.id))
        await settle(node)
        got = await receive(ws, has_event("notification"))
        note = json.loads(next(m for m in got if m["event"] == "notification")["payload"])
        assert note["type"] == "follow" and note["account"]["id"] == str(bea.id)
        await api(node, token, "DELETE", f"/api/v1/statuses/{posted['id']}")
        got = await receive(ws, has_event("delete"))
        assert got[-1]["payload"] == posted["id"]


async def test_followers_only_and_direct_posts_reach_only_those_who_may_see_them(node):
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    carla_token, _carla = await member_token(node, "carla", None)
    await accepted_follow(node, bea, ana)  # bea follows ana; carla does not
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={bea_token}")) as bea_ws, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={carla_token}")) as carla_ws, \
            http.ws_connect(ws_url(node, "stream=public")) as public_ws, \
            http.ws_connect(ws_url(node, "stream=public:local")) as local_ws:
        for text, visibility in (("solo seguidores", "private"), ("no listado", "unlisted"),
                                 ("directo a carla @carla", "direct"), ("para todos", "public")):
            status, _ = await api(node, ana_token, "POST", "/api/v1/statuses",
                                  data={"status": text, "visibility": visibility})
            assert status == 200
        await settle(node)  # the mention of carla is a notification
        last = has_event("update", status_with("para todos"))
        bea_got = await receive(bea_ws, last)
        # carla follows nobody: her notification (made after the four posts) ends her wait
        carla_got = await receive(carla_ws, has_event("notification"))
        public_got = await receive(public_ws, last)
        local_got = await receive(local_ws, last)

    def texts(messages):
        return [json.loads(m["payload"])["content"] for m in messages
                if m.get("event") == "update"]
    assert texts(bea_got) == [
        "<p>solo seguidores</p>", "<p>no listado</p>", "<p>para todos</p>"]
    [direct] = texts(carla_got)  # only the post addressed to her
    assert "directo a carla" in direct
    for got in (public_got, local_got):  # public only: not unlisted, followers or direct
        assert texts(got) == ["<p>para todos</p>"]


async def test_multiplexed_subscriptions_hashtag_and_errors(node):
    token, ana = await member_token(node, "ana", None)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node), protocols=(token,)) as ws:
        assert ws.protocol == token  # the token as Sec-WebSocket-Protocol, echoed back
        await ws.send_json({"type": "subscribe", "stream": "nonsense"})
        refused = await receive(ws, lambda m: m)
        assert refused == [{"error": "Unknown stream type", "status": 400}]
        assert mismatches(refused[0], "StreamingError") == []
        await ws.send_json({"type": "subscribe", "stream": "hashtag"})
        assert (await receive(ws, lambda m: m))[0]["error"] == "Missing tag name parameter"
        await ws.send_str("not json")
        assert (await receive(ws, lambda m: m))[0]["status"] == 400
        await ws.send_json({"type": "subscribe", "stream": "hashtag", "tag": "Huerta"})
        await ws.send_json({"type": "subscribe", "stream": "user:notification"})
        await asyncio.sleep(0.2)  # the subscriptions are read before the posts below
        async with node.writers() as db, db.begin():
            author = await db.get(type(ana), ana.id)
            await publish_post(db, node.urls, author, contents={"": "Sin etiqueta"})
            await publish_post(db, node.urls, author, contents={"": "Sembramos"},
                               hashtags=["huerta"])
        got = await receive(ws, has_event("update"))
        assert [m["stream"] for m in got] == [["hashtag", "Huerta"]]
        assert "Sembramos" in json.loads(got[0]["payload"])["content"]
        await ws.send_json({"type": "unsubscribe", "stream": "hashtag", "tag": "Huerta"})
        await ws.send_json({"type": "subscribe", "stream": "public"})
        await asyncio.sleep(0.2)
        async with node.writers() as db, db.begin():
            await publish_post(db, node.urls, await db.get(type(ana), ana.id),
                               contents={"": "Otra vez"}, hashtags=["huerta"])
        got = await receive(ws, has_event("update"))
        assert [m["stream"] for m in got] == [["public"]]


async def test_bad_requests_get_clear_errors_and_nothing_is_stored(node):
    token, _ana = await member_token(node, "ana", None)
    async with node.readers() as db:
        before = await db.scalar(select(func.count(StreamEvent.id)))
    async with aiohttp.ClientSession() as http:
        for path, status, error in (
                ("/api/v1/streaming/nonsense", 400, "Unknown stream type"),
                ("/api/v1/streaming/hashtag", 400, "Missing tag name parameter"),
                ("/api/v1/streaming/user", 401, "Missing access token"),
                ("/api/v1/streaming?stream=user%3Anotification", 401, "Missing access token"),
                ("/api/v1/streaming/user?access_token=wrong", 401, "The access token is invalid")):
            async with http.get(node.base + path) as answer:
                assert answer.status == status, path
                assert (await answer.json())["error"] == error
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url(node, "stream=user&access_token=wrong"))
        assert refused.value.status == 401
        # a message over the size limit closes the connection
        async with http.ws_connect(ws_url(node, f"access_token={token}")) as ws:
            await ws.send_str("x" * (streaming.MAX_CLIENT_MESSAGE + 1))
            message = await ws.receive()
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    async with node.readers() as db:
        assert await db.scalar(select(func.count(StreamEvent.id))) == before
    assert not node.app[streaming.HUB].listeners


async def test_connections_per_token_are_bounded(node, monkeypatch):
    monkeypatch.setattr(stream_hub, "MAX_PER_TOKEN", 2)
    token, _ana = await member_token(node, "ana", None)
    async with aiohttp.ClientSession() as http:
        first = await http.ws_connect(ws_url(node, f"stream=user&access_token={token}"))
        second = await http.ws_connect(ws_url(node, f"stream=user&access_token={token}"))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url(node, f"stream=user&access_token={token}"))
        assert refused.value.status == 429
        await first.close()
        await asyncio.sleep(0.1)
        third = await http.ws_connect(ws_url(node, f"stream=user&access_token={token}"))
        for ws in (second, third):
            await ws.close()


async def test_a_revoked_token_ends_its_streams(node, monkeypatch):
    monkeypatch.setattr(streaming, "HEARTBEAT_SECONDS", 0.3)
    token, _ana = await member_token(node, "ana", None)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={token}")) as ws, \
            http.get(node.base + "/api/v1/streaming/user",
                     headers={"Authorization": f"Bearer {token}"}) as sse:
        assert sse.status == 200 and sse.headers["Content-Type"] == "text/event-stream"
        async with node.writers() as db, db.begin():
            await db.execute(update(OAuthToken).values(revoked_at=utcnow()))
        got = await receive(ws, lambda m: m)
        assert got == [{"error": "The access token was revoked", "status": 401}]
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        async with asyncio.timeout(5):
            await sse.content.read()  # the server ends the response
    await asyncio.sleep(0.1)
    assert not node.app[streaming.HUB].listeners


async def test_nobody_streaming_costs_no_reads(node):
    """No stream open: no task reads the table (and a post writes one event row)."""
    token, ana = await member_token(node, "ana", None)
    hub = node.app[streaming.HUB]
    assert hub.task is None
    async with node.writers() as db, db.begin():
        await publish_post(db, node.urls, await db.get(type(ana), ana.id), contents={"": "x"})
    async with node.readers() as db:
        kinds = list(await db.scalars(select(StreamEvent.kind)))
    assert kinds == ["update"]
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={token}")):
        assert hub.task is not None
    for _ in range(400):  # up to 20 s: the task may be in the middle of a database read
        if hub.task is None:
            break
        await asyncio.sleep(0.05)
    assert hub.task is None  # the last stream closed: the task ended


async def test_a_received_post_edit_and_delete_reach_a_local_followers_stream(two_nodes):
    """Events the worker makes from other servers' activities (both engines)."""
    a, b = two_nodes
    token, rosa = await member_token(b, "rosa", None)
    author = await a.create_actor("obra")
    remote_id = await resolve_actor(b.writers, b.app[REMOTE], author.uri)
    async with b.writers() as db, db.begin():
        await follow(db, b.urls, await db.get(type(rosa), rosa.id),
                     await db.get(type(rosa), remote_id))
    await settle(a, b)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(b, f"stream=user&access_token={token}")) as ws:
        async with a.writers() as db, db.begin():
            obra = await db.get(type(author), author.id)
            post = await publish_post(db, a.urls, obra, contents={"": "Levantamos el techo"})
        await settle(a, b)
        got = await receive(ws, has_event("update", status_with("Levantamos")))
        status_id = json.loads(got[-1]["payload"])["id"]
        async with a.writers() as db, db.begin():
            obra = await db.get(type(author), author.id)
            await edit_post_text(db, a.urls, obra, await db.get(type(post), post.id),
                                 "Levantamos el techo del bloque B")
        await settle(a, b)
        await receive(ws, has_event("status.update", status_with("bloque B")))
        async with a.writers() as db, db.begin():
            obra = await db.get(type(author), author.id)
            await delete_post(db, a.urls, obra, await db.get(type(post), post.id))
        await settle(a, b)
        got = await receive(ws, has_event("delete"))
        assert got[-1]["payload"] == status_id



async def test_a_boost_by_a_followed_account_is_an_update_with_reblog(node):
    ana_token, bea_token, _, posted = await boost_scene(node)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={bea_token}")) as ws:
        status, wrapper = await api(node, ana_token, "POST",
                                    f"/api/v1/statuses/{posted['id']}/reblog")
        assert status == 200
        got = await receive(ws, has_event("update"))
    boost = json.loads(got[-1]["payload"])
    assert boost["reblog"]["id"] == posted["id"] and boost["account"] == wrapper["account"]
    assert boost["id"] == wrapper["id"] != posted["id"]
    assert mismatches(boost, "Status") == []


async def test_a_boost_of_a_post_home_shows_already_is_not_streamed(node):
    """As in home: a followed account's boost of a post by someone else followed is not sent
    again as a reblog (the post itself was)."""
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    carla_token, carla = await member_token(node, "carla", None)
    await accepted_follow(node, bea, ana)
    await accepted_follow(node, bea, carla)
    _, posted = await api(node, carla_token, "POST", "/api/v1/statuses",
                          data={"status": "Carla cuenta algo"})
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={bea_token}")) as ws:
        status, _ = await api(node, ana_token, "POST",
                              f"/api/v1/statuses/{posted['id']}/reblog")
        assert status == 200
        await api(node, carla_token, "POST", "/api/v1/statuses", data={"status": "Y después"})
        got = await receive(ws, has_event("update", status_with("Y después")))
    assert not [m for m in got if json.loads(m["payload"]).get("reblog")], got


async def test_shutdown_ends_open_streams(tmp_path):
    running = await start_node(make_settings(tmp_path))
    token, _ana = await member_token(running, "ana", None)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(running, f"stream=user&access_token={token}"))
        sse = await http.get(running.base + "/api/v1/streaming/public")
        assert sse.status == 200
        # The app answers the close handshake as a real one does (reading while it waits).
        async with asyncio.timeout(5):
            _, closing = await asyncio.gather(running.runner.cleanup(), ws.receive())
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await sse.content.read()
        sse.release()


async def test_an_event_committed_after_a_later_one_is_still_delivered(node):
    """PostgreSQL takes ids at INSERT, so id 2 can be visible before id 1: the hub asks again
    for the ids it skipped (stream_hub.GAP_SECONDS)."""
    hub = stream_hub.StreamHub(node.app[ENGINE], node.readers)
    listener = stream_hub.Listener(None, "test")
    hub.listeners.add(listener)  # no task: the reads below are the only ones
    async with node.readers() as db:
        first = hub.last_id = await db.scalar(select(func.max(StreamEvent.id))) or 0
    async with node.writers() as db, db.begin():
        db.add(StreamEvent(id=first + 2, kind="delete", ref_id=2, actor_id=1))
    await hub._read()
    assert list(hub.gaps) == [first + 1]
    async with node.writers() as db, db.begin():
        db.add(StreamEvent(id=first + 1, kind="delete", ref_id=1, actor_id=1))
    await hub._read()
    got = [listener.queue.get_nowait().ref_id for _ in range(listener.queue.qsize())]
    assert got == [2, 1] and not hub.gaps


async def test_a_user_stream_needs_a_read_scope(node):
    _token, ana = await member_token(node, "ana", None)
    async with node.writers() as db, db.begin():
        row = await db.scalar(select(OAuthToken))
        write_only, _ = await issue_token(db, await db.get(OAuthApp, row.app_id), row.user_id,
                                          ana.id, ["write"])
    async with aiohttp.ClientSession() as http:
        for path in ("/api/v1/streaming/user", "/api/v1/streaming/user/notification"):
            async with http.get(node.base + path,
                                headers={"Authorization": f"Bearer {write_only}"}) as answer:
                assert answer.status == 401
                assert (await answer.json())["error"] == \
                    "Access token does not have the required scopes"
        async with http.get(node.base + "/api/v1/streaming/public/local",
                            headers={"Authorization": f"Bearer {write_only}"}) as answer:
            assert answer.status == 200  # public streams need no scope
            assert node.app[streaming.HUB].listeners
    for _ in range(40):  # the server sees the app gone within GONE_CHECK_SECONDS
        if not node.app[streaming.HUB].listeners:
            break
        await asyncio.sleep(0.1)
    assert not node.app[streaming.HUB].listeners


async def test_a_received_undo_of_a_boost_streams_its_delete(two_nodes):
    """The worker's Undo{Announce} loads no post: the event reads it (review 2, item 2)."""
    a, b = two_nodes
    token, rosa = await member_token(b, "rosa", None)
    booster = await a.create_actor("obra")
    author = await a.create_actor("vecina")
    remote_id = await resolve_actor(b.writers, b.app[REMOTE], booster.uri)
    async with b.writers() as db, db.begin():
        await follow(db, b.urls, await db.get(type(rosa), rosa.id),
                     await db.get(type(rosa), remote_id))
    async with a.writers() as db, db.begin():
        post = await publish_post(db, a.urls, await db.get(type(author), author.id),
                                  contents={"": "Asamblea el jueves"})
    await settle(a, b)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(b, f"stream=user&access_token={token}")) as ws:
        async with a.writers() as db, db.begin():
            await announce_object(db, a.urls, await db.get(type(booster), booster.id),
                                  await db.get(type(post), post.id))
        await settle(a, b)
        got = await receive(ws, has_event("update"))
        boost = json.loads(got[-1]["payload"])
        assert "Asamblea" in boost["reblog"]["content"]
        boost_id = boost["id"]
        async with a.writers() as db, db.begin():
            await unannounce_object(db, a.urls, await db.get(type(booster), booster.id),
                                    await db.get(type(post), post.id))
        await settle(a, b)
        got = await receive(ws, has_event("delete"))
    assert got[-1]["payload"] == boost_id
    async with b.readers() as db:  # the boost is gone, its post stays
        assert await db.scalar(select(func.count()).select_from(Reaction)) == 0
        assert await db.scalar(select(func.count()).select_from(Object).where(
            Object.uri == post.uri, Object.deleted_at.is_(None))) == 1


async def test_a_deleted_posts_boosts_stream_their_deletes(node):
    """withdraw_boosts (fedsph/projects/deleted_boosts.py) takes a followed account's boost
    back with the post: a delete of the boost's id where the boost went."""
    ana_token, bea_token, carla_token, posted = await boost_scene(node)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url(node, f"stream=user&access_token={bea_token}")) as ws:
        _, boost = await api(node, ana_token, "POST", f"/api/v1/statuses/{posted['id']}/reblog")
        await receive(ws, has_event("update"))
        status, _ = await api(node, carla_token, "DELETE", f"/api/v1/statuses/{posted['id']}")
        assert status == 200
        got = await receive(ws, has_event("delete"))
    assert [m["payload"] for m in got if m["event"] == "delete"] == [boost["id"]]
