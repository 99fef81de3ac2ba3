"""Favourites and boosts: what a local actor sends when it likes or announces a post (in-process,
against a fake peer), and the client API for them, driven by Mastodon.py against `fedsph serve`.
"""

from __future__ import annotations

import pytest
import requests
from mastodon import MastodonAPIError
from sqlalchemy import select

from fedsph.errors import UserError
from fedsph.federation.activitystreams import PUBLIC
from fedsph.models import Actor, Notification, Object, Reaction
from fedsph.projects import outbox, outbox_reactions
from tests.mastodon_client import logged_in, start_server, stop_server
from tests.support.db import add_remote_follower, store_remote


async def _peer_note(node, peer) -> tuple[Actor, Object]:
    """A peer's post, stored as if it had arrived in a Create."""
    bob = peer.add_actor("bob")
    author = await store_remote(node, bob.document)
    async with node.writers() as db, db.begin():
        note = Object(uri=bob.uri + "/notes/1", type="Note", actor_id=author.id,
                      content="<p>Hello</p>", visibility="public")
        db.add(note)
    return author, note


async def test_like_and_unlike_a_peer_post(node, peer):
    ana = await node.create_actor("ana", "Person")
    author, note = await _peer_note(node, peer)
    async with node.writers() as db, db.begin():
        me, obj = await db.get(Actor, ana.id), await db.get(Object, note.id)
        first = await outbox_reactions.like_object(db, node.urls, me, obj)
        again = await outbox_reactions.like_object(db, node.urls, me, obj)
    assert again.id == first.id
    await node.run_worker()
    [like] = peer.activities("Like")
    assert like["actor"] == ana.uri and like["object"] == note.uri and like["to"] == [author.uri]

    async with node.writers() as db, db.begin():
        me, obj = await db.get(Actor, ana.id), await db.get(Object, note.id)
        assert await outbox_reactions.unlike_object(db, node.urls, me, obj) is True
        assert await outbox_reactions.unlike_object(db, node.urls, me, obj) is False
    await node.run_worker()
    [undo] = peer.activities("Undo")
    assert undo["object"]["type"] == "Like" and undo["object"]["id"] == like["id"]
    async with node.readers() as db:
        assert await db.get(Reaction, first.id) is None


async def test_announce_goes_to_the_author_and_followers(node, peer):
    project = await node.create_actor("casa")
    author, note = await _peer_note(node, peer)
    carol = peer.add_actor("carol")
    await add_remote_follower(node, project, carol)
    async with node.writers() as db, db.begin():
        await outbox_reactions.announce_object(db, node.urls, await db.get(Actor, project.id),
                                     await db.get(Object, note.id))
    await node.run_worker()
    announces = peer.activities("Announce")
    assert announces, "the Announce was not delivered"
    announce = announces[-1]
    assert announce["object"] == note.uri and announce["to"] == [PUBLIC]
    assert set(announce["cc"]) == {project.followers_url, author.uri}
    async with node.writers() as db, db.begin():
        await outbox_reactions.unannounce_object(db, node.urls, await db.get(Actor, project.id),
                                       await db.get(Object, note.id))
    await node.run_worker()
    assert peer.activities("Undo")[-1]["object"]["type"] == "Announce"


async def test_followers_only_posts_cannot_be_announced(node, peer):
    project = await node.create_actor("casa")
    _, note = await _peer_note(node, peer)
    async with node.writers() as db, db.begin():
        obj = await db.get(Object, note.id)
        obj.visibility = "followers"
        with pytest.raises(UserError, match="public"):
            await outbox_reactions.announce_object(db, node.urls, await db.get(Actor, project.id), obj)


async def test_liking_a_local_post_notifies_its_author(node):
    ana = await node.create_actor("ana", "Person")
    casa = await node.create_actor("casa")
    async with node.writers() as db, db.begin():
        note = await outbox.publish_text_post(db, node.urls, await db.get(Actor, casa.id), "Hola")
        await outbox_reactions.like_object(db, node.urls, await db.get(Actor, ana.id), note)
    await node.run_worker()  # our inbox handles the local copy without counting it twice
    async with node.readers() as db:
        [notification] = await db.scalars(select(Notification))
        likes = list(await db.scalars(select(Reaction)))
    assert notification.type == "favourite" and notification.recipient_id == casa.id
    assert notification.from_actor_id == ana.id and len(likes) == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mastodon-reactions"))
    yield server
    stop_server(server)


@pytest.mark.e2e
def test_favourite_and_unfavourite(server):
    ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
    posted = ana.status_post("Something to like")
    liked = bea.status_favourite(posted.id)
    assert liked.id == posted.id and liked.favourited is True and liked.favourites_count == 1
    assert ana.status(posted.id).favourited is False  # the author did not like it
    [account] = ana.status_favourited_by(posted.id)
    assert account.username == "bea"
    assert bea.status_favourite(posted.id).favourites_count == 1  # twice is once
    unliked = bea.status_unfavourite(posted.id)
    assert unliked.favourited is False and unliked.favourites_count == 0
    assert ana.status_favourited_by(posted.id) == []

    ana.status_favourite(posted.id)
    bea.status_favourite(posted.id)
    # Newest first, with a Link to the next page (Mastodon.py sends no limit here).
    first = requests.get(f"{server.base}/api/v1/statuses/{posted.id}/favourited_by?limit=1",
                         headers={"Authorization": f"Bearer {ana.access_token}"}, timeout=10)
    assert [a["username"] for a in first.json()] == ["bea"]
    following = requests.get(first.links["next"]["url"], timeout=10)
    assert [a["username"] for a in following.json()] == ["ana"]


@pytest.mark.e2e
def test_reblog_and_unreblog(server):
    ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
    posted = ana.status_post("Something to boost")
    boost = bea.status_reblog(posted.id)
    # The wrapper has an id of its own (fedsph.models.status_ids), after the post's.
    assert boost.account.username == "bea" and boost.id > posted.id and boost.content == ""
    assert boost.reblog.id == posted.id and boost.reblog.reblogged is True
    assert boost.reblog.reblogs_count == 1
    assert [a.username for a in ana.status_reblogged_by(posted.id)] == ["bea"]
    undone = bea.status_unreblog(posted.id)
    assert undone.id == posted.id and undone.reblogged is False and undone.reblogs_count == 0
    assert ana.status_reblogged_by(posted.id) == []

    private = ana.status_post("Only for followers", visibility="private")
    with pytest.raises(MastodonAPIError, match="public"):
        ana.status_reblog(private.id)
