"""Limits (issue 10): what a stranger can make this node store or load is bounded.

Processed queue rows are pruned after FEDSPH_INBOX_RETENTION_DAYS; reply lists are capped in
the query; relay subscriptions wait for a coordinator, unless allow-listed, and are capped (approved and
waiting ones separately), one per server (by host).
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select

from fedsph.errors import UserError
from fedsph.hub import relay
from fedsph.hub.relay import decide_subscription, forward_to_relays
from fedsph.models import Activity, Actor, Delivery, Follow, InboxItem, Object, utcnow
from fedsph.projects.outbox import publish_text_post
from fedsph.projects.queries import MAX_LISTED, comments_for
from tests.fakepeer import FakePeer
from tests.support.hub import hub_node, relay_follow, relay_rows
from tests.support.members import browser, login, make_user, post_form
from tests.support.nodes import cli_node, make_settings, start_node, statements

HTML = "text/html"


# -- pruning processed queue rows ----------------------------------------------------------------

async def add_queue_rows(node) -> dict[str, int]:
    """Inbox rows and deliveries in every state, old and recent; their ids by label."""
    old, recent = utcnow() - timedelta(days=8), utcnow() - timedelta(days=1)
    project = await node.create_actor("coop")
    ids = {}
    async with node.writers() as db, db.begin():
        activity = Activity(uri="https://x.example/a", type="Create", actor_id=project.id,
                            public=True, body=b"{}")
        db.add(activity)
        await db.flush()
        for status in ("done", "ignored", "failed", "pending"):
            for age, when in (("old", old), ("recent", recent)):
                item = InboxItem(activity_uri=f"https://x.example/{status}/{age}", type="Create",
                                 actor_uri="https://x.example/u", body=b"{}", status=status,
                                 created_at=when,
                                 finished_at=None if status == "pending" else when)
                db.add(item)
                await db.flush()
                ids[f"inbox {status} {age}"] = item.id
        for status in ("sent", "failed", "gone", "pending"):
            for age, when in (("old", old), ("recent", recent)):
                delivery = Delivery(activity_id=activity.id, inbox=f"https://x.example/{status}/"
                                    f"{age}/inbox", host="x.example", status=status,
                                    created_at=when,
                                    finished_at=None if status == "pending" else when)
                db.add(delivery)
                await db.flush()
                ids[f"delivery {status} {age}"] = delivery.id
    return ids


async def test_processed_rows_past_retention_are_pruned_pending_and_recent_kept(node):
    ids = await add_queue_rows(node)
    assert node.settings.inbox_retention_days == 7
    await node.worker()._prune_now_and_then()
    async with node.readers() as db:
        inbox = set(await db.scalars(select(InboxItem.id)))
        deliveries = set(await db.scalars(select(Delivery.id)))
    kept = {label for label, row in ids.items()
            if row in (inbox if label.startswith("inbox") else deliveries)}
    assert kept == {label for label in ids if "pending" in label or "recent" in label}


def test_queue_prune_from_the_command_line(fedsph):
    code, out = fedsph("migrate")
    assert code == 0, out
    code, out = fedsph("queue", "--prune")
    assert code == 0 and "pruned 0 inbox row(s) and 0 deliveries" in out, out


# -- reply lists are capped in the query -------------------------------------------------------

async def post_with_replies(node, count: int) -> Object:
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, await db.get(Actor, project.id), "Assembly")
        stranger = Actor(uri="https://spam.example/users/s", local=False, type="Person",
                         username="s", domain="spam.example", name="S")
        db.add(stranger)
        await db.flush()
        start = utcnow() - timedelta(hours=1)
        for i in range(count):
            db.add(Object(uri=f"https://spam.example/notes/{i}", type="Note", local=False,
                          actor_id=stranger.id, content=f"<p>reply number {i}.</p>",
                          in_reply_to=post.uri, published=start + timedelta(seconds=i)))
        return post


async def get_page(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Accept": HTML}) as resp:
        return resp.status, await resp.text()


async def test_post_page_shows_one_page_of_replies_loaded_with_a_limit(node):
    post = await post_with_replies(node, MAX_LISTED + 10)
    with statements(node) as seen:
        status, body = await get_page(post.uri)
    assert status == 200
    shown = [i for i in range(MAX_LISTED + 10) if f"reply number {i}." in body]
    assert shown == list(range(MAX_LISTED))
    assert f"({MAX_LISTED + 10})" in body and 'rel="next"' in body
    replies_query = [s for s in seen if "objects.in_reply_to = " in s.partition("WHERE")[2]
                     and "count(" not in s]
    assert replies_query and all("LIMIT" in s for s in replies_query)
    status, body = await get_page(post.uri + "?page=2")
    shown = [i for i in range(MAX_LISTED + 10) if f"reply number {i}." in body]
    assert status == 200 and shown == list(range(MAX_LISTED, MAX_LISTED + 10))
    assert 'rel="prev"' in body and 'rel="next"' not in body
    async with node.readers() as db:
        assert len(await comments_for(db, post)) == MAX_LISTED


async def test_api_context_caps_descendants_in_the_query(node):
    from fedsph.api.statuses import MAX_DESCENDANTS

    post = await post_with_replies(node, MAX_DESCENDANTS + 30)
    with statements(node) as seen:
        async with aiohttp.ClientSession() as http, http.get(
                f"{node.base}/api/v1/statuses/{post.id}/context") as resp:
            assert resp.status == 200
            context = await resp.json()
    assert len(context["descendants"]) == MAX_DESCENDANTS
    replies_query = [s for s in seen if "objects.in_reply_to IN" in s.partition("WHERE")[2]]
    assert replies_query and all("LIMIT" in s for s in replies_query)


# -- relay subscriptions -----------------------------------------------------------------------

async def relay_node(tmp_path, **overrides):
    return await start_node(make_settings(tmp_path, **overrides))


async def ask_to_subscribe(node, peer, name: str = "actor"):
    instance = peer.add_actor(name, "Application")
    status, text = await peer.post(instance, f"{node.base}/inbox", relay_follow(peer, instance))
    assert status == 202, text
    await node.run_worker()
    return instance


async def relay_a_member_post(node, hub) -> int:
    """A member's public activity offered to the relay; how many deliveries it queued."""
    activity = {"@context": "https://www.w3.org/ns/activitystreams",
                "id": "https://elsewhere.example/a/1", "type": "Create",
                "actor": "https://elsewhere.example/users/a",
                "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "object": {"type": "Note", "content": "x"}, "proof": {"type": "DataIntegrityProof"}}
    async with node.writers() as db, db.begin():
        before = await db.scalar(select(func.count(Delivery.id)))
        await forward_to_relays(db, await db.get(Actor, hub.id), orjson.dumps(activity))
        return await db.scalar(select(func.count(Delivery.id))) - before


async def test_unknown_subscriber_waits_for_approval_and_gets_nothing_until_then(node, peer):
    hub = await hub_node(node)
    instance = await ask_to_subscribe(node, peer)
    (row,) = await relay_rows(node)
    assert row.state == "pending"
    assert peer.activities("Accept") == [] and peer.activities("Reject") == []
    assert await relay_a_member_post(node, hub) == 0
    await node.run_worker()
    assert [r.activity["type"] for r in peer.received] == []

    async with node.writers() as db, db.begin():
        subscriber = await db.scalar(select(Actor).where(Actor.uri == instance.uri))
        await decide_subscription(db, node.urls, await db.get(Actor, hub.id), subscriber, True)
    await node.run_worker()
    (accept,) = peer.activities("Accept")
    assert accept["object"]["object"] == "https://www.w3.org/ns/activitystreams#Public"
    assert [r.state for r in await relay_rows(node)] == ["accepted"]


async def test_coordinator_rejects_a_subscription(node, peer):
    hub = await hub_node(node)
    instance = await ask_to_subscribe(node, peer)
    async with node.writers() as db, db.begin():
        subscriber = await db.scalar(select(Actor).where(Actor.uri == instance.uri))
        await decide_subscription(db, node.urls, await db.get(Actor, hub.id), subscriber, False)
    await node.run_worker()
    assert len(peer.activities("Reject")) == 1 and peer.activities("Accept") == []
    assert await relay_rows(node) == []
    assert await relay_a_member_post(node, hub) == 0


async def test_allow_listed_server_is_approved_at_once(tmp_path, peer):
    node = await relay_node(tmp_path, relay_allow="other.example, 127.0.0.1")
    try:
        hub = await hub_node(node)
        await ask_to_subscribe(node, peer)
        assert [r.state for r in await relay_rows(node)] == ["accepted"]
        assert len(peer.activities("Accept")) == 1
        assert await relay_a_member_post(node, hub) == 1
    finally:
        await node.runner.cleanup()


async def assert_rejected_and_not_stored(node, peer, late) -> None:
    """`late` got a Reject of its Follow and has no relay row here."""
    (reject,) = peer.activities("Reject")
    assert reject["to"] == [late.uri] and reject["object"]["actor"] == late.uri
    async with node.readers() as db:
        late_row = await db.scalar(select(Actor.id).where(Actor.uri == late.uri))
        assert await db.scalar(select(Follow).where(Follow.follower_id == late_row)) is None


async def test_waiting_subscriptions_past_their_cap_are_rejected_and_not_stored(node, peer,
                                                                              monkeypatch):
    """Pending requests have a cap of their own (RELAY_MAX_PENDING): strangers cannot fill the
    places of the servers a coordinator would approve."""
    monkeypatch.setattr(relay, "RELAY_MAX_PENDING", 1)
    other = await FakePeer(host="127.0.0.2").start()  # another host: another server
    try:
        await hub_node(node)
        await ask_to_subscribe(node, peer)
        late = await ask_to_subscribe(node, other)
        assert [row.state for row in await relay_rows(node)] == ["pending"]
        assert peer.activities("Reject") == []
        await assert_rejected_and_not_stored(node, other, late)
    finally:
        await other.stop()


async def test_waiting_subscriptions_do_not_take_the_approved_places(tmp_path, peer):
    node = await relay_node(tmp_path, relay_max_subscribers=1)
    other = await FakePeer(host="127.0.0.2").start()
    try:
        await hub_node(node)
        await ask_to_subscribe(node, peer)
        await ask_to_subscribe(node, other)
        assert [row.state for row in await relay_rows(node)] == ["pending", "pending"]
        assert peer.activities("Reject") == [] and other.activities("Reject") == []
    finally:
        await other.stop()
        await node.runner.cleanup()


async def test_subscriptions_past_the_approved_cap_are_rejected_and_not_stored(tmp_path, peer):
    node = await relay_node(tmp_path, relay_max_subscribers=1, relay_allow="127.0.0.1, 127.0.0.2")
    other = await FakePeer(host="127.0.0.2").start()
    try:
        await hub_node(node)
        await ask_to_subscribe(node, peer)
        late = await ask_to_subscribe(node, other)
        assert [row.state for row in await relay_rows(node)] == ["accepted"]
        await assert_rejected_and_not_stored(node, other, late)
    finally:
        await other.stop()
        await node.runner.cleanup()


async def test_a_second_actor_of_the_same_server_is_rejected(node, peer):
    await hub_node(node)
    await ask_to_subscribe(node, peer, "first")
    second = await ask_to_subscribe(node, peer, "second")
    await assert_rejected_and_not_stored(node, peer, second)
    assert len(await relay_rows(node)) == 1


async def test_another_port_of_the_same_host_is_the_same_server(node, peer):
    await hub_node(node)
    await ask_to_subscribe(node, peer, "first")
    same_host = await FakePeer().start()  # 127.0.0.1 again, on another port
    try:
        late = await ask_to_subscribe(node, same_host)
        await assert_rejected_and_not_stored(node, same_host, late)
        assert len(await relay_rows(node)) == 1
    finally:
        await same_host.stop()


async def store_actor(node, uri: str) -> Actor:
    async with node.writers() as db, db.begin():
        actor = Actor(uri=uri, local=False, type="Application", username=uri.rsplit("/", 1)[-1],
                      domain=uri.split("/")[2], inbox=uri + "/inbox")
        db.add(actor)
    return actor


@pytest.mark.parametrize("spelling", ["https://x@EVIL.example/actor", "https://evil.example:443/a",
                                      "https://Evil.Example./relay"])
async def test_spellings_of_one_host_are_one_server(node, spelling):
    hub = await hub_node(node)
    subscribed = await store_actor(node, "https://evil.example/actor")
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=subscribed.id, followed_id=hub.id, relay=True, state="pending"))
    newcomer = await store_actor(node, spelling)
    async with node.readers() as db:
        refusal = await relay.subscription_refusal(db, node.settings, hub, newcomer)
    assert refusal and "evil.example" in refusal


