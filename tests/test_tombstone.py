"""One tombstone for every delete (fedsph.projects.tombstone): a post or event deleted here or on
its own server keeps nothing it said, its images are let go, and our deleted objects answer with
the AS2 Tombstone Mastodon expects."""

from __future__ import annotations

from datetime import timedelta

import orjson
from sqlalchemy import select

from fedsph.events.service import cancel_event
from fedsph.federation.actors import get_local_actor
from fedsph.models import Activity, Actor, Event, Media, Object
from fedsph.projects.media import media_dir, save_upload
from fedsph.projects.media_prune import prune_media
from fedsph.projects.outbox import delete_post, publish_post
from tests.support.db import add_follow, add_remote_follower, store_remote
from tests.support.events import MEETING, make_event
from tests.support.images import exif_jpeg
from tests.support.members import api, member_token

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"
# What a tombstone keeps of everything an object said: nothing.
SAID = ("content", "content_map", "summary", "name", "name_map", "tags", "place", "attachments",
        "document", "kind", "stage_change", "pinned_at")
# What an event said besides its object: where, online, in which languages, with whom.
EVENT_SAID = ("kind", "online_url", "languages", "interpretation", "organizers",
              "related_projects")


def said(obj: Object) -> dict:
    return {column: getattr(obj, column) for column in SAID if getattr(obj, column) is not None}


async def stored(node, uri: str) -> Object:
    async with node.readers() as db:
        return await db.scalar(select(Object).where(Object.uri == uri))


async def deliver(node, peer, actor, activity: dict) -> None:
    status, text = await peer.post(actor, node.urls.shared_inbox(), activity)
    assert status == 202, text
    await node.run_worker()


async def sent_deletes(node, object_uri: str) -> list[dict]:
    async with node.readers() as db:
        bodies = await db.scalars(select(Activity.body).where(
            Activity.type == "Delete", Activity.object_uri == object_uri))
    return [orjson.loads(b) for b in bodies]


