"""Issue 13, item 1: addressing carried only by the activity, and delivery to a personal inbox.

Mastodon reads `object.to || activity.to` and counts delivery to an account's own inbox as
addressing it. fedsph takes the activity's addressing only for an object that has none of its
own (so it never widens what the object says), and adds the owner of the personal inbox to a
direct post only. A direct post stays visible to those it addresses and nobody else.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from fedsph.federation import proofs
from fedsph.federation.actors import resolve_actor
from fedsph.federation.visibility import with_activity_addressing
from fedsph.models import Conversation, Follow, InboxItem, Notification, Object, ObjectAudience
from fedsph.web.keys import REMOTE
from tests.fakepeer import AS
from tests.support.members import api, member_token
from tests.support.nodes import flush

PUBLIC = f"{AS}#Public"
SECRET = "meet me at the back door"


async def _send(node, peer, author, note_addressing: dict, activity_addressing: dict,
                inbox: str = "/inbox", text: str = SECRET) -> dict:
    note = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": author.uri,
            "content": f"<p>{text}</p>", "published": "2026-01-02T10:00:00Z", **note_addressing}
    create = {"@context": AS, "id": peer.new_id(), "type": "Create", "actor": author.uri,
              "object": note, **activity_addressing}
    status, body = await peer.post(author, node.base + inbox, create)
    assert status == 202, body
    await flush(node)
    return note


async def _stored(node, uri: str) -> tuple[Object | None, list[str]]:
    async with node.readers() as db:
        obj = await db.scalar(select(Object).where(Object.uri == uri))
        audience = [] if obj is None else sorted(await db.scalars(
            select(ObjectAudience.actor_uri).where(ObjectAudience.object_id == obj.id)))
    return obj, audience


async def _mentions(node, actor) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count(Notification.id)).where(
            Notification.recipient_id == actor.id, Notification.type == "mention"))


def test_the_activity_addresses_only_an_object_without_addressing():
    activity = {"to": ["https://b.example/u/bob"], "cc": [PUBLIC]}
    bare = {"id": "https://a.example/n/1"}
    assert with_activity_addressing(bare, activity)["to"] == ["https://b.example/u/bob"]
    # An object that names anyone keeps exactly its own addressing: never made unlisted here.
    own = {"id": "https://a.example/n/1", "to": ["https://b.example/u/bob"]}
    assert with_activity_addressing(own, activity) is own
    assert with_activity_addressing(bare, {"to": [], "cc": []}) is bare


async def test_a_dm_addressed_only_on_the_activity_is_stored_direct(node, peer):
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    eva_id = await resolve_actor(node.writers, node.app[REMOTE], eva.uri)
    async with node.writers() as db, db.begin():  # bea follows eva: she must still see nothing
        db.add(Follow(follower_id=bea.id, followed_id=eva_id, state="accepted",
                      activity_uri=f"{node.base}/follows/bea-eva"))
    note = await _send(node, peer, eva, {}, {"to": [ana.uri], "cc": []})
    obj, audience = await _stored(node, note["id"])
    assert obj is not None and obj.visibility == "direct" and audience == [ana.uri]
    status, entity = await api(node, ana_token, "GET", f"/api/v1/statuses/{obj.id}")
    assert status == 200 and entity["visibility"] == "direct"
    status, notes = await api(node, ana_token, "GET", "/api/v1/notifications")
    assert [(n["type"], n["status"]["id"]) for n in notes] == [("mention", str(obj.id))]
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{obj.id}")
    assert status == 404
    status, home = await api(node, bea_token, "GET", "/api/v1/timelines/home")
    assert str(obj.id) not in [s["id"] for s in home]
    assert await _mentions(node, bea) == 0


async def test_a_public_post_addressed_on_the_activity_is_public(node, peer):
    _token, ana = await member_token(node, "ana", None)
    eva = peer.add_actor("eva")
    eva_id = await resolve_actor(node.writers, node.app[REMOTE], eva.uri)
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=ana.id, followed_id=eva_id, state="accepted",
                      activity_uri=f"{node.base}/follows/ana-eva"))
    note = await _send(node, peer, eva, {}, {"to": [PUBLIC], "cc": [eva.document["followers"]]},
                       text="open day")
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "public" and audience == []


async def test_the_activity_never_widens_the_objects_addressing(node, peer):
    """Object to Ana only, activity cc Public: stays a DM to Ana (Mastodon would make it
    unlisted), and the public timeline never shows it."""
    token, ana = await member_token(node, "ana", None)
    eva = peer.add_actor("eva")
    note = await _send(node, peer, eva, {"to": [ana.uri]}, {"to": [ana.uri], "cc": [PUBLIC]})
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "direct" and audience == [ana.uri]
    status, public = await api(node, token, "GET", "/api/v1/timelines/public")
    assert status == 200 and public == []


async def test_delivery_to_a_personal_inbox_addresses_its_owner(node, peer):
    """Named nowhere (no to, cc or tag), sent to Bea's own inbox: a DM to Bea alone."""
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    note = await _send(node, peer, eva, {}, {}, inbox="/actors/bea/inbox")
    async with node.readers() as db:
        item = await db.scalar(select(InboxItem).where(InboxItem.type == "Create"))
    assert item.delivered_to == bea.uri
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "direct" and audience == [bea.uri]
    status, entity = await api(node, bea_token, "GET", f"/api/v1/statuses/{obj.id}")
    assert status == 200 and entity["visibility"] == "direct"
    assert await _mentions(node, bea) == 1 and await _mentions(node, ana) == 0
    status, _ = await api(node, ana_token, "GET", f"/api/v1/statuses/{obj.id}")
    assert status == 404
    status, conversations = await api(node, bea_token, "GET", "/api/v1/conversations")
    assert [c["last_status"]["id"] for c in conversations] == [str(obj.id)]
    assert conversations[0]["unread"] is True


