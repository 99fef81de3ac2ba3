"""A deleted post's boosts go with it (issue 13, item 3; fedsph/projects/deleted_boosts.py), and
no one but the post's author can make that happen: the node runs in this process, fake peers
are the post's author, a booster elsewhere, a follower of our booster and an attacker."""

from __future__ import annotations

from types import SimpleNamespace

import base58
import pytest
from sqlalchemy import func, select

from fedsph.federation.actors import resolve_actor
from fedsph.federation.proofs import (
    generate_proof_key,
    hash_data,
    load_private_key,
    multikey,
    sign_activity,
    with_data_integrity_context,
)
from fedsph.models import Activity, Actor, Delivery, Follow, Notification, Object, Reaction
from fedsph.projects import outbox
from fedsph.web.keys import REMOTE
from tests.fakepeer import AS, FakePeer
from tests.mastodon_peer import MastodonPeer
from tests.support.db import add_remote_follower, store_remote
from tests.support.members import api, member_token
from tests.support.nodes import flush

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@pytest.fixture
async def elsewhere():
    """A second server: a remote booster's, so that deliveries to it can be told apart."""
    fake = await FakePeer().start()
    yield fake
    await fake.stop()


async def _state(node) -> dict:
    """Everything a Delete or an Undo could change here."""
    async with node.readers() as db:
        return {
            "objects": sorted((o.uri, o.deleted_at is None) for o in await db.scalars(select(Object))),
            "reactions": sorted(await db.scalars(select(Reaction.activity_uri))),
            "notifications": sorted(await db.scalars(select(Notification.activity_uri))),
            "deliveries": await db.scalar(select(func.count(Delivery.id))),
            "activities": await db.scalar(select(func.count(Activity.id))),
        }


async def _boosted_remote_post(node, peer, elsewhere, proof_pem: str | None = None):
    """eva's post (on `peer`), boosted by our bea (whom carol, on `peer`, follows) and by yan
    (on `elsewhere`). With `proof_pem`, eva's actor publishes that integrity-proof key."""
    eva, carol, yan = peer.add_actor("eva"), peer.add_actor("carol"), elsewhere.add_actor("yan")
    if proof_pem:
        eva.document["assertionMethod"] = [multikey(eva.uri, proof_pem)]
    eva_row = await store_remote(node, eva.document)
    yan_row = await store_remote(node, yan.document)
    bea_token, bea = await member_token(node, "bea", None)
    await add_remote_follower(node, bea, carol)
    note_uri = eva.uri + "/notes/1"
    async with node.writers() as db, db.begin():
        db.add(Object(uri=note_uri, type="Note", actor_id=eva_row.id, content="<p>Hi</p>",
                      visibility="public", document={"id": note_uri, "to": [PUBLIC]}))
        db.add(Reaction(type="Announce", actor_id=yan_row.id, object_uri=note_uri,
                        activity_uri=yan.uri + "/announces/1"))
    async with node.readers() as db:
        post_id = await db.scalar(select(Object.id).where(Object.uri == note_uri))
    status, wrapper = await api(node, bea_token, "POST", f"/api/v1/statuses/{post_id}/reblog")
    assert status == 200, wrapper
    await flush(node)
    return SimpleNamespace(eva=eva, yan=yan, bea_token=bea_token, bea=bea, note_uri=note_uri,
                           wrapper=wrapper)


def _delete(peer, actor, object_uri: str) -> dict:
    return {"@context": AS, "id": peer.new_id(), "type": "Delete", "actor": actor.uri,
            "object": {"id": object_uri, "type": "Tombstone"}, "to": [PUBLIC]}


