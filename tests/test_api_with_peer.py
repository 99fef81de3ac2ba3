"""What members do from apps, seen by the strict Mastodon-like peer (tests/mastodon_peer.py):

- a project announces its member's post that addresses it (FEP-1b12), and that post's deletion
  reaches the project's followers;
- a boost by an account a member follows shows in the member's home timeline as a reblog;
- a reply reaches the author of the post it answers, even when the text does not name them.

The client API is called over HTTP with a token issued directly (the OAuth flows have their own
tests); the node runs in this process and the tests drive its worker.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fedsph.federation.actors import resolve_actor
from fedsph.models import Follow, Object, Reaction
from fedsph.web.keys import REMOTE
from tests.mastodon_peer import PUBLIC, MastodonPeer
from tests.support.members import api, member_token
from tests.support.nodes import flush


@pytest.fixture
async def mastodon():
    peer = await MastodonPeer().start()
    yield peer
    await peer.stop()


async def deliver(node, peer, actor, activity) -> None:
    status, text = await peer.post(actor, f"{node.base}/inbox", activity)
    assert status == 202, text
    await flush(node)


async def test_a_project_announces_its_members_post_to_its_followers(node, mastodon):
    project = await node.create_actor("coop")
    token, ana = await member_token(node, "ana", "coop")
    mia = mastodon.add_actor("mia")
    await deliver(node, mastodon, mia, mastodon.follow(mia, project.uri))
    assert len(mastodon.activities("Accept")) == 1

    status, post = await api(node, token, "POST", "/api/v1/statuses",
                             data={"status": "@coop the roof is on!"})
    assert status == 200, post
    await flush(node)
    [announce] = mastodon.activities("Announce")
    assert announce["actor"] == project.uri and announce["object"] == post["uri"]
    assert announce["to"] == [PUBLIC] and project.uri + "/followers" in announce["cc"]
    # Mia's server fetches the announced post (signed, as Mastodon does) and finds Ana's Note.
    note = await mastodon.fetch(post["uri"])
    assert note["attributedTo"] == ana.uri and "the roof is on" in note["content"]
    assert not mastodon.failures

    status, boosters = await api(node, token, "GET", f"/api/v1/statuses/{post['id']}/reblogged_by")
    assert [b["acct"] for b in boosters] == ["coop"]

    # Posts that do not address the project, or are not public, are not announced.
    await api(node, token, "POST", "/api/v1/statuses", data={"status": "Just me today"})
    await api(node, token, "POST", "/api/v1/statuses",
              data={"status": "@coop a private word", "visibility": "direct"})
    await flush(node)
    assert len(mastodon.activities("Announce")) == 1

    # Mia follows the project, not Ana: the deletion still reaches her, so her copy goes too.
    status, _ = await api(node, token, "DELETE", f"/api/v1/statuses/{post['id']}")
    assert status == 200
    await flush(node)
    deletes = [d for d in mastodon.activities("Delete") if d["object"]["id"] == post["uri"]]
    assert len(deletes) == 1 and deletes[0]["actor"] == ana.uri
    assert not mastodon.failures


async def test_someone_elses_member_cannot_make_a_project_announce(node, mastodon):
    await node.create_actor("coop")
    await node.create_actor("other")
    token, _ = await member_token(node, "bea", "other")
    status, post = await api(node, token, "POST", "/api/v1/statuses",
                             data={"status": "@coop please share this"})
    assert status == 200, post
    async with node.readers() as db:
        assert await db.scalar(select(Reaction.id).where(Reaction.object_uri == post["uri"])) is None


async def test_a_followed_accounts_boost_shows_in_home_as_a_reblog(node, mastodon):
    token, ana = await member_token(node, "ana", None)
    mia, leo = mastodon.add_actor("mia"), mastodon.add_actor("leo")
    # Ana follows Mia (accepted); nobody here follows Leo.
    mia_id = await resolve_actor(node.writers, node.app[REMOTE], mia.uri)
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=ana.id, followed_id=mia_id, state="accepted"))

    leos_post = mastodon.create_note(leo, "Leo shares the plans")["object"]
    boost = mastodon.announce(mia, leos_post)
    await deliver(node, mastodon, mia, boost)

    status, home = await api(node, token, "GET", "/api/v1/timelines/home")
    assert status == 200
    [entry] = home
    assert entry["account"]["acct"] == f"mia@{mastodon.domain}"
    assert entry["reblog"]["uri"] == leos_post["id"]
    assert entry["reblog"]["account"]["acct"] == f"leo@{mastodon.domain}"
    assert "Leo shares the plans" in entry["reblog"]["content"] and entry["content"] == ""
    # The wrapper has an id of its own (fedsph.models.status_ids), not the post's.
    assert entry["id"] != entry["reblog"]["id"] and entry["id"].isdigit()
    assert leos_post["id"] in mastodon.fetched  # from its own server, not taken from Mia

    # A boost by someone nobody here follows is not kept.
    other = mastodon.create_note(mia, "Mia writes")["object"]
    await deliver(node, mastodon, leo, mastodon.announce(leo, other))
    status, home = await api(node, token, "GET", "/api/v1/timelines/home")
    assert [e["reblog"]["uri"] for e in home] == [leos_post["id"]]

    # Mia takes her boost back: it leaves Ana's home.
    undo = {"@context": "https://www.w3.org/ns/activitystreams", "id": boost["id"] + "#undo",
            "type": "Undo", "actor": mia.uri, "object": boost}
    await deliver(node, mastodon, mia, undo)
    status, home = await api(node, token, "GET", "/api/v1/timelines/home")
    assert home == []
    assert not mastodon.failures


async def test_a_reply_from_an_app_reaches_the_author_it_answers(node, mastodon):
    token, ana = await member_token(node, "ana", None)
    mia = mastodon.add_actor("mia")
    mia_id = await resolve_actor(node.writers, node.app[REMOTE], mia.uri)
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=ana.id, followed_id=mia_id, state="accepted"))
    mias_post = mastodon.create_note(mia, "Who has a cement mixer?")
    await deliver(node, mastodon, mia, mias_post)
    status, home = await api(node, token, "GET", "/api/v1/timelines/home")
    [stored] = home

    status, reply = await api(node, token, "POST", "/api/v1/statuses",
                              data={"status": "We do, come by!", "in_reply_to_id": stored["id"]})
    assert status == 200, reply
    await flush(node)
    [create] = [c for c in mastodon.activities("Create") if c["object"]["id"] == reply["uri"]]
    assert create["object"]["inReplyTo"] == mias_post["object"]["id"]
    assert not mastodon.failures


async def test_what_a_booster_embeds_is_never_stored(node, mastodon):
    """A boost carries the post inline, but only the copy from the post's own server counts:
    otherwise anyone could rewrite a stored post, or invent one, by 'boosting' it."""
    token, ana = await member_token(node, "ana", None)
    mia, leo = mastodon.add_actor("mia"), mastodon.add_actor("leo")
    mia_id = await resolve_actor(node.writers, node.app[REMOTE], mia.uri)
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=ana.id, followed_id=mia_id, state="accepted"))
    real = mastodon.create_note(leo, "The assembly is on Tuesday")["object"]
    forged = {**real, "content": "<p>The assembly is cancelled</p>",
              "contentMap": {"en": "<p>The assembly is cancelled</p>"}}
    boost = mastodon.announce(mia, real)
    await deliver(node, mastodon, mia, {**boost, "object": forged})
    _, home = await api(node, token, "GET", "/api/v1/timelines/home")
    [entry] = home
    assert "Tuesday" in entry["reblog"]["content"] and "cancelled" not in entry["reblog"]["content"]

    # Someone nobody follows 'boosts' an invented post: nothing is kept.
    invented = {**real, "id": real["id"] + "0", "content": "<p>Invented</p>"}
    await deliver(node, mastodon, leo, {**mastodon.announce(leo, invented), "object": invented})
    async with node.readers() as db:
        assert await db.scalar(select(Object.id).where(Object.uri == invented["id"])) is None
