"""Integrity proofs (FEP-8b32) in use: checking what we receive (what we publish is signed by
fedsph/federation/emit.py with the key each local actor is created with). The cryptography itself is in fedsph/federation/proofs.py (pure)."""

from __future__ import annotations

import logging

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.errors import FetchError, Unauthorized
from fedsph.federation import proofs
from fedsph.federation.activitystreams import get_id
from fedsph.federation.actors import resolve_actor
from fedsph.federation.remote import Remote
from fedsph.models import Actor, InboxItem

log = logging.getLogger("fedsph.integrity")


async def _actor_document(writers: async_sessionmaker[AsyncSession], remote: Remote, uri: str,
                          refresh: bool) -> dict | None:
    actor_id = await resolve_actor(writers, remote, uri, refresh=refresh)
    async with writers() as db:
        actor = await db.get(Actor, actor_id)
        if actor is None:
            return None
        if actor.local:  # our own key: no fetch, no cache
            keys = [proofs.multikey(actor.uri, actor.proof_key_pem)] if actor.proof_key_pem else []
            return {"id": actor.uri, "assertionMethod": keys}
        return actor.document


async def check_activity_proof(writers: async_sessionmaker[AsyncSession], remote: Remote,
                               activity: dict) -> None:
    """Verify the activity's proof against its actor's `assertionMethod`, refetching the actor
    once when the key is not in our copy (a new or rotated key). Raises proofs.ProofError
    (ProofUnusable when it cannot be checked) or FetchError."""
    proof = proofs.supported_proof(activity)  # nothing to fetch for a proof we cannot check
    uri = get_id(activity.get("actor")) or ""
    document = await _actor_document(writers, remote, uri, refresh=False)
    method_id = proof.get("verificationMethod")
    if isinstance(method_id, str) and not _lists_key(document, method_id):
        # Fetched anew only for a key our copy lacks: a proof that does not verify against a
        # key we have is refused without a request.
        document = await _actor_document(writers, remote, uri, refresh=True)
    proofs.verify_activity(activity, document or {})


def _lists_key(document: dict | None, method_id: str) -> bool:
    if document is None:
        return False
    try:
        proofs.verification_method(document, method_id)
    except proofs.ProofUnusable:
        return False
    return True


async def verify_relayed(writers: async_sessionmaker[AsyncSession], remote: Remote,
                         activity: dict, signer_uri: str) -> None:
    """An activity delivered by someone else than its actor (a relay): only its integrity
    proof can vouch for it. Raises Unauthorized with the reason."""
    actor_uri = get_id(activity.get("actor"))
    prefix = f"signed by {signer_uri}, not by the activity's actor {actor_uri}"
    if "proof" not in activity:
        raise Unauthorized(f"{prefix}, and it carries no integrity proof")
    if not proofs.should_sign(activity):
        # Relays carry public posts; an answer, a Follow or a Join only ever comes from its actor
        # (a replayed one would otherwise be taken as new).
        raise Unauthorized(f"{prefix}: only public Create, Update, Delete and Announce may be "
                           "relayed")
    try:
        await check_activity_proof(writers, remote, activity)
    except proofs.ProofError as exc:
        raise Unauthorized(f"{prefix}, and its integrity proof fails: {exc}") from None
    except FetchError as exc:
        raise Unauthorized(f"{prefix}, and its actor cannot be fetched: {exc}") from None


async def proof_problem(writers: async_sessionmaker[AsyncSession], remote: Remote,
                        item_id: int) -> tuple[str | None, bool]:
    """Why a received activity must be ignored because of its proof (None: no proof, or it
    verifies), and whether its proof verified. A proof we cannot check is left aside: the HTTP
    signature authenticated the sender (FEP-8b32 says to fall back on other authentication),
    but such an activity is not one whose author's proof we vouch for when passing it on
    (fedsph.projects.deleted_boosts forwards only a verified one)."""
    async with writers() as db:
        body = (await db.get(InboxItem, item_id)).body
    if b'"proof"' not in body:
        return None, False
    activity = orjson.loads(body)
    if "proof" not in activity:
        return None, False
    try:
        await check_activity_proof(writers, remote, activity)
    except proofs.ProofUnusable as exc:
        log.info("integrity proof of %s not checked: %s", activity.get("id"), exc)
        return None, False
    except proofs.ProofError as exc:
        return f"integrity proof fails: {exc}", False
    return None, True
