"""Review findings on the handlers and the worker: the Mobilizon organiser exception, replayed
Creates, actor Updates, boosts of blocked posts, and what a hub re-shares.

An in-process node and FakePeers on loopback; every refused attack is also checked for what it
must not have done (rows, stored documents, requests the node must not have made).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from fedsph.federation.blocks import block_account, block_domain
from fedsph.federation.proofs import generate_proof_key, multikey, sign_activity
from fedsph.hub.membership import ensure_hub
from fedsph.models import (
    Activity,
    Actor,
    Delivery,
    Follow,
    HubMembership,
    InboxItem,
    Object,
    Reaction,
)
from tests.fakepeer import AS, FakePeer, PeerActor
from tests.support.db import add_follow, store_remote
from tests.support.nodes import make_settings, start_node

PUBLIC = AS + "#Public"


async def deliver(node, peer: FakePeer, sender: PeerActor, kind: str, obj, **extra) -> str:
    """`sender` posts an activity to the node's shared inbox; the worker handles it. Its status."""
    activity = {"@context": AS, "id": peer.new_id(), "type": kind, "actor": sender.uri,
                "object": obj, "to": [PUBLIC], **extra}
    assert (await peer.post(sender, node.urls.shared_inbox(), activity))[0] == 202
    await node.run_worker()
    async with node.readers() as db:
        return await db.scalar(select(InboxItem.status).where(
            InboxItem.activity_uri == activity["id"]))


async def stored(node, uri: str) -> Object | None:
    async with node.readers() as db:
        return await db.scalar(select(Object).where(Object.uri == uri))


async def follower_of(node, *followed: PeerActor) -> Actor:
    """A local member who follows each of `followed` (so their posts concern this node)."""
    member = await node.create_actor("ana", "Person")
    for actor in followed:
        await add_follow(node, member, await store_remote(node, actor.document))
    return member


def event(peer: FakePeer, organiser: PeerActor, owner: PeerActor, name: str, **extra) -> dict:
    return {"id": peer.new_id("events"), "type": "Event", "name": name, "actor": organiser.uri,
            "attributedTo": owner.uri, "to": [PUBLIC], "startTime": "2027-05-01T15:00:00Z",
            "published": "2026-11-01T10:00:00Z", **extra}


# -- 1. the Mobilizon organiser exception -------------------------------------------------------

async def test_an_account_cannot_post_an_event_as_another_person_of_its_server(node, peer):
    alice, mallory = peer.add_actor("alice"), peer.add_actor("mallory")
    await follower_of(node, alice)
    forged = event(peer, mallory, alice, "Fake assembly")
    assert await deliver(node, peer, mallory, "Create", forged) == "ignored"
    assert await stored(node, forged["id"]) is None
    forged["updated"] = "2026-11-02T10:00:00Z"
    assert await deliver(node, peer, mallory, "Update", forged) == "ignored"
    assert await stored(node, forged["id"]) is None


async def test_another_organiser_of_the_group_cannot_edit_or_delete_its_event(node, peer):
    group = peer.add_actor("network", "Group")
    organiser, mallory = peer.add_actor("emorrp1"), peer.add_actor("mallory")
    await follower_of(node, group)
    genuine = event(peer, organiser, group, "Asamblea")
    assert await deliver(node, peer, organiser, "Create", genuine) == "done"

    taken = {**genuine, "actor": mallory.uri, "name": "Cancelled, go home",
             "updated": "2026-11-02T10:00:00Z"}
    assert await deliver(node, peer, mallory, "Update", taken) == "ignored"
    assert await deliver(node, peer, mallory, "Delete", genuine["id"]) == "ignored"
    kept = await stored(node, genuine["id"])
    assert kept.deleted_at is None and kept.name == "Asamblea"
    assert kept.document["actor"] == organiser.uri

    # The organiser who made it still may edit it.
    edited = {**genuine, "name": "Asamblea (aula 2)", "updated": "2026-11-03T10:00:00Z"}
    assert await deliver(node, peer, organiser, "Update", edited) == "done"
    assert (await stored(node, genuine["id"])).name == "Asamblea (aula 2)"


# -- 2. a Create sent again never rolls back an edit ---------------------------------------------

