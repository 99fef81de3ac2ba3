"""Issue 13, item 1: addressing carried only by the activity, and delivery to a personal inbox.

Mastodon reads `object.to || activity.to` and counts delivery to an account's own inbox as
addressing it. fedsph takes the activity's addressing only for an object that has none of its
own (so it never widens what the object says), and adds the owner of the personal inbox to a
direct post only. A direct post stays visible to those it addresses and nobody else.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fedsph.federation.actors import resolve_actor
from fedsph.federation.visibility import with_activity_addressing
from fedsph.models import Follow, InboxItem, Notification, Object, ObjectAudience
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


async def test_the_same_dm_sent_again_to_another_personal_inbox_reaches_that_account(node, peer):
    """A server without a shared inbox sends one Create per inbox (new activity ids)."""
    _ana_token, ana = await member_token(node, "ana", None)
    _bea_token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    note = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": eva.uri,
            "content": f"<p>{SECRET}</p>", "published": "2026-01-02T10:00:00Z"}
    for name in ("ana", "bea"):
        create = {"@context": AS, "id": peer.new_id(), "type": "Create", "actor": eva.uri,
                  "object": note}
        status, body = await peer.post(eva, f"{node.base}/actors/{name}/inbox", create)
        assert status == 202, body
        await flush(node)
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "direct" and audience == sorted([ana.uri, bea.uri])
    assert await _mentions(node, ana) == 1 and await _mentions(node, bea) == 1


async def test_a_public_post_to_a_personal_inbox_gets_no_audience(node, peer):
    _token, _bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    note = await _send(node, peer, eva, {"to": [PUBLIC]}, {}, inbox="/actors/bea/inbox",
                       text="hello world")
    obj, audience = await _stored(node, note["id"])
    assert obj.visibility == "public" and audience == []


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