async def test_only_the_author_deletes_and_only_the_booster_undoes(node, peer, elsewhere):
    b = await _boosted_remote_post(node, peer, elsewhere)
    yan, bea_token, note_uri, wrapper = b.yan, b.bea_token, b.note_uri, b.wrapper
    mal = peer.add_actor("mal")
    await store_remote(node, mal.document)
    before = await _state(node)
    received = len(peer.received) + len(elsewhere.received)

    # mal deletes eva's post, and undoes yan's boost and bea's: refused, nothing changes.
    status, _ = await peer.post(mal, f"{node.base}/inbox", _delete(peer, mal, note_uri))
    assert status == 202
    for boost in (yan.uri + "/announces/1", wrapper["uri"]):
        undo = {"@context": AS, "id": peer.new_id(), "type": "Undo", "actor": mal.uri,
                "object": {"id": boost, "type": "Announce", "actor": mal.uri, "object": note_uri}}
        status, _ = await peer.post(mal, f"{node.base}/inbox", undo)
        assert status == 202
    await flush(node)
    assert await _state(node) == before
    assert len(peer.received) + len(elsewhere.received) == received
    status, still = await api(node, bea_token, "GET", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 200 and still["reblog"]["uri"] == note_uri


async def test_the_authors_delete_withdraws_our_boost_where_it_went(node, peer, elsewhere):
    b = await _boosted_remote_post(node, peer, elsewhere)
    eva, bea, bea_token, note_uri, wrapper = b.eva, b.bea, b.bea_token, b.note_uri, b.wrapper
    [announce] = [a for a in peer.activities("Announce") if a["actor"] == bea.uri]

    status, _ = await peer.post(eva, f"{node.base}/inbox", _delete(peer, eva, note_uri))
    assert status == 202
    await flush(node)
    async with node.readers() as db:
        assert (await db.scalar(select(Object).where(Object.uri == note_uri))).deleted_at
        assert list(await db.scalars(select(Reaction))) == []  # bea's and yan's boosts
    # bea's followers (carol) are told: Undo{Announce} of her boost.
    [undo] = peer.activities("Undo")
    assert undo["actor"] == bea.uri and undo["object"]["id"] == announce["id"]
    assert undo["object"]["type"] == "Announce" and undo["object"]["object"] == note_uri
    # eva's Delete has no integrity proof here: it is not forwarded (no one could trust it).
    assert peer.activities("Delete") == []
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 404
    _, home = await api(node, bea_token, "GET", "/api/v1/timelines/home")
    assert home == []


async def test_a_local_authors_delete_withdraws_local_boosts(node, peer, elsewhere):
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    carol, yan = peer.add_actor("carol"), elsewhere.add_actor("yan")
    await add_remote_follower(node, bea, carol)
    yan_row = await store_remote(node, yan.document)
    _, post = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "hello"})
    _, wrapper = await api(node, bea_token, "POST", f"/api/v1/statuses/{post['id']}/reblog")
    async with node.writers() as db, db.begin():
        db.add(Reaction(type="Announce", actor_id=yan_row.id, object_uri=post["uri"],
                        activity_uri=yan.uri + "/announces/1"))
    await flush(node)
    _, notifications = await api(node, ana_token, "GET", "/api/v1/notifications")
    assert [n["type"] for n in notifications] == ["reblog"]

    status, _ = await api(node, ana_token, "DELETE", f"/api/v1/statuses/{post['id']}")
    assert status == 200
    await flush(node)
    # The Delete reaches bea's followers and yan, the booster elsewhere; bea's boost is undone.
    assert any(d["object"]["id"] == post["uri"] for d in peer.activities("Delete"))
    assert any(d["object"]["id"] == post["uri"] for d in elsewhere.activities("Delete"))
    [undo] = peer.activities("Undo")
    assert undo["actor"] == bea.uri and undo["object"]["type"] == "Announce"
    async with node.readers() as db:
        assert list(await db.scalars(select(Reaction))) == []
        assert list(await db.scalars(select(Notification))) == []
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 404
    for token in (ana_token, bea_token):
        _, home = await api(node, token, "GET", "/api/v1/timelines/home")
        assert home == []
    # Deleting again changes nothing more.
    async with node.writers() as db, db.begin():
        obj = await db.get(Object, int(post["id"]))
        await outbox.delete_post(db, node.urls, await db.get(Actor, ana.id), obj)
    assert len(peer.activities("Undo")) == 1


