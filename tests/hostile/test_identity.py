"""Hostile peers against a real `fedsph serve` process: nobody speaks for another actor.

One node runs for the whole module (real processes are slow); each test gets fresh attacker
servers on loopback (FakePeer), so nothing the node cached from one test helps another. Every
refused attack is also checked for what it must not have done: rows in the node's database,
its pages and its AS2 documents, and requests the node must not have made.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from fedsph.federation.crypto import rsa_sign
from fedsph.federation.httpsig import http_date, request_target, sha256_digest, sign_request
from tests.fakepeer import AS, FakePeer, PeerActor
from tests.processes import NodeProcess
from tests.support import testdb

pytestmark = pytest.mark.e2e

PUBLIC = AS + "#Public"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    # Blocks are written straight into the database below, as another process would: the inbox
    # rereads them on every request here instead of within FEDSPH_BLOCK_REFRESH_SECONDS.
    process = NodeProcess(tmp_path_factory.mktemp("identity"), FEDSPH_BLOCK_REFRESH_SECONDS="0")
    process.cli("migrate")
    process.cli("project", "create", "alpha", "--name", "Project Alpha")
    process.start()
    process.alpha = f"{process.base}/actors/alpha"
    process.alpha_post = process.cli("post", "alpha", "--text", "Genuine alpha news").stdout.strip()
    yield process
    process.stop()


@pytest.fixture
async def hosts():
    """Three attacker-or-victim servers on loopback: b (victims and a neighbour), c (attacker)."""
    started = [await FakePeer().start() for _ in range(3)]
    yield started
    for peer in started:
        await peer.stop()


def rows(node: NodeProcess, sql: str, *args) -> list[tuple]:
    """Read the node's database directly, on either engine: what was really stored."""
    numbered = iter(range(len(args)))
    statement = re.sub(r"\?", lambda _: f":p{next(numbered)}", sql)
    return testdb.sql(node.data_dir, statement, **{f"p{n}": arg for n, arg in enumerate(args)})


async def eventually(predicate, what: str, timeout: float = 30):
    """Poll without blocking the loop: the FakePeers answer the node from this same loop."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def processed(node: NodeProcess, activity_id: str) -> str:
    """Wait until the node's worker handled the activity; its status (done, ignored, ...)."""
    def status():
        found = rows(node, "SELECT status FROM inbox_items WHERE activity_uri = ?", activity_id)
        return found and found[0][0] != "pending" and found[0][0]
    return await eventually(status, f"the worker to handle {activity_id}")


def note(peer: FakePeer, author: str, text: str, to: str, **extra) -> dict:
    return {"id": peer.new_id("notes"), "type": "Note", "attributedTo": author,
            "content": f"<p>{text}</p>", "to": [to, PUBLIC],
            "published": "2026-01-01T10:00:00Z", **extra}


def activity(peer: FakePeer, kind: str, actor: str, obj, **extra) -> dict:
    return {"@context": AS, "id": peer.new_id(), "type": kind, "actor": actor, "object": obj,
            "to": [PUBLIC], **extra}


def forged_actor_document(attacker: PeerActor, claimed_id: str, inbox: str) -> dict:
    """An actor document served on the attacker's path that claims another actor's id."""
    return {**attacker.document, "id": claimed_id, "type": "Group", "inbox": inbox,
            "publicKey": {"id": attacker.key_id, "owner": claimed_id,
                          "publicKeyPem": attacker.public_pem}}


def objects_containing(node: NodeProcess, marker: str) -> list[tuple]:
    # document is a JSON column: PostgreSQL has no LIKE on json, so it is read as text.
    return rows(node, "SELECT uri FROM objects WHERE content LIKE ? OR CAST(document AS TEXT) LIKE ?",
                f"%{marker}%", f"%{marker}%")


def shows_nowhere(node: NodeProcess, marker: str) -> bool:
    """Not in the database, the home page, the project page or the project's AS2 outbox."""
    outbox = node.get("/actors/alpha/outbox?page=1")[1]
    return (not objects_containing(node, marker) and marker not in node.html("/")
            and marker not in node.html("/actors/alpha") and marker not in outbox)


async def follow(node: NodeProcess, peer: FakePeer, actor: PeerActor) -> None:
    """`actor` follows alpha, so the node caches it as a remote follower."""
    follow_activity = activity(peer, "Follow", actor.uri, node.alpha)
    status, _ = await peer.post(actor, f"{node.alpha}/inbox", follow_activity)
    assert status == 202
    assert await processed(node, follow_activity["id"]) == "done"


