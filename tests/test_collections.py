"""Outbox, followers and following as paged OrderedCollections; every id we mint can be fetched."""

from datetime import timedelta

import aiohttp
import orjson

from fedsph.models import utcnow
from fedsph.projects.outbox import delete_post, edit_post_text, publish_text_post
from fedsph.projects.queries import PAGE_SIZE
from tests.support.db import add_remote_follower


async def get(url, accept="application/activity+json"):
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Accept": accept}) as resp:
        body = await resp.read()
        is_json = resp.content_type.endswith("json")
        return resp.status, orjson.loads(body) if is_json and body else body.decode()


async def publish(node, project, count):
    start = utcnow() - timedelta(hours=1)
    async with node.writers() as db, db.begin():
        return [await publish_text_post(db, node.urls, project, f"Update number {n}",
                                        published=start + timedelta(minutes=n)) for n in range(count)]


async def test_outbox_pages_newest_first_with_create_activities(node):
    project = await node.create_actor("coop")
    await publish(node, project, PAGE_SIZE + 5)
    status, collection = await get(f"{project.uri}/outbox")
    assert status == 200
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == PAGE_SIZE + 5
    status, first = await get(collection["first"])
    assert first["type"] == "OrderedCollectionPage" and first["partOf"] == collection["id"]
    assert len(first["orderedItems"]) == PAGE_SIZE
    assert {item["type"] for item in first["orderedItems"]} == {"Create"}
    newest = first["orderedItems"][0]["object"]
    assert newest["content"] == f"<p>Update number {PAGE_SIZE + 4}</p>"
    status, second = await get(first["next"])
    assert len(second["orderedItems"]) == 5 and "next" not in second
    assert second["prev"] == collection["first"]


async def test_bad_page_numbers_are_400(node):
    project = await node.create_actor("coop")
    for page in ("abc", "0", "-1"):
        status, _ = await get(f"{project.uri}/outbox?page={page}")
        assert status == 400


async def test_followers_and_following_list_actor_ids(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    await add_remote_follower(node, project, alice)
    status, collection = await get(f"{project.uri}/followers")
    assert status == 200 and collection["totalItems"] == 1
    status, page = await get(collection["first"])
    assert page["orderedItems"] == [alice.uri]
    status, collection = await get(f"{project.uri}/following")
    assert status == 200 and collection["totalItems"] == 0


async def test_note_and_its_create_can_be_fetched_at_their_ids(node):
    project = await node.create_actor("coop")
    [note] = await publish(node, project, 1)
    status, document = await get(note.uri)
    assert status == 200
    assert document["id"] == note.uri and document["type"] == "Note"
    assert document["attributedTo"] == project.uri
    assert "https://www.w3.org/ns/activitystreams#Public" in document["to"]
    status, outbox_page = await get(f"{project.uri}/outbox?page=1")
    create_id = outbox_page["orderedItems"][0]["id"]
    status, create = await get(create_id)
    assert status == 200 and create["type"] == "Create" and create["object"]["id"] == note.uri
    status, html = await get(note.uri, accept="text/html")
    assert status == 200 and "Update number 0" in html


async def test_edited_note_carries_updated_and_deleted_note_is_a_410_tombstone(node):
    project = await node.create_actor("coop")
    [note] = await publish(node, project, 1)
    async with node.writers() as db, db.begin():
        await edit_post_text(db, node.urls, project, await db.merge(note), "Edited text")
    status, document = await get(note.uri)
    assert document["content"] == "<p>Edited text</p>" and document["updated"]
    async with node.writers() as db, db.begin():
        await delete_post(db, node.urls, project, await db.merge(note))
    status, tombstone = await get(note.uri)
    assert status == 410
    assert tombstone["type"] == "Tombstone" and tombstone["formerType"] == "Note"
    assert (await get(note.uri, accept="text/html"))[0] == 410
    status, outbox = await get(f"{project.uri}/outbox")
    assert outbox["totalItems"] == 0


async def test_followers_only_notes_are_not_served_to_anonymous_fetches(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Members only", visibility="followers")
    assert (await get(note.uri))[0] == 404
    assert (await get(f"{node.base}/objects/{'0' * 32}"))[0] == 404


async def test_followers_only_notes_are_served_to_signed_fetches_from_followers_servers(node, peer):
    """Authorized fetch, as Mastodon does it: its instance actor signs, and a followers-only post
    is served when someone on that server follows the author."""
    from tests.fakepeer import FakePeer

    project = await node.create_actor("coop")
    follower = peer.add_actor("ana")
    await add_remote_follower(node, project, follower)
    instance = peer.add_actor("instance.actor", "Application")
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Members only", visibility="followers")

    status, document = await peer.get(instance, note.uri)
    assert status == 200 and document["id"] == note.uri and "Members only" in document["content"]
    # Unsigned, or signed by a server where nobody follows the project: not there.
    assert (await peer.get(None, note.uri))[0] == 404
    stranger = await FakePeer().start()
    try:
        assert (await stranger.get(stranger.add_actor("mallory"), note.uri))[0] == 404
    finally:
        await stranger.stop()
    # A browser never gets it, signed or not.
    assert (await peer.get(instance, note.uri, accept="text/html"))[0] == 404