@pytest.mark.parametrize("same_id", [False, True])
async def test_the_same_dm_sent_again_to_another_personal_inbox_reaches_that_account(
        node, peer, same_id):
    """A server without a shared inbox sends the Create to each inbox: with a new activity id
    each time, or the same one (which must not be dropped as a duplicate). Eva's note names
    Ana; Bea is reached through her own inbox only: she gets it, silently, and Ana is never
    shown that Bea has it (one conversation, with Eva alone, not made unread again)."""
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    note = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": eva.uri,
            "content": f"<p>{SECRET}</p>", "published": "2026-01-02T10:00:00Z", "to": [ana.uri]}
    activity_id = peer.new_id()
    for name in ("ana", "bea"):
        create = {"@context": AS, "id": activity_id if same_id else peer.new_id(),
                  "type": "Create", "actor": eva.uri, "object": note}
        status, body = await peer.post(eva, f"{node.base}/actors/{name}/inbox", create)
        assert status == 202, body
        await flush(node)
        if name == "ana":
            [on_ana] = await _conversation_list(node, ana_token)
            status, _ = await api(node, ana_token, "POST",
                                  f"/api/v1/conversations/{on_ana['id']}/read")
            assert status == 200
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "direct" and audience == sorted([ana.uri, bea.uri])
    async with node.readers() as db:
        silent = dict((await db.execute(select(ObjectAudience.actor_uri, ObjectAudience.silent)
                                        .where(ObjectAudience.object_id == obj.id))).all())
    assert silent == {ana.uri: False, bea.uri: True}
    assert await _mentions(node, ana) == 1 and await _mentions(node, bea) == 1
    on_ana = await _conversation_list(node, ana_token)
    assert [(c["last_status"]["id"], c["unread"], [a["url"] for a in c["accounts"]])
            for c in on_ana] == [(str(obj.id), False, [eva.uri])]
    eva_acct = on_ana[0]["accounts"][0]["acct"]
    on_bea = await _conversation_list(node, bea_token)
    assert [(c["last_status"]["id"], c["unread"], sorted(a["acct"] for a in c["accounts"]))
            for c in on_bea] == [(str(obj.id), True, sorted(["ana", eva_acct]))]
    # Another delivery to Bea's inbox (a retry) changes nothing.
    status, _ = await peer.post(eva, f"{node.base}/actors/bea/inbox", {
        "@context": AS, "id": activity_id if same_id else peer.new_id(), "type": "Create",
        "actor": eva.uri, "object": note})
    assert status == 202
    await flush(node)
    assert await _mentions(node, bea) == 1 and len(await _conversation_list(node, bea_token)) == 1


async def _conversation_list(node, token: str) -> list[dict]:
    status, body = await api(node, token, "GET", "/api/v1/conversations")
    assert status == 200, body
    return body


async def _nothing_for(node, actor) -> None:
    async with node.readers() as db:
        assert await db.scalar(select(func.count(ObjectAudience.id)).where(
            ObjectAudience.actor_uri == actor.uri)) == 0
        assert await db.scalar(select(func.count(Notification.id)).where(
            Notification.recipient_id == actor.id)) == 0
        assert await db.scalar(select(func.count(Conversation.id)).where(
            Conversation.actor_id == actor.id)) == 0


async def test_a_strangers_public_post_to_a_personal_inbox_is_not_stored(node, peer):
    """Nobody here follows Eva: her public post sent to Bea's own inbox is dropped, so it never
    reaches the public or tag timelines."""
    token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    note = await _send(node, peer, eva, {"to": [PUBLIC]}, {}, inbox="/actors/bea/inbox",
                       text="buy cheap things #news")
    obj, _ = await _stored(node, note["id"])
    assert obj is None
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Object.id))) == 0
        assert await db.scalar(select(InboxItem.status)) == "ignored"
    await _nothing_for(node, bea)
    for path in ("/api/v1/timelines/public", "/api/v1/timelines/tag/news"):
        status, timeline = await api(node, token, "GET", path)
        assert status == 200 and timeline == [], path


async def test_a_followed_actors_public_post_to_a_personal_inbox_gets_no_audience(node, peer):
    _token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    eva_id = await resolve_actor(node.writers, node.app[REMOTE], eva.uri)
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=bea.id, followed_id=eva_id, state="accepted",
                      activity_uri=f"{node.base}/follows/bea-eva"))
    note = await _send(node, peer, eva, {"to": [PUBLIC]}, {}, inbox="/actors/bea/inbox",
                       text="hello world")
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "public" and audience == []