async def test_key_document_claiming_a_local_project_is_refused_without_a_fetch(node, hosts):
    _, _, attacker_host = hosts
    attacker = attacker_host.add_actor("mallory")
    attacker_host.serve("/users/mallory", forged_actor_document(
        attacker, node.alpha, attacker_host.base + "/inbox"))
    marker = "FORGED-" + uuid.uuid4().hex
    forged = activity(attacker_host, "Create", node.alpha,
                      note(attacker_host, node.alpha, marker, node.alpha))
    status, text = await attacker_host.post(attacker, f"{node.base}/inbox", forged)
    assert status == 403, text
    delete = activity(attacker_host, "Delete", node.alpha, node.alpha)
    status, _ = await attacker_host.post(attacker, f"{node.base}/inbox", delete)
    assert status == 403
    edit = activity(attacker_host, "Update", node.alpha, {
        "id": node.alpha_post, "type": "Note", "attributedTo": node.alpha,
        "content": marker, "updated": "2099-01-01T00:00:00Z", "to": [PUBLIC]})
    status, _ = await attacker_host.post(attacker, f"{node.alpha}/inbox", edit)
    assert status == 403
    assert attacker_host.gets() == []  # refused before any key fetch
    assert not rows(node, "SELECT id FROM inbox_items WHERE activity_uri IN (?, ?, ?)",
                    forged["id"], delete["id"], edit["id"])
    assert shows_nowhere(node, marker)
    assert node.get("/actors/alpha")[0] == 200
    assert "Project Alpha" in node.html("/actors/alpha")
    assert "Genuine alpha news" in node.html("/actors/alpha")
    assert node.alpha_post in node.get("/actors/alpha/outbox?page=1")[1]
    assert rows(node, "SELECT local, key_id FROM actors WHERE uri = ?", node.alpha) == [
        (1, node.alpha + "#main-key")]
    log = node.server_log()
    assert "inbox refused 403" in log and attacker.key_id in log and marker not in log


async def test_neighbour_claiming_a_remote_followers_id_takes_over_nothing(node, hosts):
    victim_host, _, attacker_host = hosts
    bob = victim_host.add_actor("bob")
    await follow(node, victim_host, bob)
    before = rows(node, "SELECT key_id, public_key_pem, inbox FROM actors WHERE uri = ?", bob.uri)
    assert before and before[0][0] == bob.key_id
    # Mallory has an account on bob's own server and serves a document claiming bob's id.
    mallory = victim_host.add_actor("mallory")
    victim_host.serve("/users/mallory", forged_actor_document(
        mallory, bob.uri, attacker_host.base + "/inbox"))
    marker = "TAKEOVER-" + uuid.uuid4().hex
    forged = activity(victim_host, "Create", bob.uri, note(victim_host, bob.uri, marker, node.alpha))
    status, text = await victim_host.post(mallory, f"{node.base}/inbox", forged)
    assert status == 401, text
    after = rows(node, "SELECT key_id, public_key_pem, inbox FROM actors WHERE uri = ?", bob.uri)
    assert after == before
    assert not rows(node, "SELECT id FROM actors WHERE key_id = ?", mallory.key_id)
    assert shows_nowhere(node, marker)
    # Deliveries still go to bob's real inbox, none to the attacker's.
    news = node.cli("post", "alpha", "--text", "For our followers").stdout.strip()
    await eventually(lambda: any(get_id(a.get("object")) == news
                                 for a in victim_host.activities("Create")),
                     "alpha's post to reach bob's server")
    assert not [r for r in attacker_host.received if r.activity.get("type") == "Create"]


def get_id(value):
    return value.get("id") if isinstance(value, dict) else value


