"""An account's posts (GET /api/v1/accounts/:id/statuses) from Mastodon.py against a real
`fedsph serve`, and finding a remote post by its URL (search with resolve=true) in-process.
"""

from __future__ import annotations

import aiohttp
import pytest
import requests
from mastodon import Mastodon

from fedsph.accounts import hash_token
from fedsph.models import Actor, OAuthApp, OAuthToken, Object, User, utcnow
from tests.mastodon_client import logged_in, start_server, stop_server
from tests.processes import wait_for
from tests.support import testdb

AS = "https://www.w3.org/ns/activitystreams"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mastodon-account-statuses"))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def ana(server) -> Mastodon:
    return logged_in(server, "ana")


@pytest.fixture(scope="module")
def bea(server) -> Mastodon:
    return logged_in(server, "bea")


@pytest.mark.e2e
def test_account_statuses_pages_pins_and_replies(server, ana):
    me = ana.account_verify_credentials().id
    posts = [ana.status_post(f"Ana cuenta {n}") for n in range(3)]
    reply = ana.status_post("Y me contesto", in_reply_to_id=posts[0].id)
    newest_first = [reply.id, *(p.id for p in reversed(posts))]

    first = ana.account_statuses(me, limit=2)
    assert [s.id for s in first] == newest_first[:2]
    assert [s.id for s in ana.fetch_next(first)] == newest_first[2:4]
    assert reply.id not in [s.id for s in ana.account_statuses(me, exclude_replies=True)]

    # Pinning from apps is not this test's subject: the row is pinned directly.
    testdb.sql(server.data_dir, "UPDATE objects SET pinned_at = :at WHERE id = :id",
               at=utcnow(), id=int(posts[1].id))
    pinned = ana.account_statuses(me, pinned=True)
    assert [s.id for s in pinned] == [posts[1].id] and pinned[0].pinned
    assert ana.account_statuses(me, only_media=True) == []


@pytest.mark.e2e
def test_followers_only_posts_need_a_follow(server, ana, bea):
    bea_id = bea.account_verify_credentials().id
    private = bea.status_post("Solo para quien me sigue", visibility="private")
    public = bea.status_post("Para todo el mundo")
    assert [s.id for s in bea.account_statuses(bea_id)][:2] == [public.id, private.id]
    assert private.id not in [s.id for s in ana.account_statuses(bea_id)]
    anonymous = requests.get(f"{server.base}/api/v1/accounts/{bea_id}/statuses", timeout=10)
    assert str(private.id) not in [s["id"] for s in anonymous.json()]

    ana.account_follow(bea_id)
    wait_for(lambda: ana.account_relationships(bea_id)[0].following,
             what="the local follow to be accepted")
    assert private.id in [s.id for s in ana.account_statuses(bea_id)]
    assert requests.get(f"{server.base}/api/v1/accounts/999999/statuses",
                        timeout=10).status_code == 404


async def _token(node) -> str:
    """A read token acting as a fresh local member, made directly in the database."""
    actor = await node.create_actor("lector", "Person")
    async with node.writers() as db, db.begin():
        user = User(username="lector", actor_id=actor.id)
        app = OAuthApp(client_id="test-client", client_secret_hash=hash_token("secret"),
                       name="tests", website=None, redirect_uris="urn:ietf:wg:oauth:2.0:oob",
                       scopes="read")
        db.add_all([user, app])
        await db.flush()
        db.add(OAuthToken(token_hash=hash_token("the-token"), app_id=app.id, user_id=user.id,
                          actor_id=actor.id, scopes="read", created_at=utcnow()))
    return "the-token"


async def _search(node, token: str | None, **params) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(
            f"{node.base}/api/v2/search", params=params, headers=headers) as answer:
        return answer.status, await answer.json()


async def test_search_resolves_a_remote_post_by_url(node, peer):
    token = await _token(node)
    eva = peer.add_actor("eva")
    note_id = f"{peer.base}/notes/1"
    peer.objects[note_id] = {
        "@context": AS, "id": note_id, "type": "Note", "attributedTo": eva.uri,
        "content": "<p>Hola desde lejos</p>", "published": "2026-01-02T03:04:05Z",
        "to": [f"{AS}#Public"], "cc": [], "url": note_id}

    status, found = await _search(node, token, q=note_id)
    assert status == 200 and found["statuses"] == []  # unknown, and not resolved
    status, _ = await _search(node, None, q=note_id, resolve="true")
    assert status == 401
    status, found = await _search(node, token, q=note_id, resolve="true", type="accounts")
    assert found == {"accounts": [], "statuses": [], "hashtags": []}

    status, found = await _search(node, token, q=note_id, resolve="true")
    assert status == 200 and found["accounts"] == []
    [entity] = found["statuses"]
    assert entity["uri"] == note_id and "Hola desde lejos" in entity["content"]
    assert entity["account"]["acct"].startswith("eva@")

    # Stored now: found again without fetching, even when the peer is gone.
    await peer.stop()
    status, found = await _search(node, token, q=note_id, type="statuses")
    assert [s["id"] for s in found["statuses"]] == [entity["id"]]
    async with node.writers() as db:
        stored = await db.get(Object, int(entity["id"]))
        assert stored.uri == note_id and (await db.get(Actor, stored.actor_id)).uri == eva.uri


async def test_search_refuses_a_post_hosted_away_from_its_author(node, peer):
    token = await _token(node)
    peer.add_actor("eva")
    note_id = f"{peer.base}/notes/2"
    peer.objects[note_id] = {
        "@context": AS, "id": note_id, "type": "Note", "content": "<p>Suplantación</p>",
        "attributedTo": "https://elsewhere.example/users/eva", "to": [f"{AS}#Public"]}
    status, found = await _search(node, token, q=note_id, resolve="true")
    assert status == 200 and found["statuses"] == []
