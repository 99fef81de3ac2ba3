"""The inbox and signed fetches against hostile requests (issue 10 review): a forged signature
does not make us fetch a third party's key again and again; impossible times in signatures and
proofs, and over-long names in actor documents, are refusals (4xx), never a 500; what a sender
writes cannot forge lines in our log. Each refusal also checks that nothing was stored.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from fedsph.errors import HTTPProblem
from fedsph.federation import proofs
from fedsph.federation.activitystreams import parse_iso
from fedsph.federation.actors import InvalidActor, parse_actor_document
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.httpsig import (
    SignatureParams,
    check_request,
    http_date,
    parse_signature_header,
    sha256_digest,
)
from fedsph.federation.httpsig9421 import MessageSignature, check_message, parse_message_signature
from fedsph.federation.inbox import KEY_REFETCH_AFTER
from fedsph.models import Actor, InboxItem, utcnow
from fedsph.projects.outbox import publish_text_post
from tests.support.db import add_remote_follower
from tests.support.inbox import follow, post_raw, project_and_sender

AS = "https://www.w3.org/ns/activitystreams"
HUGE = "99999999999999"  # seconds: far past the year 9999, where datetime ends


async def stored(node) -> tuple[int, int]:
    """(inbox rows, remote actor rows): what a refused request must not have added."""
    async with node.readers() as db:
        return (await db.scalar(select(func.count(InboxItem.id))),
                await db.scalar(select(func.count(Actor.id)).where(Actor.local.is_(False))))


# -- a forged signature costs no fetch ------------------------------------------------------------

async def test_forged_signatures_for_a_known_key_fetch_nothing(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert peer.fetched.count(alice.uri) == 1
    before = await stored(node)
    forger = dataclasses.replace(alice, private_pem=generate_rsa_keypair()[0])
    for _ in range(5):
        status, text = await peer.post(forger, inbox, follow(peer, alice, project.uri))
        assert status == 401 and "does not verify" in text
    assert peer.fetched.count(alice.uri) == 1  # no GET at the key's server for the forgeries
    assert await stored(node) == before


async def test_forged_signatures_for_an_unknown_key_fetch_it_once(node, peer):
    """A key we never saw is fetched once; its genuine document is kept, so the next forgeries
    fail against it at once (otherwise each forged POST would make us GET a third party)."""
    project, alice, inbox = await project_and_sender(node, peer)
    forger = dataclasses.replace(alice, private_pem=generate_rsa_keypair()[0])
    for _ in range(5):
        assert (await peer.post(forger, inbox, follow(peer, alice, project.uri)))[0] == 401
    assert peer.fetched.count(alice.uri) == 1
    assert (await stored(node))[0] == 0
    async with node.readers() as db:
        cached = await db.scalar(select(Actor).where(Actor.uri == alice.uri))
    assert cached.public_key_pem == alice.public_pem  # the real key, not the forger's


async def test_a_rotated_key_is_refetched_once_our_copy_is_old_enough(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    peer.rotate_key(alice)
    # Just fetched: a signature that fails against it is refused without asking again.
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 401
    assert peer.fetched.count(alice.uri) == 1
    async with node.writers() as db, db.begin():
        await db.execute(update(Actor).where(Actor.uri == alice.uri).values(
            fetched_at=utcnow() - KEY_REFETCH_AFTER - timedelta(seconds=1)))
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert peer.fetched.count(alice.uri) == 2
    assert (await stored(node))[0] == 2


# -- impossible times are refusals ----------------------------------------------------------------

def cavage_headers(alice, inbox: str, body: bytes, covered: str, **params: str) -> dict:
    """A draft-cavage signature whose times are what the sender says (checked before the key)."""
    extra = "".join(f',{name}="{value}"' for name, value in params.items())
    return {"Host": inbox.split("/")[2], "Date": http_date(), "Digest": sha256_digest(body),
            "Content-Type": "application/activity+json",
            "Signature": f'keyId="{alice.key_id}",algorithm="hs2019",headers="{covered}"'
                         f'{extra},signature="{base64.b64encode(b"x" * 256).decode()}"'}


def rfc9421_headers(alice, inbox: str, body: bytes, created: str, expires: str = "") -> dict:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    expiry = f";expires={expires}" if expires else ""
    return {"Content-Type": "application/activity+json",
            "Content-Digest": f"sha-256=:{digest}:",
            "Signature-Input": f'sig1=("@method" "@target-uri" "content-digest");'
                               f'created={created}{expiry};keyid="{alice.key_id}"',
            "Signature": f"sig1=:{base64.b64encode(b'x' * 256).decode()}:"}


@pytest.mark.parametrize("make", [
    lambda a, i, b: cavage_headers(a, i, b, "(request-target) host (created) digest", created=HUGE),
    lambda a, i, b: cavage_headers(a, i, b, "(request-target) host (created) digest",
                                   created="-" + HUGE),
    lambda a, i, b: cavage_headers(a, i, b, "(request-target) host date digest", expires=HUGE),
    lambda a, i, b: rfc9421_headers(a, i, b, created=HUGE),
    lambda a, i, b: rfc9421_headers(a, i, b, created=str(int(utcnow().timestamp())),
                                    expires=HUGE),
], ids=["cavage-created", "cavage-created-negative", "cavage-expires", "rfc9421-created",
        "rfc9421-expires"])
async def test_impossible_signature_times_are_401_and_store_nothing(node, peer, make):
    project, alice, inbox = await project_and_sender(node, peer)
    body = orjson.dumps(follow(peer, alice, project.uri))
    status, text = await post_raw(peer, inbox, body, make(alice, inbox, body))
    assert status == 401, text
    assert "not a possible time" in text
    assert await stored(node) == (0, 0) and peer.gets() == []


async def test_impossible_signature_times_on_a_signed_fetch_are_a_404_not_a_500(node, peer):
    project = await node.create_actor("coop")
    await add_remote_follower(node, project, peer.add_actor("ana"))
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Members only", visibility="followers")
    alice = peer.add_actor("alice")
    for headers in (cavage_headers(alice, note.uri, b"", "(request-target) host (created)",
                                   created=HUGE),
                    rfc9421_headers(alice, note.uri, b"", created=HUGE)):
        headers.pop("Digest", None), headers.pop("Content-Digest", None)
        headers["Accept"] = "application/activity+json"
        async with peer.http.get(note.uri, headers=headers) as resp:
            assert resp.status == 404, await resp.text()
    assert peer.gets() == []


def test_an_overflowing_proof_expiry_is_not_a_date():
    assert parse_iso("0001-01-01T00:00:00+01:00") is None
    assert parse_iso("9999-12-31T23:59:59-01:00") is None
    document = {"proof": {"type": proofs.PROOF_TYPE, "cryptosuite": proofs.CRYPTOSUITE,
                          "expires": "0001-01-01T00:00:00+01:00"}}
    with pytest.raises(proofs.ProofError):
        proofs.supported_proof(document)


def actor_document(uri: str, username: str) -> dict:
    return {"@context": AS, "id": uri, "type": "Person", "preferredUsername": username,
            "inbox": f"{uri}/inbox"}


def test_names_longer_than_their_columns_are_refused():
    with pytest.raises(InvalidActor, match="username longer"):
        parse_actor_document(actor_document("https://ok.example/u/x", "x" * 256))
    with pytest.raises(InvalidActor, match="username longer"):  # the name taken from the id
        parse_actor_document(actor_document("https://ok.example/u/" + "x" * 256, ""))
    host = ".".join(["a" * 60] * 5) + ".example"
    with pytest.raises(InvalidActor, match="domain is longer"):
        parse_actor_document(actor_document(f"https://{host}/u/x", "x"))
    assert parse_actor_document(actor_document("https://ok.example/u/x", "x" * 255))


async def test_a_sender_with_an_overlong_username_is_refused_and_not_stored(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice", preferredUsername="a" * 300)
    status, text = await peer.post(alice, f"{node.base}/inbox", follow(peer, alice, project.uri))
    assert status == 401 and "username longer" in text
    assert await stored(node) == (0, 0)


# -- one log line per refusal -------------------------------------------------------------------

async def test_a_newline_in_a_refused_type_cannot_forge_a_log_line(node, peer, caplog):
    project, alice, inbox = await project_and_sender(node, peer)
    activity = {**follow(peer, alice, project.uri),
                "type": "fedsph:x\nWARNING fedsph.federation.inbox: forged line\x1b[2J"}
    with caplog.at_level(logging.INFO, logger="fedsph.inbox"):
        status, _ = await peer.post(alice, inbox, activity)
    assert status == 400
    (record,) = [r for r in caplog.records if r.name == "fedsph.inbox"]
    line = record.getMessage()
    assert "\n" not in line and "\x1b" not in line
    # Refused for its control characters, before anything echoes the type into the log.
    assert "the activity's type contains control characters" in line
    assert "forged line" not in line
    assert await stored(node) == (0, 0)


# -- property: the key-less signature checks only ever refuse ----------------------------------

TIMES = st.one_of(st.integers(), st.integers(min_value=-10**20, max_value=10**20),
                  st.sampled_from([HUGE, "-" + HUGE, "1e309", "nan", "", "0x10"]), st.text())


def refusal_or_nothing(check, *args) -> None:
    """`check` returns or raises an HTTPProblem (a 4xx): anything else would be a 500."""
    try:
        check(*args)
    except HTTPProblem as problem:
        assert 400 <= problem.status < 500


@settings(max_examples=300, deadline=None)
@given(created=TIMES, expires=st.none() | TIMES,
       date=st.text() | st.just("Fri, 31 Dec 9999 23:59:59 -2359"))
def test_cavage_parse_and_checks_never_raise_anything_else(created, expires, date):
    header = f'keyId="https://a.example/k",headers="(request-target) host (created) date",' \
             f'created="{created}",signature="eA=="'
    if expires is not None:
        header += f',expires="{expires}"'
    headers = {"host": "a.example", "date": date}

    def parse_and_check():
        check_request(parse_signature_header(header), headers, None)

    refusal_or_nothing(parse_and_check)


@settings(max_examples=300, deadline=None)
@given(created=st.integers(), expires=st.none() | st.integers())
def test_signature_time_checks_never_raise_anything_else(created, expires):
    covered = ("(request-target)", "host", "(created)")
    cavage = SignatureParams("https://a.example/k", "hs2019", covered, b"x", created=created,
                             expires=expires)
    refusal_or_nothing(check_request, cavage, {"host": "a.example"}, None)
    message = MessageSignature("sig1", "https://a.example/k", ("@method", "@target-uri"),
                               created, expires, None)
    refusal_or_nothing(check_message, message, {}, None)


@settings(max_examples=200, deadline=None)
@given(created=TIMES, expires=st.none() | TIMES)
def test_rfc9421_parse_and_checks_never_raise_anything_else(created, expires):
    expiry = "" if expires is None else f";expires={expires}"
    signature_input = f'sig1=("@method" "@target-uri");created={created}{expiry};keyid="k"'

    def parse_and_check():
        check_message(parse_message_signature(signature_input, "sig1=:eA==:"), {}, None)

    refusal_or_nothing(parse_and_check)