async def test_coordinators_approve_a_relay_subscription_on_the_manage_page(node, peer):
    hub = await hub_node(node)
    instance = await ask_to_subscribe(node, peer)
    await make_user(node, "admin", admin=True)
    async with node.readers() as db:
        subscriber_id = await db.scalar(select(Actor.id).where(Actor.uri == instance.uri))
    async with browser() as client:
        await login(client, node, "admin")
        async with client.get(f"{node.base}/hub/manage") as resp:
            page = await resp.text()
        assert resp.status == 200 and instance.uri in page and "relay-approve" in page
        async with client.post(f"{node.base}/hub/manage", data={
                "action": "relay-approve", "subscriber": str(subscriber_id)}) as resp:
            assert resp.status == 403  # no CSRF token: nothing changes
        assert [r.state for r in await relay_rows(node)] == ["pending"]
        response = await post_form(client, f"{node.base}/hub/manage",
                                   {"action": "relay-approve", "subscriber": "nope"})
        assert response.status == 400
        response = await post_form(client, f"{node.base}/hub/manage",
                                   {"action": "relay-approve", "subscriber": str(subscriber_id)})
        assert response.status == 303
    assert [r.state for r in await relay_rows(node)] == ["accepted"]
    await node.run_worker()
    assert len(peer.activities("Accept")) == 1
    assert await relay_a_member_post(node, hub) == 1


