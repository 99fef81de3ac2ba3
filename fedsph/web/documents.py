"""A short-lived in-memory cache of the JSON documents other servers fetch most often.

Every delivery we send makes its receiver fetch our actor (to check the signature), and every
follow from Mastodon starts with a WebFinger lookup; both answers change rarely. Building them costs
a database round trip, which on SQLite through aiosqlite is some 20 times the cost of sending the
bytes (bench/discovery.py), so they are kept for a few seconds: the web forms drop an actor's entry
when they change it; a change made by the CLI, in another process, shows once the entry expires.
"""

from __future__ import annotations

from cachetools import TTLCache

# Long enough to absorb the burst of fetches that follows a fan-out, short enough that an edit
# made from the command line is visible to peers almost at once.
DOCUMENT_TTL_SECONDS = 30
MAX_DOCUMENTS = 4096


def make_document_cache() -> TTLCache:
    """Rendered bodies keyed by (kind, key), e.g. ("actor", "coop") or ("webfinger", resource)."""
    return TTLCache(maxsize=MAX_DOCUMENTS, ttl=DOCUMENT_TTL_SECONDS)


def forget_actor(cache: TTLCache, username: str) -> None:
    """After this process changed an actor (profile form, a milestone's stage): serve it fresh."""
    cache.pop(("actor", username), None)