async def test_a_replayed_create_does_not_roll_back_an_edit(node, peer):
    bob = peer.add_actor("bob")
    await follower_of(node, bob)
    v1 = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": bob.uri,
          "content": "<p>first version</p>", "to": [PUBLIC],
          "published": "2026-11-01T10:00:00Z"}
    v2 = {**v1, "content": "<p>second version</p>", "updated": "2026-11-02T10:00:00Z"}
    assert await deliver(node, peer, bob, "Create", v1) == "done"
    assert await deliver(node, peer, bob, "Update", v2) == "done"
    # The same Create again (a relay, or a replay once the inbox row was pruned).
    await deliver(node, peer, bob, "Create", v1)
    kept = await stored(node, v1["id"])
    assert "second version" in kept.content and kept.document["content"] == v2["content"]
    # An older Update is refused by the same rule.
    older = {**v1, "content": "<p>older edit</p>", "updated": "2026-11-01T12:00:00Z"}
    assert await deliver(node, peer, bob, "Update", older) == "ignored"
    assert "second version" in (await stored(node, v1["id"])).content


# -- 3. an actor's Update is refetched, never read ------------------------------------------------

async def test_an_actor_update_never_brings_keys_nor_an_old_document(node, peer):
    """An Update of an actor signed by the actor itself is read as Mastodon reads it, its keys
    excepted; one relayed with an older proof (relayed again, maybe by anyone) changes nothing,
    and the actor's own document decides (fedsph.federation.actors.embedded_update_is_fresh,
    values_from_update)."""
    bob = peer.add_actor("bob")
    proof_pem = generate_proof_key()
    bob.document["assertionMethod"] = [multikey(bob.uri, proof_pem)]
    await follower_of(node, bob)
    other_key = peer.add_actor("eve").public_pem
    embedded = {**bob.document, "name": "Bob Renamed", "inbox": peer.base + "/users/bob/inbox2",
                "publicKey": {**bob.document["publicKey"], "publicKeyPem": other_key}}
    assert await deliver(node, peer, bob, "Update", embedded) == "done"
    cached = await cached_actor(node, bob.uri)
    assert cached.name == "Bob Renamed" and cached.inbox == peer.base + "/users/bob/inbox2"
    assert cached.public_key_pem.strip() == bob.public_pem.strip()  # keys: never from an Update

    old = sign_activity({"@context": AS, "id": peer.new_id(), "type": "Update", "actor": bob.uri,
                         "object": {**embedded, "name": "Rolled back", "inbox": peer.base + "/x"},
                         "to": [PUBLIC]}, bob.uri, proof_pem, created=datetime(2026, 1, 1, tzinfo=UTC))
    relay = peer.add_actor("relay")
    gets = len(peer.gets())
    assert (await peer.post(relay, node.urls.shared_inbox(), old))[0] == 202
    await node.run_worker()
    cached = await cached_actor(node, bob.uri)
    assert cached.name == "Bob" and cached.inbox == bob.document["inbox"]  # its own document
    assert peer.gets()[gets:].count("/users/bob") >= 1  # refetched from its own id
    assert cached.public_key_pem.strip() == bob.public_pem.strip()


async def test_an_actor_update_signed_by_the_actor_is_read_whatever_its_proof_time(node, peer):
    """Its own server sent it now (the HTTP signature is fresh): as new as a fetch, which may even
    come from a cache of the old document (two fedsph nodes: the Update sent when a solidarity
    link is accepted carries a proof made before our last fetch of the actor)."""
    bob = peer.add_actor("bob")
    proof_pem = generate_proof_key()
    bob.document["assertionMethod"] = [multikey(bob.uri, proof_pem)]
    await follower_of(node, bob)
    embedded = {**bob.document, "name": "Bob Renamed"}
    update = sign_activity({"@context": AS, "id": peer.new_id(), "type": "Update",
                            "actor": bob.uri, "object": embedded, "to": [PUBLIC]},
                           bob.uri, proof_pem, created=datetime(2026, 1, 1, tzinfo=UTC))
    assert (await peer.post(bob, node.urls.shared_inbox(), update))[0] == 202
    await node.run_worker()
    assert (await cached_actor(node, bob.uri)).name == "Bob Renamed"


async def cached_actor(node, uri: str) -> Actor:
    async with node.readers() as db:
        return await db.scalar(select(Actor).where(Actor.uri == uri))


# -- 4. boosts respect blocks ---------------------------------------------------------------------

@pytest.fixture
async def blocked_host():
    fake = await FakePeer(host="127.0.0.2").start()
    yield fake
    await fake.stop()


def hosted_note(host: FakePeer, author: PeerActor) -> dict:
    document = {"id": host.new_id("notes"), "type": "Note", "attributedTo": author.uri,
                "content": "<p>from a blocked place</p>", "to": [PUBLIC],
                "published": "2026-11-01T10:00:00Z"}
    host.objects[document["id"]] = document
    return document


async def nothing_kept_of(node, host: FakePeer, document: dict, author: PeerActor) -> None:
    assert await stored(node, document["id"]) is None
    async with node.readers() as db:
        assert await db.scalar(select(Actor.id).where(Actor.uri == author.uri)) is None
        assert await db.scalar(select(func.count(Reaction.id))) == 0