async def test_key_document_whose_owner_does_not_list_it_is_refused(node, hosts):
    victim_host, _, attacker_host = hosts
    bob = victim_host.add_actor("bob")
    attacker = attacker_host.add_actor("mallory")
    # A standalone key on the attacker's host naming bob as its owner (bob never lists it),
    # sent for a relayed-looking Create that carries a made-up proof.
    key_id = attacker_host.serve("/keys/1", {"id": attacker_host.base + "/keys/1", "type": "Key",
                                             "owner": bob.uri, "publicKeyPem": attacker.public_pem})
    attacker.key_id = key_id
    marker = "KEYDOC-" + uuid.uuid4().hex
    forged = activity(victim_host, "Create", bob.uri, note(victim_host, bob.uri, marker, node.alpha),
                      proof={"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022",
                             "verificationMethod": bob.uri + "#ed25519-key",
                             "proofPurpose": "assertionMethod", "proofValue": "z111"})
    status, _ = await attacker_host.post(attacker, f"{node.base}/inbox", forged)
    assert status == 401
    assert not rows(node, "SELECT id FROM actors WHERE key_id = ?", key_id)
    assert shows_nowhere(node, marker)


async def test_non_owner_cannot_change_or_delete_a_remote_post(node, hosts):
    victim_host, other_host, _ = hosts
    bob = victim_host.add_actor("bob")
    mallory = victim_host.add_actor("mallory")  # same server as bob, another account
    post = note(victim_host, bob.uri, "Bob's own words", node.alpha)
    create = activity(victim_host, "Create", bob.uri, post)
    assert (await victim_host.post(bob, f"{node.base}/inbox", create))[0] == 202
    assert await processed(node, create["id"]) == "done"
    stored = rows(node, "SELECT content, actor_id, deleted_at FROM objects WHERE uri = ?", post["id"])
    assert "Bob's own words" in stored[0][0]
    marker = "REWRITE-" + uuid.uuid4().hex
    edit = activity(victim_host, "Update", mallory.uri, {
        **post, "attributedTo": mallory.uri, "content": marker, "updated": "2099-01-01T00:00:00Z"})
    assert (await victim_host.post(mallory, f"{node.base}/inbox", edit))[0] == 202
    assert await processed(node, edit["id"]) == "ignored"
    delete = activity(victim_host, "Delete", mallory.uri, post["id"])
    assert (await victim_host.post(mallory, f"{node.base}/inbox", delete))[0] == 202
    assert await processed(node, delete["id"]) == "ignored"
    assert rows(node, "SELECT content, actor_id, deleted_at FROM objects WHERE uri = ?",
                post["id"]) == stored
    assert shows_nowhere(node, marker)
    # A post created under an id on another server, or under one of ours, is not kept.
    for foreign_id in (other_host.new_id("notes"), f"{node.base}/objects/{uuid.uuid4().hex}"):
        create = activity(victim_host, "Create", mallory.uri, {
            **note(victim_host, mallory.uri, marker, node.alpha), "id": foreign_id})
        assert (await victim_host.post(mallory, f"{node.base}/inbox", create))[0] == 202
        assert await processed(node, create["id"]) == "ignored"
        assert not rows(node, "SELECT id FROM objects WHERE uri = ?", foreign_id)
    assert shows_nowhere(node, marker)


async def test_an_older_update_does_not_roll_back_an_edit(node, hosts):
    victim_host, _, _ = hosts
    bob = victim_host.add_actor("bob")
    post = note(victim_host, bob.uri, "first version", node.alpha)
    steps = [("Create", post), ("Update", {**post, "content": "<p>second version</p>",
                                           "updated": "2026-01-03T10:00:00Z"}),
             ("Update", {**post, "content": "<p>stale version</p>",
                         "updated": "2026-01-02T10:00:00Z"})]
    statuses = []
    for kind, obj in steps:
        sent = activity(victim_host, kind, bob.uri, obj)
        assert (await victim_host.post(bob, f"{node.base}/inbox", sent))[0] == 202
        statuses.append(await processed(node, sent["id"]))
    assert statuses == ["done", "done", "ignored"]
    content, = rows(node, "SELECT content FROM objects WHERE uri = ?", post["id"])[0]
    assert "second version" in content and "stale" not in content


def hand_signed(actor: PeerActor, url: str, body: bytes, names: list[str],
                date: str | None = None, digest: str | None = None) -> dict:
    """Headers signed over exactly `names` (what a lax or hostile sender might sign)."""
    headers = {"host": url.split("/")[2], "date": date or http_date(),
               "digest": digest or sha256_digest(body), "content-type": "application/activity+json",
               "(request-target)": request_target("POST", url)}
    text = "\n".join(f"{name}: {headers[name]}" for name in names)
    signature = base64.b64encode(rsa_sign(actor.private_pem, text.encode())).decode()
    sent = {k: v for k, v in headers.items() if not k.startswith("(")}
    sent["signature"] = (f'keyId="{actor.key_id}",algorithm="rsa-sha256",'
                         f'headers="{" ".join(names)}",signature="{signature}"')
    return sent


