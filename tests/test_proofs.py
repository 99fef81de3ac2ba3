"""Object Integrity Proofs (FEP-8b32, eddsa-jcs-2022): our signatures, checked by a second
implementation written here from the spec, the FEP's test vector, and relayed activities."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import base58
import jcs
import orjson
import pytest
from alembic import command
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from fedsph.db import alembic_config
from fedsph.federation import proofs
from fedsph.models import Activity, Actor, InboxItem
from fedsph.projects.outbox import follow, publish_text_post
from tests.support.db import add_remote_follower, inbox_items
from tests.support.proofs import independent_verify, mastodon_verify, method_of

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"

# The FEP-8b32 test vector (fep-8b32.feature): secret key, document, and the expected proof.
VECTOR_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
VECTOR_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
VECTOR_PROOF_VALUE = ("z42ffGu6AUKPCFcFPiabmUvnGLPJzC7e4DGWC52NUasSSH37UMa9c58tdgVszUcZfytxa4fQ"
                      "5TYHaJENCxUDe9SdL")
VECTOR_DOCUMENT = {
    "@context": [AS, "https://w3id.org/security/data-integrity/v2"],
    "id": "https://server.example/activities/1",
    "type": "Create",
    "actor": "https://server.example/users/alice",
    "object": {
        "id": "https://server.example/objects/1",
        "type": "Note",
        "attributedTo": "https://server.example/users/alice",
        "content": "Hello world",
        "location": {"type": "Place", "longitude": -71.184902, "latitude": 25.273962},
    },
}
VECTOR_ACTOR = {
    "id": "https://server.example/users/alice",
    "type": "Person",
    "assertionMethod": [{
        "id": "https://server.example/users/alice#ed25519-key", "type": "Multikey",
        "controller": "https://server.example/users/alice", "publicKeyMultibase": VECTOR_PUBLIC,
    }],
}


def sign_with_options(document: dict, key: Ed25519PrivateKey, options: dict) -> dict:
    """A proof made here from the options given, hashed as they are (Mastodon's reading)."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    digest = (hashlib.sha256(jcs.canonicalize(options)).digest()
              + hashlib.sha256(jcs.canonicalize(unsecured)).digest())
    value = "z" + base58.b58encode(key.sign(digest)).decode()
    return {**unsecured, "proof": {**options, "proofValue": value}}


# -- pure functions ------------------------------------------------------------------------------


def test_fep_test_vector_is_reproduced():
    key = proofs.private_key_from_multibase(VECTOR_SECRET)
    assert proofs.public_key_multibase(key.public_key()) == VECTOR_PUBLIC
    signed = proofs.sign(VECTOR_DOCUMENT, key, "https://server.example/users/alice#ed25519-key",
                         datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC))
    assert signed["proof"]["proofValue"] == VECTOR_PROOF_VALUE
    assert signed["proof"]["created"] == "2023-02-24T23:36:38Z"
    assert signed["proof"]["@context"] == VECTOR_DOCUMENT["@context"]
    proofs.verify_activity(signed, VECTOR_ACTOR)
    independent_verify(signed, VECTOR_PUBLIC)


def test_round_trip_and_independent_check():
    pem = proofs.generate_proof_key()
    actor = "https://here.example/actors/coop"
    document = {"@context": AS, "id": actor + "/a/1", "type": "Create", "actor": actor,
                "to": [PUBLIC], "object": {"type": "Note", "content": "¡Hola! ünïcode 1.5e3"}}
    signed = proofs.sign_activity(document, actor, pem)
    assert signed["@context"] == [AS, proofs.DATA_INTEGRITY_CONTEXT]
    controller = {"id": actor, "assertionMethod": [proofs.multikey(actor, pem)]}
    assert proofs.verify_activity(signed, controller)["verificationMethod"] == actor + "#ed25519-key"
    independent_verify(signed, method_of(controller)["publicKeyMultibase"])
    # The proof survives a trip through another JSON serialiser (key order does not matter).
    proofs.verify_activity(orjson.loads(orjson.dumps(signed, option=orjson.OPT_SORT_KEYS)), controller)