async def test_a_mastodon_follower_of_our_booster_is_told_in_a_way_mastodon_accepts(node):
    """The strict Mastodon-like peer (tests/mastodon_peer.py): leo writes, our bea boosts, mia
    follows bea. leo's Delete reaches bea's node, and mia gets bea's Undo{Announce}, which
    passes every check Mastodon makes (its undo.rb then removes the reblog)."""
    mastodon = await MastodonPeer().start()
    try:
        bea_token, bea = await member_token(node, "bea", None)
        leo, mia = mastodon.add_actor("leo"), mastodon.add_actor("mia")
        leo_id = await resolve_actor(node.writers, node.app[REMOTE], leo.uri)
        async with node.writers() as db, db.begin():
            db.add(Follow(follower_id=bea.id, followed_id=leo_id, state="accepted"))
        for sender, activity in ((mia, mastodon.follow(mia, bea.uri)),
                                 (leo, create := mastodon.create_note(leo, "Leo's plans"))):
            status, text_ = await mastodon.post(sender, f"{node.base}/inbox", activity)
            assert status == 202, text_
        await flush(node)
        async with node.readers() as db:
            post_id = await db.scalar(select(Object.id).where(
                Object.uri == create["object"]["id"]))
        status, wrapper = await api(node, bea_token, "POST", f"/api/v1/statuses/{post_id}/reblog")
        assert status == 200, wrapper
        await flush(node)
        [announce] = mastodon.activities("Announce")

        delete = mastodon.delete_post(leo, create["object"])
        status, _ = await mastodon.post(leo, f"{node.base}/inbox", delete)
        assert status == 202
        await flush(node)
        [undo] = mastodon.activities("Undo")
        assert undo["actor"] == bea.uri and undo["object"]["id"] == announce["id"]
        assert mastodon.activities("Delete") == []  # no proof: nothing anyone could trust
        assert not mastodon.failures
        status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{wrapper['id']}")
        assert status == 404
    finally:
        await mastodon.stop()


async def test_a_boost_of_a_followers_only_post_is_refused_and_reaches_nothing(node, peer,
                                                                            elsewhere):
    """mal announces ana's followers-only post to learn its edits: nothing is stored, and the
    edit (and a boost row left from before, yan's) sends mal and yan nothing."""
    ana_token, _ = await member_token(node, "ana", None)
    mal, yan = peer.add_actor("mal"), elsewhere.add_actor("yan")
    await store_remote(node, mal.document)
    yan_row = await store_remote(node, yan.document)
    status, post = await api(node, ana_token, "POST", "/api/v1/statuses",
                             data={"status": "members only", "visibility": "private"})
    assert status == 200 and post["visibility"] == "private"
    await flush(node)
    before = await _state(node)

    announce = {"@context": AS, "id": peer.new_id(), "type": "Announce", "actor": mal.uri,
                "object": post["uri"], "to": [PUBLIC]}
    status, _ = await peer.post(mal, f"{node.base}/inbox", announce)
    assert status == 202
    await flush(node)
    assert await _state(node) == before
    _, notifications = await api(node, ana_token, "GET", "/api/v1/notifications")
    assert notifications == []

    async with node.writers() as db, db.begin():
        db.add(Reaction(type="Announce", actor_id=yan_row.id, object_uri=post["uri"],
                        activity_uri=yan.uri + "/announces/1"))
    status, edited = await api(node, ana_token, "PUT", f"/api/v1/statuses/{post['id']}",
                               data={"status": "members only: the new secret"})
    assert status == 200, edited
    status, _ = await api(node, ana_token, "DELETE", f"/api/v1/statuses/{post['id']}")
    assert status == 200
    await flush(node)
    assert peer.received == [] and elsewhere.received == []
    async with node.readers() as db:
        assert list(await db.scalars(select(Reaction.activity_uri))) == []  # yan's went with it
        assert await db.scalar(select(func.count(Delivery.id))) == before["deliveries"]