async def test_a_post_deleted_remotely_keeps_no_content_tags_place_or_attachments(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    await add_follow(node, project, await store_remote(node, alice.document))
    note_id = peer.new_id("objects")
    note = {"id": note_id, "type": "Note", "attributedTo": alice.uri, "to": [PUBLIC],
            "name": "Muros listos", "summary": "Obra", "content": "<p>Terminamos #obra</p>",
            "contentMap": {"es": "<p>Terminamos #obra</p>"}, "published": "2026-05-01T10:00:00Z",
            "tag": [{"type": "Hashtag", "name": "#obra", "href": peer.base + "/tags/obra"}],
            "location": {"type": "Place", "name": "Lyon", "latitude": 45.76, "longitude": 4.83},
            "attachment": [{"type": "Image", "mediaType": "image/webp", "name": "Walls",
                            "url": peer.base + "/media/walls-1280.webp"}]}
    await deliver(node, peer, alice, {"@context": AS, "id": note_id + "/activity",
                                      "type": "Create", "actor": alice.uri, "to": [PUBLIC],
                                      "object": note})
    received = await stored(node, note_id)
    assert {"content", "tags", "place", "attachments", "name"} <= set(said(received))
    token, _ = await member_token(node, "ana", "coop")
    assert (await api(node, token, "GET", f"/api/v1/statuses/{received.id}"))[0] == 200

    await deliver(node, peer, alice, {"@context": AS, "id": peer.new_id(), "type": "Delete",
                                      "actor": alice.uri, "to": [PUBLIC],
                                      "object": {"id": note_id, "type": "Tombstone"}})
    deleted = await stored(node, note_id)
    assert deleted.deleted_at is not None and said(deleted) == {}
    status, body = await api(node, token, "GET", f"/api/v1/statuses/{received.id}")
    assert status == 404 and "Muros" not in orjson.dumps(body).decode()


async def test_a_local_delete_frees_its_media_and_answers_with_a_tombstone(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    await add_remote_follower(node, project, alice)
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        image = await save_upload(db, node.settings, actor, exif_jpeg(640, 480), "A roof", "CC0", None)
        post = await publish_post(db, node.urls, actor, contents={"es": "Techo"},
                                    title_map={"es": "Obra"}, hashtags=["obra"],
                                    place={"name": "Montevideo"}, summary="Obra",
                                    media=[image])
    files = [media_dir(node.settings) / info["file"] for info in image.renditions.values()]
    async with node.writers() as db, db.begin():
        await delete_post(db, node.urls, await db.get(Actor, project.id),
                          await db.get(Object, post.id))
    await node.run_worker()

    deleted = await stored(node, post.uri)
    assert deleted.deleted_at is not None and said(deleted) == {}
    async with node.readers() as db:
        assert (await db.get(Media, image.id)).object_id is None
    # Let go, so the pruner deletes the image and its files.
    assert (await prune_media(node.writers, node.settings, timedelta(0))).count == 1
    assert not any(path.exists() for path in files)

    # The served Tombstone is Mastodon's shape, and the Delete embeds it.
    status, tombstone = await peer.get(None, post.uri)
    assert status == 410
    assert tombstone == {"@context": AS, "id": post.uri, "type": "Tombstone",
                         "formerType": "Note", "deleted": tombstone["deleted"]}
    [delete] = [a for a in peer.activities("Delete") if a["object"]["id"] == post.uri]
    assert delete["object"] == {k: v for k, v in tombstone.items() if k != "@context"}
    token, _ = await member_token(node, "ana", "coop")
    assert (await api(node, token, "GET", f"/api/v1/statuses/{post.id}"))[0] == 404


async def test_a_cancelled_event_becomes_the_same_tombstone(node, peer):
    await node.create_actor("coop")
    alice = peer.add_actor("alice")
    obj = await make_event(node)
    await deliver(node, peer, alice, {"@context": AS, "id": peer.new_id(), "type": "Join",
                                      "actor": alice.uri, "object": obj.uri})
    async with node.writers() as db, db.begin():
        project = await get_local_actor(db, "coop")
        await cancel_event(db, node.urls, project, await db.get(Object, obj.id))
    await node.run_worker()

    deleted = await stored(node, obj.uri)
    assert deleted.deleted_at is not None and said(deleted) == {}
    async with node.readers() as db:
        event = await db.get(Event, obj.id)
    assert all(getattr(event, column) is None for column in EVENT_SAID)
    status, tombstone = await peer.get(None, obj.uri)
    assert status == 410 and tombstone["type"] == "Tombstone"
    assert tombstone["formerType"] == "Event"
    # The participant hears of it, with the same Tombstone a post's Delete carries.
    [delete] = [a for a in peer.activities("Delete") if a["object"]["id"] == obj.uri]
    assert delete["object"] == {k: v for k, v in tombstone.items() if k != "@context"}
    assert delete["to"] == [PUBLIC] and (await sent_deletes(node, obj.uri))[0]["id"] == delete["id"]


async def test_an_event_deleted_remotely_keeps_no_place_link_or_organisers(node, peer):
    member = await node.create_actor("ana", "Person")
    group = peer.add_actor("network", "Group")
    await add_follow(node, member, await store_remote(node, group.document))
    event_id = peer.new_id("events")
    document = {"id": event_id, "type": "Event", "name": MEETING["name"],
                "attributedTo": group.uri, "to": [PUBLIC], "content": "<p>Asamblea</p>",
                "startTime": "2027-05-01T15:00:00Z", "timezone": "UTC",
                "location": {"type": "Place", "name": "FUCVAM",
                             "address": {"type": "PostalAddress", "streetAddress": "Av. 8"}},
                "attachment": [{"type": "Link", "name": "Website",
                                "href": "https://meet.example.org/hub"}],
                "contacts": [group.uri], "inLanguage": "es"}
    await deliver(node, peer, group, {"@context": AS, "id": event_id + "/activity",
                                      "type": "Create", "actor": group.uri, "to": [PUBLIC],
                                      "object": document})
    received = await stored(node, event_id)
    async with node.readers() as db:
        assert (await db.get(Event, received.id)).online_url == "https://meet.example.org/hub"
    assert received.place["address"]["streetAddress"] == "Av. 8"

    await deliver(node, peer, group, {"@context": AS, "id": peer.new_id(), "type": "Delete",
                                      "actor": group.uri, "to": [PUBLIC], "object": event_id})
    deleted = await stored(node, event_id)
    assert deleted.deleted_at is not None and said(deleted) == {}
    async with node.readers() as db:
        event = await db.get(Event, received.id)
    assert all(getattr(event, column) is None for column in EVENT_SAID)
