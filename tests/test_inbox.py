"""POSTs to fedsph's inboxes as a remote server makes them: what is accepted, and every refusal
with its status and a readable reason (FEDERATION.md, "Inbox")."""

import dataclasses

import orjson
from sqlalchemy import update

from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.httpsig import sign_request
from fedsph.federation.inbox import KEY_REFETCH_AFTER
from fedsph.models import Actor, utcnow
from tests.support.db import inbox_items
from tests.support.inbox import follow, post_raw, project_and_sender


async def test_signed_follow_is_accepted(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    activity = follow(peer, alice, project.uri)
    assert (await peer.post(alice, inbox, activity))[0] == 202
    await node.run_worker()
    accepts = peer.activities("Accept")
    assert len(accepts) == 1
    assert accepts[0]["actor"] == project.uri
    assert accepts[0]["object"]["id"] == activity["id"]


async def test_shared_inbox_accepts_signed_activity(node, peer):
    project, alice, _ = await project_and_sender(node, peer)
    status, _ = await peer.post(alice, f"{node.base}/inbox", follow(peer, alice, project.uri))
    assert status == 202
    assert len(await inbox_items(node)) == 1


async def test_unsigned_post_is_401(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    status, text = await post_raw(peer, inbox, orjson.dumps(follow(peer, alice, project.uri)),
                                  {"Content-Type": "application/activity+json"})
    assert status == 401
    assert "not signed" in text


async def test_authorization_signature_header_is_accepted(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    body = orjson.dumps(follow(peer, alice, project.uri))
    headers = sign_request("POST", inbox, alice.key_id, alice.private_pem, body=body)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    assert (await post_raw(peer, inbox, body, headers))[0] == 202


async def test_signature_by_another_key_is_401(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    impostor = dataclasses.replace(alice, private_pem=generate_rsa_keypair()[0])
    status, text = await peer.post(impostor, inbox, follow(peer, alice, project.uri))
    assert status == 401
    assert "does not verify" in text
    assert await inbox_items(node) == []


async def test_text_plain_is_415(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    status, text = await peer.post(alice, inbox, follow(peer, alice, project.uri),
                                   {"Content-Type": "text/plain"})
    assert status == 415
    assert "text/plain" in text


async def test_ld_json_with_profile_is_accepted(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    body = orjson.dumps(follow(peer, alice, project.uri))
    media_type = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    headers = sign_request("POST", inbox, alice.key_id, alice.private_pem, body=body,
                           content_type=media_type)
    assert (await post_raw(peer, inbox, body, headers))[0] == 202


async def test_body_over_one_mib_is_413(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    activity = {**follow(peer, alice, project.uri), "padding": "x" * (1024 * 1024)}
    status, text = await peer.post(alice, inbox, activity)
    assert status == 413
    assert "limited" in text


async def test_body_just_under_the_limit_is_read_whole(node, peer):
    # Regression: a single StreamReader.read(n) returned only the bytes that had arrived, so large
    # valid activities were cut short and failed their Digest.
    project, alice, inbox = await project_and_sender(node, peer)
    activity = {**follow(peer, alice, project.uri), "padding": "x" * (900 * 1024)}
    assert (await peer.post(alice, inbox, activity))[0] == 202


async def test_malformed_json_is_400(node, peer):
    _, alice, inbox = await project_and_sender(node, peer)
    status, text = await peer.post(alice, inbox, b'{"type": "Follow",')
    assert status == 400
    assert "JSON" in text


async def test_same_activity_twice_is_stored_once(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    activity = follow(peer, alice, project.uri)
    assert (await peer.post(alice, inbox, activity))[0] == 202
    assert (await peer.post(alice, inbox, activity))[0] == 202
    items = await inbox_items(node)
    assert [item.activity_uri for item in items] == [activity["id"]]


async def test_signer_other_than_actor_is_401(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    bob = peer.add_actor("bob")
    status, text = await peer.post(alice, inbox, follow(peer, bob, project.uri))
    assert status == 401
    assert "not by the activity's actor" in text


async def test_rotated_key_is_fetched_again(node, peer):
    """Once our copy is older than KEY_REFETCH_AFTER (tests/hostile/test_inbox_hardening.py)."""
    project, alice, inbox = await project_and_sender(node, peer)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    peer.rotate_key(alice)
    async with node.writers() as db, db.begin():
        await db.execute(update(Actor).where(Actor.uri == alice.uri).values(
            fetched_at=utcnow() - KEY_REFETCH_AFTER))
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert peer.fetched.count(alice.uri) == 2
    assert len(await inbox_items(node)) == 2


async def test_delete_of_unknown_actor_with_unfetchable_key_is_202(node, peer):
    # Mastodon sends Deletes of deleted accounts everywhere; their keys are gone. Fetching would
    # fail (404 -> 401), so a 2xx shows fedsph did not need the key.
    await node.create_actor("coop")
    gone = peer.add_actor("gone")
    del peer.actors["gone"]
    delete = {"id": f"{gone.uri}#delete", "type": "Delete", "actor": gone.uri, "object": gone.uri}
    status, _ = await peer.post(gone, f"{node.base}/inbox", delete)
    assert 200 <= status < 300
    assert await inbox_items(node) == []


async def test_delete_of_unknown_actor_fetches_nothing(node, peer):
    await node.create_actor("coop")
    carol = peer.add_actor("carol")
    delete = {"id": f"{carol.uri}#delete", "type": "Delete", "actor": carol.uri, "object": carol.uri}
    assert (await peer.post(carol, f"{node.base}/inbox", delete))[0] == 202
    assert peer.fetched == []


async def test_chunked_body_over_one_mib_is_413(node, peer):
    # No Content-Length: the limit must hold while reading, too.
    _, _, inbox = await project_and_sender(node, peer)

    async def chunks():
        for _ in range(17):
            yield b"x" * 65536

    status, text = await post_raw(peer, inbox, chunks(), {"Content-Type": "application/activity+json"})
    assert status == 413
    assert "limited" in text


async def test_unknown_local_actor_inbox_is_404(node, peer):
    alice = peer.add_actor("alice")
    status, _ = await peer.post(alice, f"{node.base}/actors/nobody/inbox",
                                follow(peer, alice, f"{node.base}/actors/nobody"))
    assert status == 404
