"""Blocks reach every path (issue 10 review): a blocked account's signed fetch sees no
followers-only post even when others on its server may, and nothing of ours is delivered to an
inbox on a blocked host or on this node, whatever the recipient's actor document says.
"""

from __future__ import annotations

from sqlalchemy import select

from fedsph.federation.actors import parse_actor_document, store_remote_actor
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.emit import enqueue_deliveries
from fedsph.models import Activity, Actor, Block, Delivery, InboxItem
from fedsph.projects.outbox import publish_text_post
from tests.support.db import add_remote_follower

AS = "https://www.w3.org/ns/activitystreams"


async def test_a_blocked_account_cannot_fetch_followers_only_posts(node, peer):
    project = await node.create_actor("coop")
    await add_remote_follower(node, project, peer.add_actor("bob"))
    mallory = peer.add_actor("mallory")
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Members only", visibility="followers")
    status, document = await peer.get(mallory, note.uri)
    assert status == 200 and document["id"] == note.uri  # her server is allowed: bob follows

    async with node.writers() as db, db.begin():
        db.add(Block(actor_uri=mallory.uri))
    status, document = await peer.get(mallory, note.uri)
    assert status == 404 and "Members only" not in str(document)
    assert (await peer.get(peer.actors["bob"], note.uri))[0] == 200  # her neighbours still may
    async with node.readers() as db:
        assert list(await db.scalars(select(InboxItem))) == []
        assert [b.actor_uri for b in await db.scalars(select(Block))] == [mallory.uri]


async def remote_actor(node, uri: str, **places) -> Actor:
    """A remote actor whose document names the inbox and shared inbox it likes."""
    document = {"@context": AS, "id": uri, "type": "Person", "preferredUsername": uri[-1],
                "inbox": places.get("inbox", f"{uri}/inbox"),
                "publicKey": {"id": f"{uri}#key", "owner": uri,
                              "publicKeyPem": generate_rsa_keypair()[1]}}
    if "shared" in places:
        document["endpoints"] = {"sharedInbox": places["shared"]}
    async with node.writers() as db, db.begin():
        return await store_remote_actor(db, parse_actor_document(document))


async def test_nothing_is_delivered_to_an_inbox_on_a_blocked_host_or_on_this_node(node):
    project = await node.create_actor("coop")
    recipients = [
        await remote_actor(node, "https://good.example/users/a",
                           shared="https://sub.evil.example/inbox"),
        await remote_actor(node, "https://good.example/users/b",
                           inbox="https://EVIL.example:8443/users/b/inbox"),
        await remote_actor(node, "https://good.example/users/c", shared=f"{node.base}/inbox"),
        await remote_actor(node, "https://good.example/users/d",
                           inbox=f"{node.base}/actors/coop/inbox"),
        await remote_actor(node, "https://good.example/users/e"),
    ]
    async with node.writers() as db, db.begin():
        db.add(Block(domain="evil.example"))
    async with node.writers() as db, db.begin():
        activity = Activity(uri=f"{project.uri}/activities/1", type="Create",
                            actor_id=project.id, body=b"{}")
        db.add(activity)
        await db.flush()
        assert await enqueue_deliveries(db, activity, [await db.get(Actor, r.id)
                                                        for r in recipients]) == 1
    async with node.readers() as db:
        assert list(await db.scalars(select(Delivery.inbox))) == [
            "https://good.example/users/e/inbox"]
        assert list(await db.scalars(select(InboxItem))) == []  # no local delivery either
