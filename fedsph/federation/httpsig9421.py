"""RFC 9421 HTTP Message Signatures on incoming requests, as Mastodon 4.5+ may send them.

The `http-message-signatures` library does the RFC's mechanics: structured fields, the signature
base built in Signature-Input order, the algorithms and the Content-Digest (RFC 9530) format.
This module adds the policy the library leaves to its caller, following Mastodon
(app/lib/signed_request.rb): one signature; `created` required and inside the window we allow a
draft-cavage Date; `@method` and `@target-uri` covered; a body needs a covered Content-Digest
that matches it. `alg` is often absent (Mastodon omits it), so the key's type decides:
RSA keys mean rsa-v1_5-sha256, Ed25519 keys ed25519.
Pure functions: no I/O; the caller fetches the key named by `keyid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from fedsph.errors import Unauthorized
from fedsph.federation.crypto import load_public_key
from fedsph.federation.httpsig import MAX_FUTURE, MAX_PAST, signature_time

# Covered components Mastodon requires of every request, so we require them too.
REQUIRED_COMPONENTS = ("@method", "@target-uri")


@cache
def _library() -> SimpleNamespace:
    """http-message-signatures and http-sf, imported at the first RFC 9421 request: most peers
    still sign the draft-cavage way, and the two cost some 1.7 MB in every process. A saving
    while it lasts: any request with a Signature-Input header loads them, signed or not."""
    import http_sf
    from http_message_signatures import (
        ContentDigest,
        HTTPMessageSignaturesException,
        HTTPMessageVerifier,
        HTTPSignatureKeyResolver,
        algorithms,
    )

    class OneKey(HTTPSignatureKeyResolver):
        def __init__(self, key_id: str, key):
            self.key_id, self.key = key_id, key

        def resolve_public_key(self, key_id: str):
            return self.key if key_id == self.key_id else None

    class Verifier(HTTPMessageVerifier):
        # The library checks `created` against the clock too; give it our future margin.
        max_clock_skew = MAX_FUTURE

    by_alg = {"rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
              "rsa-pss-sha512": algorithms.RSA_PSS_SHA512, "ed25519": algorithms.ED25519}
    return SimpleNamespace(http_sf=http_sf, ContentDigest=ContentDigest,
                           Error=HTTPMessageSignaturesException, algorithms=algorithms,
                           by_alg=by_alg, OneKey=OneKey, Verifier=Verifier)


@dataclass(frozen=True)
class MessageSignature:
    """One RFC 9421 signature: its label and signed parameters (what key lookup needs)."""

    label: str
    key_id: str
    components: tuple[str, ...]  # component names in Signature-Input order, parameters dropped
    created: int
    expires: int | None
    alg: str | None


def _dictionary(name: str, value: str) -> dict:
    try:
        parsed = _library().http_sf.parse(value.encode("ascii"), tltype="dictionary")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise Unauthorized(f"{name} is not a structured-field dictionary") from None
    if not isinstance(parsed, dict) or not parsed:
        raise Unauthorized(f"{name} is empty")
    return parsed


def parse_message_signature(signature_input: str, signature: str | None) -> MessageSignature:
    """Parse `Signature-Input` and `Signature`. We accept exactly one signature, as Mastodon."""
    inputs = _dictionary("Signature-Input", signature_input)
    signatures = _dictionary("Signature", signature or "")
    if len(inputs) != 1:
        raise Unauthorized("only one RFC 9421 signature per request is supported")
    if inputs.keys() != signatures.keys():
        raise Unauthorized("Signature-Input and Signature have different labels")
    label, (members, params) = next(iter(inputs.items()))
    if not isinstance(members, list) or not isinstance(signatures[label][0], bytes):
        raise Unauthorized("Signature-Input must be an inner list and Signature a byte sequence")
    key_id, created, expires = params.get("keyid"), params.get("created"), params.get("expires")
    alg = params.get("alg")
    if not isinstance(key_id, str) or not key_id:
        raise Unauthorized("signature has no keyid")
    if type(created) is not int:
        raise Unauthorized("signature has no created parameter")
    if expires is not None and type(expires) is not int:
        raise Unauthorized("signature expires is not an integer")
    if alg is not None and not isinstance(alg, str):
        raise Unauthorized("signature alg is not a string")
    components = tuple(str(name) for name, _ in members)
    return MessageSignature(label, key_id, components, created, expires, alg)


def check_created(sig: MessageSignature, now: datetime) -> None:
    """`created` must lie in the window a draft-cavage Date may (12 h past, 1 h future)."""
    sent = signature_time(sig.created, "created")
    if sent > now + MAX_FUTURE:
        raise Unauthorized("signature created is too far in the future")
    if sent < now - MAX_PAST:
        raise Unauthorized("signature created is too old")
    if sig.expires is not None and signature_time(sig.expires, "expires") < now:
        raise Unauthorized("signature has expired")


def check_coverage(sig: MessageSignature, headers: Mapping[str, str], body: bytes | None) -> None:
    missing = [name for name in REQUIRED_COMPONENTS if name not in sig.components]
    if missing:
        raise Unauthorized(f"signature does not cover {', '.join(missing)}")
    if body is None:
        return
    if "content-digest" not in sig.components:
        raise Unauthorized("Content-Digest is not covered by the signature")
    digest = headers.get("content-digest")
    if not digest:
        raise Unauthorized("a request with a body must carry a signed Content-Digest")
    library = _library()
    try:
        library.ContentDigest.verify(digest, body)
    except library.Error as exc:
        raise Unauthorized(f"Content-Digest: {exc}") from None


def check_message(sig: MessageSignature, headers: Mapping[str, str], body: bytes | None,
                  now: datetime | None = None) -> None:
    """Everything that needs no key (window, coverage, Content-Digest): run before a key fetch."""
    check_created(sig, now or datetime.now(UTC))
    check_coverage(sig, headers, body)


def _algorithm(sig: MessageSignature, key) -> type:
    library = _library()
    if sig.alg is not None:
        if sig.alg not in library.by_alg:
            raise Unauthorized(f"unsupported signature algorithm {sig.alg!r}")
        return library.by_alg[sig.alg]
    if isinstance(key, rsa.RSAPublicKey):
        return library.algorithms.RSA_V1_5_SHA256
    if isinstance(key, ed25519.Ed25519PublicKey):
        return library.algorithms.ED25519
    # Worded like a failed verification so that the caller refetches the key once.
    raise Unauthorized("signature does not verify: the key is neither RSA nor Ed25519")


@dataclass
class _Message:
    """The request as the library reads it: upper-case method, absolute URL, header items."""

    method: str
    url: str
    headers: Mapping[str, str]


def verify_message(
    sig: MessageSignature,
    public_pem: str,
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: datetime | None = None,
    checked: bool = False,
) -> None:
    """Raise Unauthorized unless the request carries `sig`, made by `public_pem`, and is fresh.

    `target_uri` is the absolute URL the sender addressed (our base URL, path and query);
    `headers` have lower-case names. Failures that a newer key could fix start with
    "signature does not verify", which is what makes the inbox refetch the key. `checked`: the
    caller has run check_message on this request already (as the inbox does).
    """
    if not checked:
        check_message(sig, headers, body, now)
    try:
        key = load_public_key(public_pem)
    except ValueError:
        raise Unauthorized("signature does not verify: the key is not a PEM public key") from None
    library = _library()
    verifier = library.Verifier(signature_algorithm=_algorithm(sig, key),
                                key_resolver=library.OneKey(sig.key_id, key))
    try:
        # The window was checked above with `now`; max_age=None leaves it to us.
        verifier.verify(_Message(method.upper(), target_uri, headers), max_age=None)
    except library.Error as exc:
        raise Unauthorized(f"signature does not verify: {exc}") from None
