"""Receiving activities: check only what we need to trust them, store them, answer 202.

Everything else (side effects, fetching referenced objects) happens later in the worker.
The rows are written in batches by fedsph/federation/ingest.py (group commit).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.core.safe_links import http_url
from fedsph.errors import (
    BadRequest,
    FetchError,
    Forbidden,
    HTTPProblem,
    Unauthorized,
    UnsupportedMediaType,
)
from fedsph.federation import blocks
from fedsph.federation.activitystreams import AP_MEDIA_TYPES, get_id, get_type, same_origin
from fedsph.federation.actors import (
    InvalidActor,
    fetch_key_owner,
    get_cached_key_owner,
    remember_key,
    store_remote_actor,
)
from fedsph.federation.httpsig import (
    SignatureParams,
    check_request,
    parse_signature_header,
    verify_request,
)
from fedsph.federation.httpsig9421 import (
    MessageSignature,
    check_message,
    parse_message_signature,
    verify_message,
)
from fedsph.federation.ingest import Ingest, Received
from fedsph.federation.integrity import verify_relayed
from fedsph.federation.keycache import CachedKey, keys_for
from fedsph.federation.proofs import should_sign
from fedsph.federation.remote import Remote
from fedsph.models import Actor, utcnow

log = logging.getLogger("fedsph.inbox")

# A cached key that fails to verify is refetched only when our copy is older than this: a forged
# signature must not make us fetch a third party's actor on every request (we would become its
# reflector). A genuinely rotated key is still picked up within this time, as on Mastodon.
KEY_REFETCH_AFTER = timedelta(minutes=10)
# key id -> the lock of its fetch in progress (gone with the last request that waits on it).
_KEY_FETCHES: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in AP_MEDIA_TYPES:
        raise UnsupportedMediaType(f"expected application/activity+json, got {media_type or 'nothing'}")


def signature_params(headers: Mapping[str, str]) -> SignatureParams | MessageSignature:
    """The request's signature: RFC 9421 when `Signature-Input` is present (as Mastodon decides),
    else draft-cavage."""
    if "signature-input" in headers:
        return parse_message_signature(headers["signature-input"], headers.get("signature"))
    value = headers.get("signature")
    if value is None and headers.get("authorization", "")[:10].lower() == "signature ":
        value = headers["authorization"]
    if value is None:
        raise Unauthorized("request is not signed (HTTP Signatures required)")
    return parse_signature_header(value)


def claimed_key_id(headers: Mapping[str, str]) -> str | None:
    """The key id a request names, for logging a refusal (None when it names none we can read)."""
    try:
        return signature_params(headers).key_id
    except HTTPProblem:
        return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_activity(body: bytes) -> dict:
    try:
        activity = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(activity, dict):
        raise BadRequest("body is not a JSON object")
    if not get_type(activity):
        raise BadRequest("activity has no type")
    if _CONTROL.search(get_type(activity)):
        # PostgreSQL refuses NUL in text, and no vocabulary has such a type.
        raise BadRequest("the activity's type contains control characters")
    if get_type(activity).startswith("fedsph:"):
        # Our own queue items (fedsph:Backfill) are made by this node, never received.
        raise BadRequest(f"{get_type(activity)} is not an activity other servers may send")
    if not get_id(activity.get("actor")):
        raise BadRequest("activity has no actor")
    return activity


def check_origins(remote: Remote, activity: dict, key_id: str) -> None:
    """The origin rules that need no fetch: http(s) ids, nothing of ours, ids on the actor's
    origin, and a key of another origin only for a relayed activity that carries a proof."""
    actor_uri = get_id(activity["actor"])
    if not http_url(actor_uri):
        raise BadRequest("the activity's actor is not an http(s) URL")
    if not http_url(key_id):
        raise Unauthorized("the signature's key id is not an http(s) URL")
    if remote.is_own(actor_uri) or remote.is_own(key_id):
        # Our actors speak through this node only: such a request is forged or reflected.
        raise Forbidden("the actor or signing key is on this node, not on the sender's server")
    if get_id(activity.get("id")) and not same_origin(get_id(activity.get("id")), actor_uri):
        # Handlers key memberships, links and participations by activity ids: an actor may
        # only name activities of its own server (a third party could take another's id).
        raise BadRequest("the activity's id is on another server than its actor")
    if not same_origin(key_id, actor_uri) and not ("proof" in activity and should_sign(activity)):
        # Only a relay signs for others, and only what an integrity proof vouches for.
        raise Unauthorized("signed with a key of another server than the activity's actor, "
                           "and not a relayed activity with an integrity proof")


async def verified_signer(
    readers: async_sessionmaker[AsyncSession], writers: async_sessionmaker[AsyncSession],
    remote: Remote, params: SignatureParams | MessageSignature, request: SignedRequest,
    checked: bool = False,
) -> tuple[str, str]:
    """(actor URI, host) of the verified signer; refetches the key once if verification fails
    and our copy is older than KEY_REFETCH_AFTER.

    The key comes from the in-memory cache (fedsph/federation/keycache.py) when it holds it, so
    a known sender costs no database round trip. No database transaction is held open during
    the network fetch. What needs no key (window, coverage, digest) is checked first here, so no
    caller can make a bad request cost a fetch (`checked`: the caller did it already).
    """
    if not checked:
        request.check(params)
    cached = keys_for(readers.kw["bind"]).get(params.key_id)
    if cached is None:
        async with readers() as db:
            cached = await get_cached_key_owner(db, params.key_id)
    if cached is not None:
        try:
            return _verified_by(request, params, cached)
        except Unauthorized as failure:
            if not failure.message.startswith("signature does not verify"):
                raise
            # Another process may have refetched a rotated key: the database's copy decides.
            async with readers() as db:
                cached = await get_cached_key_owner(db, params.key_id, fresh=True)
            try:
                return _verified_by(request, params, cached)
            except Unauthorized as again:
                if cached is not None and (not again.message.startswith(
                        "signature does not verify") or _recent(cached)):
                    raise
    # Unknown key, or the key may have been rotated since we cached it: fetch it (once). Requests
    # naming the same key wait for one fetch: a burst from a server we never met costs one
    # request to it, and its actor row is not inserted by all of them at once.
    lock = _KEY_FETCHES.get(params.key_id)
    if lock is None:
        lock = _KEY_FETCHES[params.key_id] = asyncio.Lock()
    async with lock:
        fetched = keys_for(readers.kw["bind"]).get(params.key_id)
        if fetched is not None and fetched != cached:
            return _verified_by(request, params, fetched)  # fetched just now by another request
        return await _fetch_and_verify(writers, remote, params, request)


async def _fetch_and_verify(writers: async_sessionmaker[AsyncSession], remote: Remote,
                            params: SignatureParams | MessageSignature,
                            request: SignedRequest) -> tuple[str, str]:
    try:
        values = await fetch_key_owner(remote, params.key_id)
    except FetchError as exc:
        raise Unauthorized(f"cannot get the signing key {params.key_id}: {exc}") from None
    failure = None
    try:
        request.verify(params, values["public_key_pem"] or "")
    except Unauthorized as exc:
        failure = exc
    try:
        # Kept even when the signature fails: the actor's own server gave us this document, and
        # the next forged request naming the key is then refused without another fetch.
        async with writers() as db:
            async with db.begin():
                actor = await store_remote_actor(db, values)
            epoch = keys_for(db.bind).epoch  # after the commit and its own forget
        remember_key(db.bind, values, actor.fetched_at, epoch)  # after the commit, never before
    except InvalidActor as exc:
        raise Forbidden(str(exc)) from None
    if failure is not None:
        raise failure
    return values["uri"], values["domain"]


def _verified_by(request: SignedRequest, params, cached: CachedKey | None) -> tuple[str, str]:
    if cached is None:
        raise Unauthorized("signature does not verify: the key is no longer known")
    request.verify(params, cached.public_key_pem or "")
    return cached.uri, cached.domain


def _recent(key: CachedKey) -> bool:
    """The key's actor document was fetched less than KEY_REFETCH_AFTER ago."""
    return key.fetched_at is not None and utcnow() - key.fetched_at < KEY_REFETCH_AFTER