async def test_a_boost_of_a_post_on_a_blocked_server_fetches_and_keeps_nothing(
        node, peer, blocked_host):
    bob = peer.add_actor("bob")
    await follower_of(node, bob)
    evil = blocked_host.add_actor("evil")
    document = hosted_note(blocked_host, evil)
    async with node.writers() as db, db.begin():
        await block_domain(db, "127.0.0.2")
    for boosted in (document["id"], document):  # a bare id, or embedded
        assert await deliver(node, peer, bob, "Announce", boosted) == "ignored"
    assert blocked_host.requests == []
    await nothing_kept_of(node, blocked_host, document, evil)


async def test_a_boost_of_a_blocked_accounts_post_fetches_and_keeps_nothing(node, peer):
    bob, evil = peer.add_actor("bob"), peer.add_actor("evil")
    await follower_of(node, bob)
    document = hosted_note(peer, evil)
    evil_row = await store_remote(node, evil.document)
    async with node.writers() as db, db.begin():
        await block_account(db, await db.get(Actor, evil_row.id))
        await db.delete(await db.get(Actor, evil_row.id))  # blocked, and nothing cached of it
    seen = len(peer.requests)
    assert await deliver(node, peer, bob, "Announce", document) == "ignored"
    assert [path for _, path in peer.requests[seen:] if path != "/inbox"] == []
    await nothing_kept_of(node, peer, document, evil)


async def test_a_move_to_a_blocked_server_fetches_and_changes_nothing(node, peer, blocked_host):
    bob = peer.add_actor("bob")
    member = await follower_of(node, bob)
    target = blocked_host.add_actor("bob", alsoKnownAs=[bob.uri])
    async with node.writers() as db, db.begin():
        await block_domain(db, "127.0.0.2")
    assert await deliver(node, peer, bob, "Move", bob.uri, target=target.uri) == "ignored"
    assert blocked_host.requests == []
    async with node.readers() as db:
        cached = await db.scalar(select(Actor).where(Actor.uri == bob.uri))
        assert cached.moved_to is None
        assert await db.scalar(select(Actor.id).where(Actor.uri == target.uri)) is None
        assert await db.scalar(select(func.count(Follow.id)).where(
            Follow.follower_id == member.id, Follow.followed_id == cached.id)) == 1


# -- 5. a hub re-shares by the stored post's visibility -------------------------------------------

@pytest.fixture
async def hub_node(tmp_path):
    running = await start_node(make_settings(tmp_path, hub=True, hub_name="Red Hub"))
    yield running
    await running.runner.cleanup()


async def hub_with_member(hub_node, member: PeerActor, follower: PeerActor,
                          relay: PeerActor) -> Actor:
    """The hub, `member` approved in it, `follower` following it and `relay` subscribed to it."""
    async with hub_node.writers() as db, db.begin():
        hub = await ensure_hub(db, hub_node.urls, hub_node.settings.domain, name="Red Hub")
    member_row = await store_remote(hub_node, member.document)
    await add_follow(hub_node, await store_remote(hub_node, follower.document), hub)
    await add_follow(hub_node, hub, member_row)
    relay_row = await store_remote(hub_node, relay.document)
    async with hub_node.writers() as db, db.begin():
        db.add(HubMembership(hub_id=hub.id, project_id=member_row.id, state="approved"))
        db.add(Follow(follower_id=relay_row.id, followed_id=hub.id, state="accepted",
                      relay=True, activity_uri=relay.uri + "/follows/hub"))
    return hub


async def test_a_public_create_around_a_direct_post_is_not_reshared_nor_relayed(hub_node, peer):
    relay_host = await FakePeer().start()
    try:
        member, follower = peer.add_actor("coop", "Group"), peer.add_actor("carla")
        hub = await hub_with_member(hub_node, member, follower, relay_host.add_actor("relay"))
        private = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": member.uri,
                   "content": "<p>only for the hub</p>", "to": [hub.uri],
                   "published": "2026-11-01T10:00:00Z"}
        # Addressed to Public around the post, with an (unchecked) LD signature a relay wants.
        assert await deliver(hub_node, peer, member, "Create", private, to=[PUBLIC],
                             signature={"type": "RsaSignature2017"}) == "done"
        assert (await stored(hub_node, private["id"])).visibility == "direct"
        await hub_node.run_worker()
        async with hub_node.readers() as db:
            assert await db.scalar(select(func.count(Activity.id)).where(
                Activity.actor_id == hub.id)) == 0
            assert await db.scalar(select(func.count(Delivery.id))) == 0
        assert peer.activities("Announce") == [] and relay_host.received == []
    finally:
        await relay_host.stop()