@pytest.mark.parametrize("context", [
    AS, [AS], [AS, proofs.DATA_INTEGRITY_CONTEXT], proofs.DATA_INTEGRITY_CONTEXT,
    [AS, "https://w3id.org/security/data-integrity/v2", {"toot": "http://joinmastodon.org/ns#"}],
])
def test_what_we_sign_passes_mastodons_checks(context):
    # Mastodon compares the proof's @context with the document's only when the latter is a list
    # (app/lib/activitypub/object_integrity_proof.rb): ours always is, and the two are equal.
    pem = proofs.generate_proof_key()
    actor = "https://here.example/actors/coop"
    signed = proofs.sign_activity({"@context": context, "id": actor + "/a/9", "type": "Create",
                                   "actor": actor, "to": [PUBLIC], "object": {"content": "x"}},
                                  actor, pem)
    assert isinstance(signed["@context"], list)
    assert signed["proof"]["@context"] == signed["@context"]
    mastodon_verify(signed, proofs.multikey(actor, pem)["publicKeyMultibase"])
    # An LD signature added afterwards (FEP-8b32: proof first) is left out by both.
    with_ld = {**signed, "signature": {"type": "RsaSignature2017", "signatureValue": "x"}}
    mastodon_verify(with_ld, proofs.multikey(actor, pem)["publicKeyMultibase"])
    proofs.verify_activity(with_ld, {"id": actor, "assertionMethod": [proofs.multikey(actor, pem)]})


def test_proof_without_context_is_read_as_mastodon_reads_it():
    # Mastodon hashes the proof options as they are, without adding the document's @context
    # (app/lib/activitypub/object_integrity_proof.rb); the W3C algorithm adds it. A proof made
    # without @context the first way verifies here too, and still fails when altered.
    key = Ed25519PrivateKey.generate()
    actor = "https://there.example/users/alice"
    document = {"@context": [AS, proofs.DATA_INTEGRITY_CONTEXT], "id": actor + "/a/1",
                "type": "Create", "actor": actor, "to": [PUBLIC], "object": {"content": "hi"}}
    options = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022",
               "verificationMethod": actor + "#ed25519-key", "proofPurpose": "assertionMethod",
               "created": "2026-01-01T00:00:00Z"}
    signed = sign_with_options(document, key, options)
    controller = {"id": actor, "assertionMethod": [{
        "id": actor + "#ed25519-key", "type": "Multikey", "controller": actor,
        "publicKeyMultibase": proofs.public_key_multibase(key.public_key())}]}
    proofs.verify_activity(signed, controller)
    signed["object"]["content"] = "altered"
    with pytest.raises(proofs.ProofError):
        proofs.verify_activity(signed, controller)


def test_expired_proof_is_ignored_not_trusted():
    # FEP-8b32 (fep/8b32/fep-8b32.md, Proof verification): a proof that has expired, per its
    # `expires`, is ignored and other authentication is tried.
    key = Ed25519PrivateKey.generate()
    actor = "https://there.example/users/alice"
    document = {"@context": [AS, proofs.DATA_INTEGRITY_CONTEXT], "id": actor + "/a/2",
                "type": "Create", "actor": actor, "to": [PUBLIC], "object": {"content": "hi"}}
    controller = {"id": actor, "assertionMethod": [{
        "id": actor + "#ed25519-key", "type": "Multikey", "controller": actor,
        "publicKeyMultibase": proofs.public_key_multibase(key.public_key())}]}

    def with_expiry(expires: str) -> dict:
        return sign_with_options(document, key, {
            "@context": document["@context"], "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022", "verificationMethod": actor + "#ed25519-key",
            "proofPurpose": "assertionMethod", "created": "2020-01-01T00:00:00Z",
            "expires": expires})

    proofs.verify_activity(with_expiry("2999-01-01T00:00:00Z"), controller)
    with pytest.raises(proofs.ProofUnusable, match="expired"):
        proofs.verify_activity(with_expiry("2021-01-01T00:00:00Z"), controller)
    with pytest.raises(proofs.ProofError, match="not a date"):
        proofs.verify_activity(with_expiry("soon"), controller)


@pytest.mark.parametrize("tamper", [
    lambda d: d["object"].update(content="changed"),
    lambda d: d.update(to=[]),
    lambda d: d["proof"].update(created="2030-01-01T00:00:00Z"),
    lambda d: d.update({"@context": AS}),
])
def test_tampering_fails(tamper):
    pem = proofs.generate_proof_key()
    actor = "https://here.example/actors/coop"
    signed = proofs.sign_activity({"@context": AS, "id": actor + "/a/2", "type": "Create",
                                   "actor": actor, "object": {"content": "x"}}, actor, pem)
    tamper(signed)
    controller = {"id": actor, "assertionMethod": [proofs.multikey(actor, pem)]}
    with pytest.raises(proofs.ProofError):
        proofs.verify_activity(signed, controller)


