"""Object Integrity Proofs (FEP-8b32) with the `eddsa-jcs-2022` cryptosuite. Pure functions.

An actor publishes an Ed25519 key as an FEP-521a Multikey in its `assertionMethod`; an
activity signed with it carries a `proof`. Recipients can then trust the activity whoever
delivered it: this is what lets a relay pass a member's activity on unchanged.

The recipe (W3C vc-di-eddsa, eddsa-jcs-2022):
    proofConfig = the proof without `proofValue`, with the document's `@context`
    hashData    = SHA-256(JCS(proofConfig)) || SHA-256(JCS(document without `proof`))
    proofValue  = "z" + base58btc(Ed25519 signature of hashData)
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import urldefrag

import base58
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedsph.federation.activitystreams import (
    as_list,
    get_id,
    get_type,
    is_public,
    parse_iso,
    same_origin,
)

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_PURPOSE = "assertionMethod"
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
# Multicodec prefixes (varint) of an Ed25519 public and private key in a multibase string.
ED25519_PUB_PREFIX = b"\xed\x01"
ED25519_PRIV_PREFIX = b"\x80\x26"
# Activities that carry a proof when they are public (what a relay may pass on).
SIGNED_TYPES = {"Create", "Update", "Delete", "Announce"}


class ProofError(ValueError):
    """A proof that does not verify: the document was changed or was not signed by its actor."""


class ProofUnusable(ProofError):
    """A proof we cannot check (unknown cryptosuite, key not found): FEP-8b32 says to ignore it
    and authenticate the activity otherwise (its HTTP signature)."""


# -- keys ----------------------------------------------------------------------------------------


def generate_proof_key() -> str:
    """A fresh Ed25519 private key, PKCS#8 PEM (what Actor.proof_key_pem stores)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def load_private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("the proof key is not an Ed25519 key")
    return key


def private_key_from_multibase(value: str) -> Ed25519PrivateKey:
    """An Ed25519 secret key written as multibase (the form test vectors use)."""
    raw = _multibase_decode(value)
    if not raw.startswith(ED25519_PRIV_PREFIX) or len(raw) != 34:
        raise ValueError("not a multibase Ed25519 private key")
    return Ed25519PrivateKey.from_private_bytes(raw[2:])