def _expired_proof(document: dict, actor_uri: str, pem: str) -> dict:
    """`document` with a proof by the author's key that expired yesterday (FEP-8b32: such a
    proof is set aside, as one of a kind we do not know)."""
    unsecured = with_data_integrity_context(document)
    options = {"@context": unsecured["@context"], "type": "DataIntegrityProof",
               "cryptosuite": "eddsa-jcs-2022", "verificationMethod": actor_uri + "#ed25519-key",
               "proofPurpose": "assertionMethod", "created": "2026-01-01T00:00:00Z",
               "expires": "2026-01-02T00:00:00Z"}
    value = load_private_key(pem).sign(hash_data(unsecured, options))
    return {**unsecured, "proof": {**options, "proofValue": "z" + base58.b58encode(value).decode()}}


async def _forwarded(node) -> tuple[int, int]:
    """Rows a forward of the author's Delete makes: its activity, and its deliveries."""
    async with node.readers() as db:
        ids = select(Activity.id).where(Activity.uri.like("urn:fedsph:forwarded-for-boosts:%"))
        return (await db.scalar(select(func.count()).select_from(ids.subquery())),
                await db.scalar(select(func.count(Delivery.id)).where(
                    Delivery.activity_id.in_(ids))))


async def test_a_delete_with_a_verified_proof_is_forwarded_once_as_received(node, peer,
                                                                           elsewhere):
    """zed (on a third server) follows our bea, who boosted eva's post: eva's Delete, with her
    proof, reaches zed unchanged and HTTP-signed by bea; carol, on eva's own server, is left
    out (eva's server told its own accounts)."""
    pem = generate_proof_key()
    b = await _boosted_remote_post(node, peer, elsewhere, proof_pem=pem)
    zed = elsewhere.add_actor("zed")
    await add_remote_follower(node, b.bea, zed)
    signed = sign_activity(_delete(peer, b.eva, b.note_uri), b.eva.uri, pem)
    status, _ = await peer.post(b.eva, f"{node.base}/inbox", signed)
    assert status == 202
    await flush(node)
    [forwarded] = [r for r in elsewhere.received if r.activity.get("type") == "Delete"]
    assert forwarded.activity == signed and forwarded.verified
    assert f'keyId="{b.bea.uri}#main-key"' in forwarded.headers["signature"]
    assert peer.activities("Delete") == []
    assert await _forwarded(node) == (1, 1)


@pytest.mark.parametrize("proof", ["unusable", "expired"])
async def test_a_delete_whose_proof_was_not_verified_is_not_forwarded(node, peer, elsewhere,
                                                                     proof):
    """A proof we set aside (a kind we do not know, one expired) lets the HTTP signature vouch
    for eva's Delete here, but we do not pass it on as hers: no Delete leaves, no row for one."""
    pem = generate_proof_key()
    b = await _boosted_remote_post(node, peer, elsewhere, proof_pem=pem)
    zed = elsewhere.add_actor("zed")
    await add_remote_follower(node, b.bea, zed)
    delete = _delete(peer, b.eva, b.note_uri)
    if proof == "unusable":
        delete = {**delete, "proof": {"type": "Nope"}, "content": "added by the sender"}
    else:
        delete = _expired_proof(delete, b.eva.uri, pem)
    before = await _state(node)
    status, _ = await peer.post(b.eva, f"{node.base}/inbox", delete)
    assert status == 202
    await flush(node)
    assert [r for r in elsewhere.received if r.activity.get("type") == "Delete"] == []
    assert peer.activities("Delete") == []
    assert await _forwarded(node) == (0, 0)
    # The Delete itself was taken (eva's HTTP signature): the post and the boosts went, and
    # the only new activity is bea's Undo{Announce}, to her followers and eva.
    after = await _state(node)
    assert after["reactions"] == [] and after["activities"] == before["activities"] + 1
    async with node.readers() as db:
        assert (await db.scalar(select(Object).where(Object.uri == b.note_uri))).deleted_at
        assert list(await db.scalars(select(Activity.type).order_by(Activity.id)))[-1] == "Undo"
