"""Property tests for what a stranger's request reaches first: the Signature and
Signature-Input parsers, the inbox's activity parsing and origin rules, and the normalisation of
received actors and objects. Whatever the input, the answer is a value or a clear 4xx problem,
never another exception (which would be a 500)."""

from __future__ import annotations

from functools import cache

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsph.core.safe_links import http_url
from fedsph.errors import HTTPProblem, Unauthorized
from fedsph.federation.activitystreams import same_origin
from fedsph.federation.actors import InvalidActor, parse_actor_document, published_keys
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.httpsig import check_coverage, parse_signature_header, sign_request
from fedsph.federation.httpsig9421 import parse_message_signature
from fedsph.federation.inbox import check_origins, parse_activity, signature_params
from fedsph.federation.remote import Remote, Signer
from fedsph.federation.remote_objects import object_columns

OWN = "https://node.example"
REMOTE = Remote(None, Signer(OWN + "/actor#main-key", ""), allow_private=False)


@cache
def private_pem() -> str:
    return generate_rsa_keypair()[0]

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                           max_leaves=20)
uris = st.sampled_from([OWN + "/actors/alpha", OWN + ":443/x", "HTTPS://NODE.EXAMPLE/y",
                        "https://a.example/users/bob", "https://a.example:8443/users/bob",
                        "http://a.example/users/bob", "https://b.example/keys/1",
                        "javascript:alert(1)", "//a.example/x", "", "urn:x"]) | st.text(max_size=40)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200)


@FAST
@given(header_text)
def test_signature_header_parser_answers_a_value_or_401(value):
    try:
        params = parse_signature_header(value)
    except Unauthorized:
        return
    assert params.key_id is not None and isinstance(params.signature, bytes)


@FAST
@given(st.sampled_from(["GET", "POST"]), st.text(alphabet="abc/-_?=&%", max_size=30),
       st.binary(max_size=64))
def test_our_own_signatures_parse_back_and_cover_what_we_require(method, path, body):
    url = "https://peer.example/" + path
    headers = sign_request(method, url, "https://me.example/actor#main-key", private_pem(),
                           body=body if method == "POST" else None)
    params = signature_params({k.lower(): v for k, v in headers.items()})
    assert params.key_id == "https://me.example/actor#main-key"
    check_coverage(params, body if method == "POST" else None)


@FAST
@given(header_text, header_text)
def test_signature_input_parser_answers_a_value_or_401(signature_input, signature):
    try:
        sig = parse_message_signature(signature_input, signature)
    except Unauthorized:
        return
    assert sig.key_id and isinstance(sig.created, int)


@FAST
@given(st.lists(st.sampled_from(["@method", "@target-uri", "@authority", "@path",
                                 "content-digest", "date"]), unique=True, max_size=6),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz:/.#", min_size=1, max_size=30),
       st.integers(min_value=0, max_value=2**40))
def test_well_formed_signature_input_keeps_its_components(components, key_id, created):
    inner = " ".join(f'"{name}"' for name in components)
    sig = parse_message_signature(f'sig1=({inner});keyid="{key_id}";created={created}',
                                  "sig1=:AAAA:")
    assert sig.components == tuple(components) and sig.key_id == key_id
    assert sig.created == created


@FAST
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_activity_parsing_answers_a_dict_or_400(body):
    try:
        activity = parse_activity(body)
    except HTTPProblem as exc:
        assert exc.status == 400
        return
    assert isinstance(activity, dict) and activity.get("type") and activity.get("actor")


@FAST
@given(uris, uris, uris, st.booleans(), st.sampled_from(["Create", "Follow", "Delete"]))
def test_origin_rules_let_through_only_a_remote_actor_speaking_for_itself(
        actor, activity_id, key_id, with_proof, kind):
    activity = {"type": kind, "actor": actor, "id": activity_id, "to": [
        "https://www.w3.org/ns/activitystreams#Public"]}
    if with_proof:
        activity["proof"] = {"type": "DataIntegrityProof"}
    try:
        check_origins(REMOTE, activity, key_id)
    except HTTPProblem as exc:
        assert exc.status in (400, 401, 403)
        return
    assert http_url(actor) and http_url(key_id)
    assert not REMOTE.is_own(actor) and not REMOTE.is_own(key_id)
    assert not activity_id or same_origin(activity_id, actor)
    assert same_origin(key_id, actor) or (with_proof and kind != "Follow")


@FAST
@given(st.dictionaries(st.sampled_from(["id", "type", "inbox", "publicKey", "endpoints", "name",
                                        "summary", "preferredUsername", "url", "movedTo",
                                        "alsoKnownAs", "attachment", "icon", "image"]),
                       json_values | uris, max_size=10))
def test_actor_documents_parse_or_are_refused_cleanly(document):
    try:
        values = parse_actor_document(document)
    except InvalidActor:
        return
    assert http_url(values["uri"])
    for key_id in published_keys(document):
        assert same_origin(key_id, values["uri"])


@FAST
@given(st.dictionaries(st.sampled_from(["type", "content", "contentMap", "name", "nameMap",
                                        "summary", "url", "inReplyTo", "to", "cc", "tag",
                                        "attachment", "location", "published", "updated"]),
                       json_values | uris, max_size=10))
def test_object_normalisation_never_crashes(document):
    columns = object_columns({**document, "id": "https://a.example/notes/1"})
    assert columns["url"] is None or http_url(columns["url"]) or \
        columns["url"] == "https://a.example/notes/1"
