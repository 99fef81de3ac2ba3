"""A hub as a relay (FEP-ae0c): a Mastodon server subscribes with Follow{as:Public}, and the
hub forwards its members' public activities unchanged, their integrity proofs intact."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from fedsph.federation.httpsig import parse_signature_header
from fedsph.hub.relay import decide_subscription, forward_to_relays
from fedsph.models import Activity, Actor, Follow, InboxItem
from fedsph.projects.outbox import publish_text_post
from tests.mastodon_peer import AS, PUBLIC, MastodonPeer
from tests.support.hub import RelaySubscriber, hub_node, relay_follow, relay_rows
from tests.support.proofs import independent_verify, method_of


async def subscribe(node, peer, hub, inbox: str):
    """A server asks to subscribe and a coordinator approves it (`fedsph hub relay approve`):
    until then it is pending and gets nothing (tests/hostile/test_limits.py)."""
    instance = peer.add_actor("actor", "Application")
    follow = relay_follow(peer, instance)
    status, text = await peer.post(instance, inbox, follow)
    assert status == 202, text
    await node.run_worker()
    async with node.writers() as db, db.begin():
        subscriber = await db.scalar(select(Actor).where(Actor.uri == instance.uri))
        await decide_subscription(db, node.urls, await db.get(Actor, hub.id), subscriber, True)
    await node.run_worker()
    return instance, follow


async def test_mastodon_subscribes_and_gets_the_original_create_with_its_proof(node):
    peer = await RelaySubscriber().start()
    try:
        hub = await hub_node(node)
        coop = await node.create_actor("coop")
        instance, follow = await subscribe(node, peer, hub, f"{node.base}/inbox")
        (accept,) = peer.activities("Accept")
        assert accept["actor"] == hub.uri and accept["to"] == [instance.uri]
        # Mastodon finds its relay by the Accept's object id = the Follow's id
        # (app/lib/activitypub/activity/accept.rb, app/models/relay.rb follow_activity_id).
        assert accept["object"] == {"id": follow["id"], "type": "Follow", "actor": instance.uri,
                                    "object": PUBLIC}
        (row,) = await relay_rows(node)
        assert row.state == "accepted" and row.followed_id == hub.id

        # A member's public update, as the hub received it: forwarded byte for byte.
        async with node.writers() as db, db.begin():
            note = await publish_text_post(db, node.urls, await db.get(Actor, coop.id), "Assembly")
            body = await db.scalar(select(Activity.body).where(
                Activity.type == "Create", Activity.object_uri == note.uri))
            await forward_to_relays(db, await db.get(Actor, hub.id), body)
            await forward_to_relays(db, await db.get(Actor, hub.id), body)  # once only
        _, coop_document = await peer.get(None, coop.uri)
        peer.author_keys[coop.uri] = method_of(coop_document)["publicKeyMultibase"]
        await node.run_worker()
        relayed = [r for r in peer.received if r.activity.get("type") == "Create"]
        assert len(relayed) == 1 and relayed[0].verified, peer.failures
        assert relayed[0].activity == orjson.loads(body)
        assert parse_signature_header(relayed[0].headers["signature"]).key_id == hub.key_id
        independent_verify(relayed[0].activity, peer.author_keys[coop.uri])
        assert not peer.failures
    finally:
        await peer.stop()


async def test_subscription_at_the_hub_inbox_and_undo(node):
    peer = await MastodonPeer().start()
    try:
        hub = await hub_node(node)
        instance, follow = await subscribe(node, peer, hub, f"{node.base}/actors/hub/inbox")
        assert len(await relay_rows(node)) == 1
        undo = {"@context": AS, "id": follow["id"] + "/undo", "type": "Undo",
                "actor": instance.uri, "object": follow}
        assert (await peer.post(instance, f"{node.base}/inbox", undo))[0] == 202
        await node.run_worker()
        assert await relay_rows(node) == []
        # Nobody subscribed: nothing is queued.
        async with node.writers() as db, db.begin():
            await forward_to_relays(db, await db.get(Actor, hub.id), orjson.dumps(
                {"@context": AS, "type": "Create", "actor": "x", "to": [PUBLIC], "proof": {}}))
            assert await db.scalar(select(Activity.id).where(Activity.actor_id == hub.id,
                                                             Activity.type == "Create")) is None
    finally:
        await peer.stop()


async def test_litepub_relay_following_the_hub_is_an_ordinary_follower(node, peer):
    hub = await hub_node(node)
    relay = peer.add_actor("relay", "Application")
    follow = {"@context": AS, "id": peer.new_id(), "type": "Follow", "actor": relay.uri,
              "object": hub.uri}
    assert (await peer.post(relay, f"{node.base}/inbox", follow))[0] == 202
    await node.run_worker()
    async with node.readers() as db:
        row = await db.scalar(select(Follow).where(Follow.followed_id == hub.id))
    assert row.state == "accepted" and not row.relay


async def test_follow_of_public_on_a_node_without_a_hub_is_ignored(node, peer):
    await node.create_actor("coop")
    instance = peer.add_actor("actor", "Application")
    assert (await peer.post(instance, f"{node.base}/inbox", relay_follow(peer, instance)))[0] == 202
    await node.run_worker()
    async with node.readers() as db:
        item = await db.scalar(select(InboxItem))
    assert item.status == "ignored" and "not a hub" in item.last_error
    assert peer.activities("Accept") == []


async def test_activities_without_a_proof_are_not_relayed(node, peer):
    hub = await hub_node(node)
    await subscribe(node, peer, hub, f"{node.base}/inbox")
    async with node.writers() as db, db.begin():
        before = await db.scalar(select(Activity.id).order_by(Activity.id.desc()).limit(1))
        await forward_to_relays(db, await db.get(Actor, hub.id), orjson.dumps(
            {"@context": AS, "id": peer.new_id(), "type": "Create", "actor": peer.base + "/users/a",
             "to": [PUBLIC], "object": {"type": "Note"}}))
        after = await db.scalar(select(Activity.id).order_by(Activity.id.desc()).limit(1))
    assert before == after


async def test_an_activity_is_relayed_once_whatever_its_bytes(node, peer):
    # FEP-ae0c (fep/ae0c/fep-ae0c.md, Activity Relaying): a relay forwards an activity it has not
    # already relayed. The same activity serialised anew (a redelivery) is not forwarded again.
    hub = await hub_node(node)
    await subscribe(node, peer, hub, f"{node.base}/inbox")
    activity = {"@context": AS, "id": "https://elsewhere.example/a/1", "type": "Create",
                "actor": "https://elsewhere.example/users/a", "to": [PUBLIC],
                "object": {"type": "Note", "content": "x"}, "proof": {"type": "DataIntegrityProof"}}
    async with node.writers() as db, db.begin():
        hub_row = await db.get(Actor, hub.id)
        await forward_to_relays(db, hub_row, orjson.dumps(activity))
        await forward_to_relays(db, hub_row, orjson.dumps(activity, option=orjson.OPT_SORT_KEYS))
        relayed = list(await db.scalars(select(Activity).where(
            Activity.actor_id == hub.id, Activity.uri.like("urn:fedsph:relayed:%"))))
    assert len(relayed) == 1