def test_key_of_another_actor_or_origin_is_refused():
    pem = proofs.generate_proof_key()
    mallory = "https://evil.example/users/mallory"
    signed = proofs.sign_activity({"@context": AS, "type": "Create", "actor": mallory,
                                   "object": {}}, mallory, pem)
    # Checked against someone else's document: refused before any cryptography.
    with pytest.raises(proofs.ProofError, match="not the activity's actor"):
        proofs.verify_activity(signed, {"id": "https://here.example/users/alice"})
    # A key whose controller is not the actor.
    foreign = {**proofs.multikey(mallory, pem), "controller": "https://other.example/x"}
    with pytest.raises(proofs.ProofError, match="not controlled"):
        proofs.verify_activity(signed, {"id": mallory, "assertionMethod": [foreign]})
    with pytest.raises(proofs.ProofUnusable):
        proofs.verify_activity(signed, {"id": mallory, "assertionMethod": []})


# -- our actors and what they send -------------------------------------------------------------


async def test_actor_document_publishes_the_multikey(node, peer):
    project = await node.create_actor("coop")
    status, document = await peer.get(None, project.uri)
    assert status == 200
    assert proofs.DATA_INTEGRITY_CONTEXT in document["@context"]
    assert proofs.MULTIKEY_CONTEXT in document["@context"]
    method = method_of(document)
    assert method == {"id": project.uri + "#ed25519-key", "type": "Multikey",
                      "controller": project.uri, "publicKeyMultibase": method["publicKeyMultibase"]}
    assert method["publicKeyMultibase"].startswith("z6Mk")  # Ed25519 multikeys read z6Mk…


async def test_migration_0010_gives_actors_made_before_proofs_a_lasting_key(node, peer):
    older, other = await node.create_actor("older"), await node.create_actor("other")
    remote = peer.add_actor("alice")
    await add_remote_follower(node, older, remote)
    async with node.writers() as db, db.begin():  # as a database from before proofs held them
        await db.execute(update(Actor).values(proof_key_pem=None))
    config = alembic_config(node.settings.effective_database_url)
    await asyncio.to_thread(command.downgrade, config, "0009_inbox_signer")
    await asyncio.to_thread(command.upgrade, config, "head")
    async with node.readers() as db:
        keys = dict((await db.execute(select(Actor.uri, Actor.proof_key_pem))).all())
    assert keys[remote.uri] is None  # another server's actor: its keys are its own
    local = [keys[older.uri], keys[other.uri], keys[node.urls.instance_actor()]]
    assert all(local) and len(set(local)) == 3  # one key each
    first = method_of((await peer.get(None, older.uri))[1])
    assert proofs.multikey(older.uri, keys[older.uri]) == first


async def test_every_public_activity_we_send_carries_a_valid_proof(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    await add_remote_follower(node, project, alice)
    async with node.writers() as db, db.begin():
        coop = await db.get(Actor, project.id)
        await publish_text_post(db, node.urls, coop, "Public news")
        await publish_text_post(db, node.urls, coop, "Members only", visibility="followers")
        target = await db.scalar(select(Actor).where(Actor.uri == alice.uri))
        await follow(db, node.urls, coop, target)
    await node.run_worker()
    method = method_of((await peer.get(None, project.uri))[1])
    creates = peer.activities("Create")
    public = [a for a in creates if PUBLIC in a.get("to", [])]
    assert len(creates) == 2 and len(public) == 1
    independent_verify(public[0], method["publicKeyMultibase"])
    assert public[0]["proof"]["verificationMethod"] == method["id"]
    # Followers-only posts and handshakes are not for relays: no proof.
    assert all("proof" not in a for a in creates if a not in public)
    assert "proof" not in peer.activities("Follow")[0]


async def test_keys_are_made_with_the_actor_and_only_read_after(node, peer):
    project = await node.create_actor("coop")
    async with node.readers() as db:
        made = await db.scalar(select(Actor.proof_key_pem).where(Actor.id == project.id))
        instance = await db.scalar(select(Actor.proof_key_pem)
                                   .where(Actor.uri == node.urls.instance_actor()))
    assert made and instance and made != instance
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, await db.get(Actor, project.id), "First signed")
        body = await db.scalar(select(Activity.body).where(Activity.object_uri == note.uri))
    method = method_of((await peer.get(None, project.uri))[1])
    independent_verify(orjson.loads(body), method["publicKeyMultibase"])
    assert method == proofs.multikey(project.uri, made)  # served and used as it was made

    # Serving a document never writes: an actor without a key (a database that skipped
    # migration 0010) is served without one, and refuses to publish rather than make one.
    keyless = await node.create_actor("keyless")
    async with node.writers() as db, db.begin():
        await db.execute(update(Actor).where(Actor.id == keyless.id).values(proof_key_pem=None))
    assert "assertionMethod" not in (await peer.get(None, keyless.uri))[1]
    async with node.readers() as db:
        assert await db.scalar(select(Actor.proof_key_pem).where(Actor.id == keyless.id)) is None
    with pytest.raises(RuntimeError, match="fedsph migrate"):
        async with node.writers() as db, db.begin():
            await publish_text_post(db, node.urls, await db.get(Actor, keyless.id), "Unsigned?")