async def test_an_ordinary_follower_of_the_hub_still_waits_to_subscribe(node, peer):
    hub = await hub_node(node)
    instance = peer.add_actor("actor", "Application")
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
              "type": "Follow", "actor": instance.uri, "object": hub.uri}
    assert (await peer.post(instance, f"{node.base}/inbox", follow))[0] == 202
    await node.run_worker()
    assert (await peer.post(instance, f"{node.base}/inbox", relay_follow(peer, instance)))[0] == 202
    await node.run_worker()
    assert [r.state for r in await relay_rows(node)] == ["pending"]
    assert await relay_a_member_post(node, hub) == 0


async def test_relay_commands_list_approve_and_reject(node, peer, capsys):
    import argparse

    from fedsph.hub.commands import COMMANDS

    async def relay_cli(action: str, subscriber: str | None = None) -> str:
        args = argparse.Namespace(relay_action=action, subscriber=subscriber)
        assert await COMMANDS["hub relay"](cli_node(node), args) == 0
        return capsys.readouterr().out

    hub = await hub_node(node)
    instance = await ask_to_subscribe(node, peer)
    assert f"{instance.uri}\tpending" in await relay_cli("list")
    assert "approved" in await relay_cli("approve", instance.uri)
    assert f"{instance.uri}\taccepted" in await relay_cli("list")
    assert "rejected" in await relay_cli("reject", instance.uri)
    assert await relay_cli("list") == ""
    assert await relay_a_member_post(node, hub) == 0
    with pytest.raises(UserError, match="has not asked"):
        await relay_cli("approve", "https://nobody.example/actor")


async def test_follower_and_request_lists_of_the_manage_page_are_capped(node):
    from fedsph.projects.queries import relation_actors
    from fedsph.web.project_manage import _manage_context

    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        for i in range(MAX_LISTED + 5):
            for state in ("accepted", "pending"):
                other = Actor(uri=f"https://spam.example/users/{state}{i}", local=False,
                              type="Person", username=f"{state}{i}", domain="spam.example")
                db.add(other)
                await db.flush()
                db.add(Follow(follower_id=other.id, followed_id=project.id, state=state))
    async with node.readers() as db:
        owner = await db.get(Actor, project.id)
        assert len(await relation_actors(db, owner, followers=True)) == MAX_LISTED
        context = await _manage_context(db, owner)
    assert len(context["followers"]) == MAX_LISTED and len(context["requests"]) == MAX_LISTED
