"""A local post's `replies`, `likes` and `shares` collections (issue 13, item 9): named in the
Note, served at their URLs with the same visibility rules as the Note itself."""

from __future__ import annotations

from sqlalchemy import select

from fedsph.models import Actor, Object, Reaction
from fedsph.projects.outbox import delete_post, hide_comment, publish_post, publish_text_post
from fedsph.web import note_collections
from tests.fakepeer import AS, FakePeer
from tests.support.db import add_remote_follower
from tests.support.nodes import flush

PUBLIC = f"{AS}#Public"


async def _reply(node, peer, author, parent: str, text: str, to: list[str]) -> dict:
    note = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": author.uri,
            "content": f"<p>{text}</p>", "inReplyTo": parent, "published": "2026-01-02T10:00:00Z",
            "to": to, "cc": []}
    status, body = await peer.post(author, f"{node.base}/inbox", {
        "@context": AS, "id": peer.new_id(), "type": "Create", "actor": author.uri,
        "object": note, "to": to, "cc": []})
    assert status == 202, body
    await flush(node)
    return note


async def test_a_public_posts_collections_count_its_replies_likes_and_shares(node, peer,
                                                                            monkeypatch):
    project = await node.create_actor("coop")
    mia = peer.add_actor("mia")
    await add_remote_follower(node, project, mia)
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, project, "Asamblea el jueves")
        db.add(Reaction(type="Like", actor_id=project.id, object_uri=post.uri,
                        activity_uri=f"{node.base}/likes/1"))
        for n in range(2):
            db.add(Reaction(type="Announce", actor_id=project.id, object_uri=post.uri,
                            activity_uri=f"{node.base}/shares/{n}"))
    await flush(node)
    [create] = peer.activities("Create")  # the Note as sent names its collections
    # `replies` embedded with a first page (as Mastodon sends it, which then fetches nothing).
    assert {k: create["object"][k] for k in ("replies", "likes", "shares")} == {
        "replies": {"id": post.uri + "/replies", "type": "Collection", "first": {
            "type": "CollectionPage", "partOf": post.uri + "/replies", "items": [],
            "next": post.uri + "/replies?page=1"}},
        "likes": post.uri + "/likes", "shares": post.uri + "/shares"}
    monkeypatch.setattr(note_collections, "REPLIES_PAGE", 2)
    public = [await _reply(node, peer, mia, post.uri, f"Respuesta {n}", [PUBLIC])
              for n in range(3)]
    await _reply(node, peer, mia, post.uri, "Solo seguidores", [mia.document["followers"]])

    status, replies = await peer.get(None, post.uri + "/replies")
    assert status == 200 and replies["type"] == "Collection" and replies["totalItems"] == 3
    first = replies["first"]
    assert first["type"] == "CollectionPage" and first["partOf"] == post.uri + "/replies"
    assert first["items"] == [public[0]["id"], public[1]["id"]]
    status, second = await peer.get(None, first["next"])
    assert status == 200 and second["items"] == [public[2]["id"]] and "next" not in second
    status, likes = await peer.get(None, post.uri + "/likes")
    assert (status, likes["type"], likes["totalItems"]) == (200, "Collection", 1)
    status, shares = await peer.get(None, post.uri + "/shares")
    assert (status, shares["totalItems"]) == (200, 2)
    assert (await peer.get(None, post.uri + "/replies?page=x"))[0] == 400


async def test_a_followers_only_posts_collections_answer_as_the_note_does(node, peer):
    project = await node.create_actor("coop")
    follower = peer.add_actor("ana")
    await add_remote_follower(node, project, follower)
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, project, "Solo socias",
                                       visibility="followers")
    stranger = await FakePeer().start()
    try:
        mallory = stranger.add_actor("mallory")
        for name in ("", "/replies", "/likes", "/shares"):
            assert (await peer.get(None, post.uri + name))[0] == 404
            assert (await stranger.get(mallory, post.uri + name))[0] == 404
            status, document = await peer.get(follower, post.uri + name)
            assert status == 200, (name, document)
    finally:
        await stranger.stop()
    status, replies = await peer.get(follower, post.uri + "/replies")
    assert replies["totalItems"] == 0 and replies["first"]["items"] == []


async def test_a_deleted_posts_collections_are_gone(node, peer):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, project, "Pronto borrado")
    async with node.writers() as db, db.begin():
        obj = await db.scalar(select(Object).where(Object.uri == post.uri))
        await delete_post(db, node.urls, project, obj)
    for name in ("/replies", "/likes", "/shares"):
        assert (await peer.get(None, post.uri + name))[0] == 410
    assert (await peer.get(None, f"{node.base}/objects/{'0' * 32}/replies"))[0] == 404


async def test_a_post_sent_before_the_collections_is_served_with_them(node, peer):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, project, "Antiguo")
        post.document = {k: v for k, v in post.document.items()
                         if k not in ("replies", "likes", "shares")}
    status, note = await peer.get(None, post.uri)
    assert status == 200 and note["replies"]["id"] == post.uri + "/replies"
    assert note["likes"] == post.uri + "/likes" and note["shares"] == post.uri + "/shares"


async def test_held_and_hidden_replies_are_left_out_of_replies(node, peer):
    project = await node.create_actor("coop")
    mia = peer.add_actor("mia")
    await add_remote_follower(node, project, mia)
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, project, "Opiniones")
    shown = await _reply(node, peer, mia, post.uri, "Visible", [PUBLIC])
    hidden = await _reply(node, peer, mia, post.uri, "Oculta", [PUBLIC])
    async with node.writers() as db, db.begin():
        await hide_comment(db, await db.scalar(select(Object).where(Object.uri == hidden["id"])))
        (await db.get(Actor, project.id)).hold_replies = True
    await _reply(node, peer, mia, post.uri, "En espera", [PUBLIC])
    status, replies = await peer.get(None, post.uri + "/replies")
    assert status == 200 and replies["totalItems"] == 1
    assert replies["first"]["items"] == [shown["id"]]


async def test_a_direct_posts_collections_are_only_for_the_servers_it_addresses(node, peer):
    project = await node.create_actor("coop")
    addressed = peer.add_actor("bea")
    bea = await add_remote_follower(node, project, addressed)
    other = await FakePeer().start()  # a follower's server, which the post does not address
    try:
        follower = other.add_actor("ana")
        await add_remote_follower(node, project, follower)
        async with node.writers() as db, db.begin():
            post = await publish_post(db, node.urls, await db.get(Actor, project.id),
                                      contents={"es": "Solo para bea"}, visibility="direct",
                                      mentions=[await db.get(Actor, bea.id)])
        for name in ("", "/replies", "/likes", "/shares"):
            assert (await peer.get(None, post.uri + name))[0] == 404
            assert (await other.get(follower, post.uri + name))[0] == 404
            status, document = await peer.get(addressed, post.uri + name)
            assert status == 200, (name, document)
    finally:
        await other.stop()
