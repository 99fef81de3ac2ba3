"""RFC 9421 HTTP Message Signatures on incoming requests (fedsph.federation.httpsig9421 and the inbox).

The signer below builds the signature base by hand with `cryptography`, not with the library
fedsph verifies with, so a passing round trip is not the library agreeing with itself.
"""

import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from sqlalchemy import update

from fedsph.errors import Unauthorized
from fedsph.federation.crypto import generate_rsa_keypair, load_private_key
from fedsph.federation.httpsig9421 import parse_message_signature, verify_message
from fedsph.federation.inbox import KEY_REFETCH_AFTER
from fedsph.models import Actor, utcnow
from tests.support.db import inbox_items

PRIVATE_PEM, PUBLIC_PEM = generate_rsa_keypair()
KEY_ID = "https://remote.example/users/alice#main-key"
INBOX = "https://local.example/actors/coop/inbox"
BODY = b'{"type":"Follow"}'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def content_digest(body: bytes) -> str:
    return f"sha-256=:{b64(hashlib.sha256(body).digest())}:"


def sign9421(method: str, url: str, key_id: str, private_pem: str, body: bytes | None = None,
             components: tuple[str, ...] | None = None, created: int | None = None,
             alg: str | None = None, label: str = "sig1") -> dict[str, str]:
    """Headers as Mastodon 4.5 sends them: Content-Digest, Signature-Input, Signature."""
    if components is None:
        components = ("@method", "@target-uri") + (("content-digest",) if body is not None else ())
    headers = {"Host": urlsplit(url).netloc}
    if body is not None:
        headers["Content-Digest"] = content_digest(body)
    values = {"@method": method.upper(), "@target-uri": url, "@authority": urlsplit(url).netloc,
              **{k.lower(): v for k, v in headers.items()}}
    params = "(" + " ".join(f'"{name}"' for name in components) + ")"
    params += f';created={created or int(time.time())};keyid="{key_id}"'
    if alg:
        params += f';alg="{alg}"'
    base = "".join(f'"{name}": {values[name]}\n' for name in components)
    base += f'"@signature-params": {params}'
    key = load_private_key(private_pem)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(base.encode())
    else:
        signature = key.sign(base.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature-Input"] = f"{label}={params}"
    headers["Signature"] = f"{label}=:{b64(signature)}:"
    return headers


def lower(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def verify(headers: dict, body: bytes | None = BODY, method: str = "POST", url: str = INBOX,
           public_pem: str = PUBLIC_PEM, now: datetime | None = None) -> None:
    headers = lower(headers)
    sig = parse_message_signature(headers["signature-input"], headers.get("signature"))
    verify_message(sig, public_pem, method, url, headers, body, now)


def refused(headers: dict, match: str, **kwargs) -> None:
    with pytest.raises(Unauthorized, match=match):
        verify(headers, **kwargs)


# -- pure ------------------------------------------------------------------------------------


def test_post_round_trip_without_alg_uses_the_rsa_key_type():
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY)
    assert "alg=" not in headers["Signature-Input"]
    verify(headers)


def test_post_round_trip_with_alg():
    verify(sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY, alg="rsa-v1_5-sha256"))


def test_parse_reads_label_keyid_created_and_component_order():
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY, created=1700000000,
                       components=("content-digest", "@target-uri", "@method"), label="mastodon")
    sig = parse_message_signature(headers["Signature-Input"], headers["Signature"])
    assert (sig.label, sig.key_id, sig.created, sig.alg) == ("mastodon", KEY_ID, 1700000000, None)
    assert sig.components == ("content-digest", "@target-uri", "@method")


def test_components_are_verified_in_signature_input_order():
    components = ("content-digest", "@target-uri", "@method")
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY, components=components)
    verify(headers)
    # The same signature with the list reordered describes another signature base.
    headers["Signature-Input"] = headers["Signature-Input"].replace(
        '"content-digest" "@target-uri" "@method"', '"@method" "@target-uri" "content-digest"')
    refused(headers, "signature does not verify")


def test_ed25519_key_round_trip():
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    verify(sign9421("POST", INBOX, KEY_ID, private_pem, body=BODY), public_pem=public_pem)
    verify(sign9421("POST", INBOX, KEY_ID, private_pem, body=BODY, alg="ed25519"),
           public_pem=public_pem)


def test_signed_get_without_body_needs_no_digest():
    url = "https://local.example/actors/coop?page=1"
    verify(sign9421("GET", url, KEY_ID, PRIVATE_PEM), body=None, method="GET", url=url)


def test_tampered_body_is_refused():
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY)
    refused(headers, "Content-Digest", body=b'{"type":"Block"}')


def test_tampered_content_digest_header_is_refused():
    # A digest recomputed for another body no longer matches what was signed.
    other = b'{"type":"Block"}'
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY)
    headers["Content-Digest"] = content_digest(other)
    refused(headers, "signature does not verify", body=other)


def test_other_method_or_target_is_refused():
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY)
    refused(headers, "signature does not verify", url="https://local.example/inbox")
    refused(headers, "signature does not verify", method="PUT")