async def is_blocked(db: AsyncSession, actor_uri: str) -> bool:
    """The actor or its domain (or a parent domain of it, any port) is blocked on this node."""
    return await blocks.is_blocked(db, actor_uri)


@dataclass(frozen=True)
class SignedRequest:
    """What signature verification needs of an HTTP request (header names lower-case).

    `target_uri` is the absolute URL the sender addressed (our base URL + path + query), which
    RFC 9421's `@target-uri` covers.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes | None
    target_uri: str = ""
    # The signatures whose window, coverage and digest check() passed: verify() refuses others.
    checked: set = field(default_factory=set, compare=False, repr=False)

    def check(self, params: SignatureParams | MessageSignature) -> None:
        """What can be checked without the key: coverage, freshness, body digest."""
        if isinstance(params, MessageSignature):
            check_message(params, self.headers, self.body)
        else:
            check_request(params, self.headers, self.body)
        self.checked.add(id(params))

    def verify(self, params: SignatureParams | MessageSignature, public_pem: str) -> None:
        """The signature against the key, after check() passed for `params` (so the window and
        digest are not checked twice): a caller that skipped check() gets an error, not a pass."""
        if id(params) not in self.checked:
            raise RuntimeError("SignedRequest.verify before check(): the window and digest first")
        if isinstance(params, MessageSignature):
            verify_message(params, public_pem, self.method, self.target_uri, self.headers,
                           self.body, checked=True)
            return
        verify_request(params, public_pem, self.method, self.path, self.query, self.headers,
                       self.body, checked=True)


async def receive(
    readers: async_sessionmaker[AsyncSession], writers: async_sessionmaker[AsyncSession],
    remote: Remote, request: SignedRequest, content_type: str | None, ingest: Ingest,
    delivered_to: str | None = None,
) -> str:
    """Verify and store one incoming activity. Returns "stored", "duplicate" or "dropped".

    Raises HTTPProblems for everything we refuse, and IngestFailed when the activity could not
    be stored (the caller answers 503: the sender tries again later). For a known sender this
    reads no database: the key and the blocks are in memory, and the row is written with its
    neighbours' (fedsph/federation/ingest.py).
    """
    check_content_type(content_type)
    params = signature_params(request.headers)
    request.check(params)
    activity = parse_activity(request.body or b"")
    actor_uri = get_id(activity["actor"])
    check_origins(remote, activity, params.key_id)
    # A blocked server is refused before we fetch anything from it.
    if await blocks.snapshot_for(readers.kw["bind"]).blocks(readers, actor_uri, params.key_id):
        return "dropped"
    deletes_itself = get_type(activity) == "Delete" and get_id(activity.get("object")) == actor_uri
    if deletes_itself and not await _known_actor(readers, actor_uri, params.key_id):
        return "dropped"  # an account we never saw was deleted: do not fetch its key
    signer_uri, signer_host = await verified_signer(readers, writers, remote, params, request,
                                                    checked=True)
    if signer_uri != actor_uri:
        # Relayed (FEP-ae0c): only the actor's integrity proof (FEP-8b32) can vouch for it.
        await verify_relayed(writers, remote, activity, signer_uri)
        if await blocks.snapshot_for(readers.kw["bind"]).blocks(readers, signer_uri):
            return "dropped"  # a blocked server does not speak through a relay either
    activity_uri = get_id(activity.get("id")) or "urn:sha256:" + hashlib.sha256(request.body).hexdigest()
    outcome = await ingest.store(Received(
        activity_uri=activity_uri[:2048], type=get_type(activity)[:64], actor_uri=actor_uri,
        body=request.body, signed_by_actor=signer_uri == actor_uri, host=signer_host,
        delivered_to=delivered_to))
    if deletes_itself:
        keys_for(readers.kw["bind"]).deleting(actor_uri)  # its key is read from the database until it is gone
    return outcome


async def _known_actor(readers: async_sessionmaker[AsyncSession], actor_uri: str,
                       key_id: str) -> bool:
    cached = keys_for(readers.kw["bind"]).get(key_id)
    if cached is not None and cached.uri == actor_uri:
        return True
    async with readers() as db:
        return await db.scalar(select(Actor.id).where(Actor.uri == actor_uri)) is not None