def public_key_multibase(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + base58.b58encode(ED25519_PUB_PREFIX + raw).decode()


def public_key_from_multibase(value: str) -> Ed25519PublicKey:
    raw = _multibase_decode(value)
    if not raw.startswith(ED25519_PUB_PREFIX) or len(raw) != 34:
        raise ProofUnusable("the verification method is not an Ed25519 Multikey")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def _multibase_decode(value: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofError("expected a multibase base58btc value (starting with z)")
    try:
        return base58.b58decode(value[1:])
    except ValueError:
        raise ProofError("invalid base58btc") from None


def key_id(actor_uri: str) -> str:
    return actor_uri + "#ed25519-key"


def multikey(actor_uri: str, private_pem: str) -> dict:
    """The FEP-521a verification method an actor document lists in `assertionMethod`."""
    return {
        "id": key_id(actor_uri),
        "type": "Multikey",
        "controller": actor_uri,
        "publicKeyMultibase": public_key_multibase(load_private_key(private_pem).public_key()),
    }


# -- signing -------------------------------------------------------------------------------------


def hash_data(document: dict, proof_options: dict, document_context: bool = True) -> bytes:
    """SHA-256 of the canonical proof configuration, then of the canonical unsecured document.

    The W3C algorithm puts the document's @context in the proof configuration
    (`document_context`); Mastodon hashes the proof options as they are
    (app/lib/activitypub/object_integrity_proof.rb). Both agree when the proof carries the
    document's @context, as ours do.
    """
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = {k: v for k, v in proof_options.items() if k != "proofValue"}
    if document_context and "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    return (hashlib.sha256(rfc8785.dumps(config)).digest()
            + hashlib.sha256(rfc8785.dumps(unsecured)).digest())


def with_data_integrity_context(document: dict) -> dict:
    """The document with the data-integrity context (it defines `proof`) in its @context, always
    a list: Mastodon checks the proof's @context only against a list
    (app/lib/activitypub/object_integrity_proof.rb)."""
    contexts = as_list(document.get("@context"))
    if DATA_INTEGRITY_CONTEXT in contexts or "https://w3id.org/security/data-integrity/v2" in contexts:
        return {**document, "@context": contexts}
    return {**document, "@context": [*contexts, DATA_INTEGRITY_CONTEXT]}


def sign(document: dict, private_key: Ed25519PrivateKey, verification_method: str,
         created: datetime | None = None) -> dict:
    """A copy of `document` with an eddsa-jcs-2022 proof (the proof repeats the @context, as in
    the FEP's test vector)."""
    moment = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    options = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "verificationMethod": verification_method,
        "proofPurpose": PROOF_PURPOSE,
        "created": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if "@context" in unsecured:
        options = {"@context": unsecured["@context"], **options}
    signature = private_key.sign(hash_data(unsecured, options))
    return {**unsecured, "proof": {**options, "proofValue": "z" + base58.b58encode(signature).decode()}}


def sign_activity(document: dict, actor_uri: str, private_pem: str,
                  created: datetime | None = None) -> dict:
    """An activity of ours, with the data-integrity context and a proof by its actor's key."""
    return sign(with_data_integrity_context(document), load_private_key(private_pem),
                key_id(actor_uri), created)


def should_sign(document: dict) -> bool:
    """Public Create/Update/Delete/Announce: what relays and their subscribers may receive."""
    return get_type(document) in SIGNED_TYPES and is_public(document)


# -- verification --------------------------------------------------------------------------------


def verification_method(controller_document: dict, method_id: str) -> dict:
    """The Multikey `method_id` from the actor's `assertionMethod` (FEP-521a)."""
    for method in as_list(controller_document.get("assertionMethod")):
        if isinstance(method, dict) and method.get("id") == method_id:
            return method
    raise ProofUnusable(f"{method_id} is not in the assertionMethod of {controller_document.get('id')}")


def supported_proof(document: dict) -> dict:
    """The document's single eddsa-jcs-2022 proof; ProofUnusable for anything else."""
    proof = document.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofUnusable("the proof is not a single object")
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofUnusable(f"unsupported proof {proof.get('type')}/{proof.get('cryptosuite')}")
    if "expires" in proof:
        # FEP-8b32: an expired proof is ignored like an unsupported one (other authentication
        # may still vouch for the activity). `expires` is signed, so it cannot be stripped.
        expires = parse_iso(proof["expires"])
        if expires is None:
            raise ProofError("the proof's expires is not a date")
        if expires <= datetime.now(UTC).replace(tzinfo=None):
            raise ProofUnusable(f"the proof expired at {proof['expires']}")
    return proof


def verify(document: dict, controller_document: dict) -> dict:
    """Check the document's proof against a key of `controller_document`; returns the proof.

    Raises ProofUnusable for a proof we cannot check, ProofError for one that fails.
    """
    proof = supported_proof(document)
    if proof.get("proofPurpose") != PROOF_PURPOSE:
        raise ProofError("the proof's purpose is not assertionMethod")
    method_id = proof.get("verificationMethod")
    if not isinstance(method_id, str):
        raise ProofError("the proof has no verificationMethod")
    method = verification_method(controller_document, method_id)
    controller = controller_document.get("id")
    if get_id(method.get("controller")) != controller or not same_origin(method_id, controller):
        raise ProofError(f"{method_id} is not controlled by {controller}")
    public_key = public_key_from_multibase(method.get("publicKeyMultibase"))
    signature = _multibase_decode(proof.get("proofValue"))
    # An LD signature (Mastodon's RsaSignature2017) is added after the proof: not covered by it.
    unsecured = {k: v for k, v in document.items() if k not in ("proof", "signature")}
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in options:
        # The document's @context must start with the contexts the proof was made under.
        proof_contexts, contexts = as_list(options["@context"]), as_list(unsecured.get("@context"))
        if contexts[:len(proof_contexts)] != proof_contexts:
            raise ProofError("the document's @context does not match the proof's")
        unsecured["@context"] = options["@context"]
    # A proof without @context: the W3C configuration first, then Mastodon's (the options as
    # they are). Each covers the whole document and every proof option.
    variants = [True] if "@context" in options or "@context" not in unsecured else [True, False]
    for document_context in variants:
        try:
            public_key.verify(signature, hash_data(unsecured, options, document_context))
            return proof
        except InvalidSignature:
            continue
    raise ProofError("the integrity proof does not verify (the activity was altered, "
                     "or not signed with this key)")


def verify_activity(activity: dict, actor_document: dict) -> dict:
    """Verify an activity's proof: it must be made with a key of the activity's own actor."""
    actor = get_id(activity.get("actor"))
    if not actor or urldefrag(actor)[0] != actor_document.get("id"):
        raise ProofError(f"the proof is checked against {actor_document.get('id')}, "
                         f"not the activity's actor {actor}")
    return verify(activity, actor_document)


