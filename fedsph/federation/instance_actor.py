"""The node's own Application actor (`instance`): it signs this node's GETs and can be fetched
unsigned. Made once, at start (fedsph/app.py) or by the first command that needs it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.proofs import generate_proof_key
from fedsph.models import Actor


async def get_or_create_instance_actor(db: AsyncSession, urls: URLs, domain: str) -> Actor:
    """The node's Application actor; it signs our GETs and can be fetched unsigned."""
    uri = urls.instance_actor()
    actor = await get_actor_by_uri(db, uri)
    if actor:
        return actor
    private_pem, public_pem = generate_rsa_keypair()
    actor = Actor(
        uri=uri, local=True, type="Application", username="instance", domain=domain,
        name=domain, summary="The fedsph node itself: it signs this node's requests.", url=urls.base,
        inbox=uri + "/inbox", shared_inbox=urls.shared_inbox(), outbox=uri + "/outbox",
        key_id=urls.key_id(uri), public_key_pem=public_pem, private_key_pem=private_pem,
        manually_approves=True,
        proof_key_pem=generate_proof_key(),  # every local actor has one (migration 0010)
    )
    db.add(actor)
    await db.flush()
    return actor