# -- receiving -------------------------------------------------------------------------------


def ed25519_actor(peer, name: str):
    """A peer actor that publishes an Ed25519 assertionMethod, and its private key."""
    key = Ed25519PrivateKey.generate()
    actor = peer.add_actor(name)
    actor.document["assertionMethod"] = [{
        "id": actor.uri + "#ed25519-key", "type": "Multikey", "controller": actor.uri,
        "publicKeyMultibase": proofs.public_key_multibase(key.public_key())}]
    return actor, key


def signed_create(peer, actor, key, content: str = "Relayed news") -> dict:
    note_id = peer.new_id("notes")
    document = {"@context": AS, "id": note_id + "/activity", "type": "Create", "actor": actor.uri,
                "to": [PUBLIC], "object": {"id": note_id, "type": "Note", "content": content,
                                           "attributedTo": actor.uri, "to": [PUBLIC]}}
    return proofs.sign(proofs.with_data_integrity_context(document), key, actor.uri + "#ed25519-key")


async def test_relayed_activity_with_a_valid_proof_is_accepted(node, peer):
    await node.create_actor("coop")
    alice, key = ed25519_actor(peer, "alice")
    relay = peer.add_actor("relay", "Application")
    create = signed_create(peer, alice, key)
    status, text = await peer.post(relay, f"{node.base}/inbox", create)
    assert status == 202, text
    (item,) = await inbox_items(node)
    assert item.actor_uri == alice.uri and orjson.loads(item.body) == create


async def test_relayed_activity_without_or_with_a_bad_proof_is_refused(node, peer):
    await node.create_actor("coop")
    alice, key = ed25519_actor(peer, "alice")
    relay = peer.add_actor("relay", "Application")
    unsigned = signed_create(peer, alice, key)
    unsigned.pop("proof")
    status, text = await peer.post(relay, f"{node.base}/inbox", unsigned)
    assert status == 401 and "no integrity proof" in text
    forged = signed_create(peer, alice, key)
    forged["object"]["content"] = "Something alice never said"
    status, text = await peer.post(relay, f"{node.base}/inbox", forged)
    assert status == 401 and "integrity proof fails" in text
    # Signed with a key that alice does not publish.
    other = signed_create(peer, alice, Ed25519PrivateKey.generate())
    status, text = await peer.post(relay, f"{node.base}/inbox", other)
    assert status == 401 and "integrity proof fails" in text
    # A validly signed answer or Follow is not for relaying: replayed, it would act again.
    follow = proofs.sign(proofs.with_data_integrity_context({
        "@context": AS, "id": peer.new_id(), "type": "Follow", "actor": alice.uri,
        "object": node.base + "/actors/coop", "to": [PUBLIC]}), key, alice.uri + "#ed25519-key")
    status, text = await peer.post(relay, f"{node.base}/inbox", follow)
    assert status == 401 and "may be relayed" in text
    assert await inbox_items(node) == []


async def test_direct_activity_with_a_failing_proof_is_ignored(node, peer):
    await node.create_actor("coop")
    alice, key = ed25519_actor(peer, "alice")
    forged = signed_create(peer, alice, key)
    forged["object"]["content"] = "altered after signing"
    assert (await peer.post(alice, f"{node.base}/inbox", forged))[0] == 202  # HTTP sig is fine
    await node.run_worker()
    async with node.readers() as db:
        item = await db.scalar(select(InboxItem))
    assert item.status == "ignored" and "integrity proof fails" in item.last_error


async def test_independent_check_rejects_a_wrong_signature():
    pem = proofs.generate_proof_key()
    actor = "https://here.example/actors/coop"
    signed = proofs.sign_activity({"@context": AS, "type": "Create", "actor": actor,
                                   "object": {"content": "a"}}, actor, pem)
    signed["object"]["content"] = "b"
    with pytest.raises(InvalidSignature):
        independent_verify(signed, proofs.multikey(actor, pem)["publicKeyMultibase"])


async def test_proof_we_cannot_check_falls_back_on_the_http_signature(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    follow = {"@context": AS, "id": peer.new_id(), "type": "Follow", "actor": alice.uri,
              "object": project.uri, "proof": {"type": "DataIntegrityProof",
                                               "cryptosuite": "eddsa-rdfc-2022", "proofValue": "z1"}}
    assert (await peer.post(alice, f"{node.base}/inbox", follow))[0] == 202
    await node.run_worker()
    assert len(peer.activities("Accept")) == 1