def test_another_key_is_refused_as_not_verifying():
    _, other_public = generate_rsa_keypair()
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY)
    refused(headers, "^signature does not verify", public_pem=other_public)


def test_created_window_is_twelve_hours_past_one_hour_future():
    now = datetime.now(UTC)

    def at(delta: timedelta) -> dict:
        created = int((now + delta).timestamp())
        return sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY, created=created)

    verify(at(timedelta(hours=-11)), now=now)
    verify(at(timedelta(minutes=50)), now=now)
    refused(at(timedelta(hours=-13)), "too old", now=now)
    refused(at(timedelta(hours=2)), "future", now=now)


def test_expired_signature_is_refused():
    created = int(time.time()) - 600
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY, created=created)
    # Added after signing: expiry is checked before the signature, so this refusal is about it.
    headers["Signature-Input"] += f";expires={created + 60}"
    refused(headers, "expired")


def test_body_without_covered_content_digest_is_refused():
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY,
                       components=("@method", "@target-uri"))
    assert "Content-Digest" in headers  # present, but not covered
    refused(headers, "Content-Digest is not covered")


def test_missing_content_digest_header_is_refused():
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY)
    del headers["Content-Digest"]
    refused(headers, "must carry a signed Content-Digest")


def test_method_and_target_uri_must_be_covered():
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY,
                       components=("@method", "content-digest"))
    refused(headers, "does not cover @target-uri")


def test_unknown_or_mismatched_alg_is_refused():
    refused(sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY, alg="hmac-sha256"),
            "unsupported signature algorithm")
    # alg says Ed25519 but the key is RSA.
    headers = sign9421("POST", INBOX, KEY_ID, PRIVATE_PEM, body=BODY)
    headers["Signature-Input"] += ';alg="ed25519"'
    refused(headers, "signature does not verify")


@pytest.mark.parametrize("signature_input, signature, match", [
    ('sig1=("@method");keyid="k"', "sig1=:AAAA:", "no created"),
    ('sig1=("@method");created=1700000000', "sig1=:AAAA:", "no keyid"),
    ('sig1=("@method");created=1700000000;keyid="k"', "sig2=:AAAA:", "different labels"),
    ('a=("@method");created=1;keyid="k", b=("@method");created=1;keyid="k"',
     "a=:AAAA:, b=:AAAA:", "only one"),
    ("sig1=not a list(", "sig1=:AAAA:", "structured-field"),
    ('sig1=("@method");created=1700000000;keyid="k"', None, "Signature is empty"),
])
def test_malformed_signature_headers_are_refused(signature_input, signature, match):
    with pytest.raises(Unauthorized, match=match):
        parse_message_signature(signature_input, signature)


# -- through the inbox -----------------------------------------------------------------------


def follow(peer, actor, target: str) -> dict:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
            "type": "Follow", "actor": actor.uri, "object": target}


async def post9421(peer, signer, inbox: str, activity: dict, tamper: bytes | None = None):
    body = orjson.dumps(activity)
    headers = sign9421("POST", inbox, signer.key_id, signer.private_pem, body=body)
    headers["Content-Type"] = "application/activity+json"
    async with peer.http.post(inbox, data=tamper or body, headers=headers) as resp:
        return resp.status, await resp.text()


async def test_follow_signed_with_rfc9421_is_accepted(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    activity = follow(peer, alice, project.uri)
    status, _ = await post9421(peer, alice, f"{node.base}/actors/coop/inbox", activity)
    assert status == 202
    await node.run_worker()
    accepts = peer.activities("Accept")
    assert len(accepts) == 1
    assert accepts[0]["actor"] == project.uri
    assert accepts[0]["object"]["id"] == activity["id"]


async def test_rfc9421_on_the_shared_inbox_and_key_rotation(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    inbox = f"{node.base}/inbox"
    assert (await post9421(peer, alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    peer.rotate_key(alice)  # the cached key fails once, the key is fetched again
    async with node.writers() as db, db.begin():  # once our copy is old enough to be stale
        await db.execute(update(Actor).where(Actor.uri == alice.uri).values(
            fetched_at=utcnow() - KEY_REFETCH_AFTER))
    assert (await post9421(peer, alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert peer.fetched.count(alice.uri) == 2
    assert len(await inbox_items(node)) == 2


async def test_rfc9421_tampered_body_is_401(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    activity = follow(peer, alice, project.uri)
    tampered = orjson.dumps({**activity, "object": f"{node.base}/actors/other"})
    status, text = await post9421(peer, alice, f"{node.base}/actors/coop/inbox", activity,
                                  tamper=tampered)
    assert status == 401
    assert "Content-Digest" in text
    assert await inbox_items(node) == []


async def test_rfc9421_signer_must_be_the_actor(node, peer):
    project = await node.create_actor("coop")
    alice, bob = peer.add_actor("alice"), peer.add_actor("bob")
    status, text = await post9421(peer, alice, f"{node.base}/actors/coop/inbox",
                                  follow(peer, bob, project.uri))
    assert status == 401
    assert "not by the activity's actor" in text
