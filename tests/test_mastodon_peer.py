"""fedsph against a strict Mastodon-like peer (tests/mastodon_peer.py): a whole round of follow,
accept, post, reply, favourite, boost, edit and delete, with every request checked as Mastodon
checks it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import select

from fedsph.federation import httpsig
from fedsph.models import Actor, Follow, Notification, Object, Reaction
from fedsph.projects import queries
from fedsph.projects.outbox import delete_post, edit_post, publish_post
from tests.mastodon_peer import PUBLIC, MastodonPeer


@pytest.fixture
async def mastodon():
    peer = await MastodonPeer().start()
    yield peer
    await peer.stop()


async def deliver(node, peer, actor, activity) -> None:
    """The peer POSTs to our shared inbox (as Mastodon prefers) and our worker handles it."""
    status, text = await peer.post(actor, f"{node.base}/inbox", activity)
    assert status == 202, text
    await node.run_worker()


async def flush(node) -> None:
    """Two worker rounds: inbox items first, then the deliveries they queued."""
    await node.run_worker()
    await node.run_worker()


async def comment(node, uri: str) -> Object | None:
    async with node.readers() as db:
        return await db.scalar(select(Object).where(Object.uri == uri))


async def test_a_whole_round_passes_mastodons_checks(node, mastodon):
    project = await node.create_actor("coop")
    ana = mastodon.add_actor("ana")

    # Ana follows the project; the Accept reaches her and passes every check.
    follow = mastodon.follow(ana, project.uri)
    await deliver(node, mastodon, ana, follow)
    await flush(node)
    [accept] = mastodon.activities("Accept")
    assert accept["actor"] == project.uri
    assert (accept["object"]["id"] if isinstance(accept["object"], dict)
            else accept["object"]) == follow["id"]
    async with node.readers() as db:
        state = await db.scalar(select(Follow.state).join(Actor, Actor.id == Follow.follower_id)
                                .where(Actor.uri == ana.uri))
    assert state == "accepted"
    # fedsph fetched Ana with a signed GET (her server serves actors only to those).
    assert ana.uri in mastodon.fetched

    # The project posts: the Create reaches Ana as a public Note.
    async with node.writers() as db, db.begin():
        update = await publish_post(db, node.urls, project, contents={"en": "The walls are up"})
    await flush(node)
    [create] = mastodon.activities("Create")
    note = create["object"]
    assert note["id"] == update.uri and note["type"] == "Note"
    assert "The walls are up" in note["content"]
    assert next(iter(note["contentMap"].values())) == note["content"]
    assert note["to"] == [PUBLIC] and note["cc"] == [project.uri + "/followers"]
    assert create["to"] == [PUBLIC] and create["cc"] == note["cc"]
    assert note["attributedTo"] == project.uri and note["published"] and note["url"]

    # Ana replies, favourites and boosts.
    reply = mastodon.create_note(ana, "Congratulations!", in_reply_to=note)
    await deliver(node, mastodon, ana, reply)
    async with node.readers() as db:
        comments = await queries.comments_for(db, update)
    assert [c.uri for c, _ in comments] == [reply["object"]["id"]]
    assert "Congratulations!" in comments[0][0].content
    await deliver(node, mastodon, ana, mastodon.like(ana, update.uri))
    await deliver(node, mastodon, ana, mastodon.announce(ana, note))
    async with node.readers() as db:
        kinds = sorted(await db.scalars(select(Reaction.type).where(Reaction.object_uri == update.uri)))
        notified = sorted(await db.scalars(select(Notification.type).where(
            Notification.recipient_id == project.id)))
    assert kinds == ["Announce", "Like"]
    assert {"favourite", "reblog", "mention"} <= set(notified)

    # Ana edits and then deletes her reply.
    await deliver(node, mastodon, ana, mastodon.update_note(ana, reply["object"], "Well done!"))
    edited = await comment(node, reply["object"]["id"])
    assert "Well done!" in edited.content and edited.updated is not None
    await deliver(node, mastodon, ana, mastodon.delete_post(ana, reply["object"]))
    assert (await comment(node, reply["object"]["id"])).deleted_at is not None
    async with node.readers() as db:
        assert await queries.comments_for(db, update) == []

    # The project edits and deletes its update: Update (with `updated`) and Delete reach Ana.
    async with node.writers() as db, db.begin():
        obj = await db.get(Object, update.id)
        await edit_post(db, node.urls, project, obj, contents={"en": "Walls and roof are up"})
    await flush(node)
    [edit] = mastodon.activities("Update")
    assert edit["object"]["id"] == update.uri and edit["object"]["updated"]
    assert "roof" in edit["object"]["content"]
    async with node.writers() as db, db.begin():
        await delete_post(db, node.urls, project, await db.get(Object, update.id))
    await flush(node)
    [gone] = mastodon.activities("Delete")
    assert (gone["object"]["id"] if isinstance(gone["object"], dict) else gone["object"]) == update.uri

    assert mastodon.failures == []
    assert all(r.verified for r in mastodon.received)
    assert mastodon.verified_owners[project.key_id] == project.uri
    # fedsph's GETs were signed by its instance actor, whose WebFinger loops back as well.
    assert node.urls.instance_actor() in mastodon.verified_owners.values()


async def test_actors_are_served_only_to_signed_gets(mastodon):
    ana = mastodon.add_actor("ana")
    async with mastodon.http.get(ana.uri, headers={"Accept": "application/activity+json"}) as resp:
        assert resp.status == 401
    assert [f.reason for f in mastodon.failures] == ["request not signed"]


@pytest.mark.parametrize("tamper, reason", [
    ("old_date", "signed request date outside acceptable time window"),
    ("future_date", "Date is more than an hour in the future"),
    ("bad_digest", "Digest does not match the body"),
    ("someone_else", "is not the signer"),
    ("text_plain", "Content-Type"),
])
async def test_the_peer_refuses_what_mastodon_refuses(node, mastodon, tamper, reason):
    """The checks bite: requests signed by a real fedsph key but broken one way are refused."""
    project = await node.create_actor("coop")
    async with node.readers() as db:
        key_pem = (await db.get(Actor, project.id)).private_key_pem
    activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": project.uri + "#x",
                "type": "Like", "actor": project.uri, "object": mastodon.base + "/users/ana/statuses/1"}
    if tamper == "someone_else":
        activity["actor"] = node.urls.instance_actor()
    body = orjson.dumps(activity)
    now = datetime.now(UTC)
    when = {"old_date": now - timedelta(minutes=70), "future_date": now + timedelta(minutes=70)}
    url = f"{mastodon.base}/inbox"
    headers = httpsig.sign_request("POST", url, project.key_id, key_pem, body=body,
                                   now=when.get(tamper, now))
    if tamper == "bad_digest":
        body = body.replace(b"Like", b"Flag")
    if tamper == "text_plain":
        headers["Content-Type"] = "text/plain"
    async with mastodon.http.post(url, data=body, headers=headers) as resp:
        assert resp.status == 401
    [failure] = mastodon.failures
    assert reason in failure.reason
