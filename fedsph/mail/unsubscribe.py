"""The unsubscribe link of a notice: works without logging in, names a member and a topic.

A signature (HMAC-SHA256) rather than a stored token, so every notice ever sent keeps a
working link without a row per mail. Its key is derived from the instance actor's private key,
the node's one existing secret (whoever holds that can act as the whole node anyway), so no new
secret is stored. The signed text includes the address the mail went to: a link mailed to an
old address does not rule the new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.federation.instance_actor import get_or_create_instance_actor
from fedsph.models import User

SIGNATURE_CHARS = 32


async def signing_key(db: AsyncSession, urls: URLs, domain: str) -> bytes:
    instance = await get_or_create_instance_actor(db, urls, domain)
    return hashlib.sha256(b"fedsph mail unsubscribe\0" + instance.private_key_pem.encode()).digest()


def _signature(key: bytes, user_id: int, topic: str, address: str) -> str:
    mac = hmac.new(key, f"{user_id}:{topic}:{address}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:SIGNATURE_CHARS]


def make_token(key: bytes, user: User, topic: str) -> str:
    return f"{user.id}.{topic}.{_signature(key, user.id, topic, user.email or '')}"


def read_token(token: str) -> tuple[int, str, str] | None:
    """(user id, topic, signature) of a token's shape, before any check; None if malformed."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 12:
        return None
    return int(parts[0]), parts[1], parts[2]


def signature_matches(key: bytes, user: User, topic: str, signature: str) -> bool:
    expected = _signature(key, user.id, topic, user.email or "")
    return hmac.compare_digest(expected.encode(), signature.encode())