async def test_an_update_to_a_personal_inbox_adds_nobody_to_a_dm(node, peer):
    """Mastodon ignores the inbox an Update came to: an edit must not quietly give Bea a DM to
    Ana (no notification, no conversation would tell her)."""
    _ana_token, ana = await member_token(node, "ana", None)
    _bea_token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    note = await _send(node, peer, eva, {"to": [ana.uri]}, {})
    edited = {**note, "content": "<p>edited</p>", "updated": "2026-01-03T10:00:00Z"}
    update = {"@context": AS, "id": peer.new_id(), "type": "Update", "actor": eva.uri,
              "object": edited}
    status, body = await peer.post(eva, f"{node.base}/actors/bea/inbox", update)
    assert status == 202, body
    await flush(node)
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "direct" and audience == [ana.uri] and "edited" in obj.content
    await _nothing_for(node, bea)


async def test_a_relayed_delivery_to_a_personal_inbox_addresses_nobody(node, peer):
    """A relay (its own key, the author's integrity proof) chose the inbox, not the author: a
    post that names nobody here, relayed to Bea's own inbox, is not hers and is not stored."""
    _token, bea = await member_token(node, "bea", None)
    key = Ed25519PrivateKey.generate()
    eva = peer.add_actor("eva")
    eva.document["assertionMethod"] = [{
        "id": eva.uri + "#ed25519-key", "type": "Multikey", "controller": eva.uri,
        "publicKeyMultibase": proofs.public_key_multibase(key.public_key())}]
    relay = peer.add_actor("relay", "Application")
    note_id = peer.new_id("notes")
    create = {"@context": AS, "id": note_id + "/activity", "type": "Create", "actor": eva.uri,
              "to": [PUBLIC], "object": {"id": note_id, "type": "Note", "content": SECRET,
                                         "attributedTo": eva.uri,
                                         "to": ["https://elsewhere.example/u/x"]}}
    signed = proofs.sign(proofs.with_data_integrity_context(create), key, eva.uri + "#ed25519-key")
    status, body = await peer.post(relay, f"{node.base}/actors/bea/inbox", signed)
    assert status == 202, body
    await flush(node)
    async with node.readers() as db:
        item = await db.scalar(select(InboxItem))
        assert item.delivered_to == bea.uri and item.signed_by_actor is False
        assert item.status == "ignored"
        assert await db.scalar(select(func.count(Object.id))) == 0
    await _nothing_for(node, bea)


@pytest.mark.parametrize(("inbox", "answer"), [("/actors/nobody/inbox", 404),
                                               ("/actors/instance/inbox", 202)])
async def test_an_unknown_personal_inbox_or_the_nodes_own_stores_nothing(node, peer, inbox,
                                                                           answer):
    """The node's own actor is nobody's account: a post sent to its inbox addresses no one."""
    eva = peer.add_actor("eva")
    note = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": eva.uri,
            "content": f"<p>{SECRET}</p>"}
    create = {"@context": AS, "id": peer.new_id(), "type": "Create", "actor": eva.uri,
              "object": note}
    status, _ = await peer.post(eva, node.base + inbox, create)
    assert status == answer
    await flush(node)
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Object.id))) == 0
        assert await db.scalar(select(func.count(Notification.id))) == 0
        if answer == 404:
            assert await db.scalar(select(func.count(InboxItem.id))) == 0


async def test_an_unaddressed_post_to_the_shared_inbox_is_still_dropped(node, peer):
    """Nobody here follows Eva, and the post names nobody here: not for us."""
    eva = peer.add_actor("eva")
    note = await _send(node, peer, eva, {}, {"to": ["https://elsewhere.example/u/x"]})
    obj, _ = await _stored(node, note["id"])
    assert obj is None


async def test_an_update_never_opens_a_direct_message(node, peer):
    """Neither an Update addressed to Public nor one whose activity alone is: the DM stays a DM
    to Ana, with its text, and the public timeline stays empty."""
    token, ana = await member_token(node, "ana", None)
    eva = peer.add_actor("eva")
    note = await _send(node, peer, eva, {"to": [ana.uri]}, {})
    for note_addressing, activity_addressing in (({"to": [PUBLIC]}, {}),
                                                 ({}, {"to": [PUBLIC]})):
        edited = {**{k: v for k, v in note.items() if k not in ("to", "cc")},
                  "content": "<p>now for everyone</p>", "updated": "2026-01-03T10:00:00Z",
                  **note_addressing}
        update = {"@context": AS, "id": peer.new_id(), "type": "Update", "actor": eva.uri,
                  "object": edited, **activity_addressing}
        status, body = await peer.post(eva, f"{node.base}/inbox", update)
        assert status == 202, body
        await flush(node)
        obj, audience = await _stored(node, note["id"])
        assert obj.visibility == "direct" and audience == [ana.uri] and SECRET in obj.content
    status, public = await api(node, token, "GET", "/api/v1/timelines/public")
    assert status == 200 and public == []
