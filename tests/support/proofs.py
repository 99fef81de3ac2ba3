"""A second implementation of FEP-8b32 verification, and Mastodon's reading of it."""

from __future__ import annotations

import hashlib

import base58
import jcs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def independent_verify(document: dict, public_key_multibase: str) -> None:
    """eddsa-jcs-2022 verification written from the spec with another JCS library (`jcs`):
    hashData = SHA-256(JCS(proof config with the document's @context)) || SHA-256(JCS(document
    without proof)). Raises InvalidSignature."""
    proof = dict(document["proof"])
    assert proof["type"] == "DataIntegrityProof"
    assert proof["cryptosuite"] == "eddsa-jcs-2022"
    assert proof["proofPurpose"] == "assertionMethod"
    signature = base58.b58decode(proof.pop("proofValue")[1:])
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    proof["@context"] = unsecured["@context"]
    digest = (hashlib.sha256(jcs.canonicalize(proof)).digest()
              + hashlib.sha256(jcs.canonicalize(unsecured)).digest())
    raw = base58.b58decode(public_key_multibase[1:])
    assert raw[:2] == b"\xed\x01"
    Ed25519PublicKey.from_public_bytes(raw[2:]).verify(signature, digest)


def mastodon_verify(document: dict, public_key_multibase: str) -> None:
    """What Mastodon checks of a relayed activity's proof (facts from
    app/lib/activitypub/object_integrity_proof.rb and process_collection_service.rb): a single
    proof object; when the proof has an @context, the document's @context is a list that starts
    with it (one stored revision sliced one item too many, which demands equality: ours are
    equal, so both readings pass); hashData uses the proof options as they are (no @context
    added); an LD `signature` is removed first. Raises AssertionError or InvalidSignature."""
    document = {k: v for k, v in document.items() if k != "signature"}
    proof = document["proof"]
    assert isinstance(proof, dict)
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-jcs-2022"
    assert proof["proofPurpose"] == "assertionMethod" and proof["verificationMethod"]
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if options.get("@context"):
        assert isinstance(unsecured["@context"], list)
        assert unsecured["@context"][:len(options["@context"])] == options["@context"]
        assert unsecured["@context"][:len(options["@context"]) + 1] == options["@context"]
        unsecured["@context"] = options["@context"]
    digest = (hashlib.sha256(jcs.canonicalize(options)).digest()
              + hashlib.sha256(jcs.canonicalize(unsecured)).digest())
    raw = base58.b58decode(public_key_multibase[1:])
    Ed25519PublicKey.from_public_bytes(raw[2:]).verify(
        base58.b58decode(proof["proofValue"][1:]), digest)


def method_of(actor_document: dict) -> dict:
    (method,) = actor_document["assertionMethod"]
    return method