@pytest.mark.parametrize("case", ["no request-target", "no host", "old date", "bad digest"])
async def test_weak_or_stale_signatures_are_refused_before_any_fetch(node, hosts, case):
    victim_host, _, _ = hosts
    bob = victim_host.add_actor("bob")
    marker = "WEAK-" + uuid.uuid4().hex
    body = orjson.dumps(activity(victim_host, "Create", bob.uri,
                                 note(victim_host, bob.uri, marker, node.alpha)))
    url = f"{node.base}/inbox"
    names = ["(request-target)", "host", "date", "digest"]
    if case == "no request-target":
        headers = hand_signed(bob, url, body, names[1:])
    elif case == "no host":
        headers = hand_signed(bob, url, body, [n for n in names if n != "host"])
    elif case == "old date":
        headers = sign_request("POST", url, bob.key_id, bob.private_pem, body=body,
                               now=datetime.now(UTC) - timedelta(days=2))
    else:
        headers = hand_signed(bob, url, body, names, digest=sha256_digest(b"another body"))
    async with victim_host.http.post(url, data=body, headers=headers) as resp:
        assert resp.status == 401, await resp.text()
    assert victim_host.gets() == []  # no key fetch: the node made no request at all
    assert shows_nowhere(node, marker)


# -- key binding, in process (no node needed) --------------------------------------------------


@pytest.fixture
async def remote():
    from fedsph.federation.crypto import generate_rsa_keypair
    from fedsph.federation.remote import Remote, Signer, make_client_session

    session = make_client_session(allow_private=True, timeout=5)
    private_pem, _ = generate_rsa_keypair()
    yield Remote(session, Signer("http://127.0.0.1:9/actor#main-key", private_pem), True)
    await session.close()


async def test_a_redirect_to_another_host_never_vouches_for_an_actor(hosts, remote):
    from fedsph.errors import FetchError
    from fedsph.federation.actors import fetch_key_owner

    victim_host, _, attacker_host = hosts
    eve = victim_host.add_actor("eve")
    mallory = attacker_host.add_actor("mallory")
    # An open redirect on the victim's server leads to a document the attacker wrote, which
    # claims the victim's URL as its id and publishes the attacker's key under eve's key id.
    victim_host.redirects["/go"] = attacker_host.base + "/users/forged"
    attacker_host.serve("/users/forged", {**forged_actor_document(mallory, victim_host.base + "/go",
                                                                  attacker_host.base + "/inbox"),
                                          "publicKey": {"id": victim_host.base + "/go#main-key",
                                                        "owner": victim_host.base + "/go",
                                                        "publicKeyPem": mallory.public_pem}})
    with pytest.raises(FetchError, match="id is"):
        await fetch_key_owner(remote, victim_host.base + "/go#main-key")
    # The real actor, fetched from its own id, is believed.
    values = await fetch_key_owner(remote, eve.key_id)
    assert values["uri"] == eve.uri and values["public_key_pem"] == eve.public_pem


async def test_our_own_origin_is_never_fetched(remote):
    from fedsph.errors import BlockedAddress

    with pytest.raises(BlockedAddress):
        await remote.fetch_json("http://127.0.0.1:9/actors/alpha")


async def test_a_blocked_actor_is_dropped_before_any_fetch(node, hosts):
    victim_host, _, _ = hosts
    blocked = victim_host.add_actor("blocked")
    rows(node, "INSERT INTO blocks (actor_uri, created_at) VALUES (?, ?)",
         blocked.uri, datetime.now(UTC).replace(tzinfo=None))
    try:
        marker = "BLOCKED-" + uuid.uuid4().hex
        sent = activity(victim_host, "Create", blocked.uri,
                        note(victim_host, blocked.uri, marker, node.alpha))
        assert (await victim_host.post(blocked, f"{node.base}/inbox", sent))[0] == 202
        assert victim_host.gets() == []
        assert not rows(node, "SELECT id FROM inbox_items WHERE activity_uri = ?", sent["id"])
        assert not rows(node, "SELECT id FROM actors WHERE uri = ?", blocked.uri)
        assert shows_nowhere(node, marker)
    finally:
        rows(node, "DELETE FROM blocks WHERE actor_uri = ?", blocked.uri)
