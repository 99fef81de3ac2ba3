"""A short-lived in-memory cache of the JSON documents other servers fetch most often.

Every delivery we send makes its receiver fetch our actor (to check the signature), and every
follow from Mastodon starts with a WebFinger lookup; both answers change rarely. Building them costs
a database round trip, which on SQLite through aiosqlite is some 20 times the cost of sending the
bytes (bench/discovery.py), so they are kept for a few seconds: the web forms drop an actor's entry
when they change it; a change made by the CLI or by another `fedsph serve` process shows once the
entry expires, after FEDSPH_DOCUMENT_CACHE_SECONDS (30 by default) at most.

Why a TTL and no invalidation signal between processes: peers themselves keep our actor for
hours or days (Mastodon refetches it daily, or on an Update we send), so seconds of staleness in
what a refetch returns change nothing they see, and an Update activity carries the new document
anyway. The HTML pages, which people look at right after an edit, are never cached.
"""

from __future__ import annotations

from cachetools import TTLCache

MAX_DOCUMENTS = 4096


def make_document_cache(ttl_seconds: float) -> TTLCache:
    """Rendered bodies keyed by (kind, key), e.g. ("actor", "coop") or ("webfinger", resource).

    The TTL (FEDSPH_DOCUMENT_CACHE_SECONDS): long enough to absorb the burst of fetches that
    follows a fan-out, short enough that an edit made elsewhere reaches peers almost at once."""
    return TTLCache(maxsize=MAX_DOCUMENTS, ttl=ttl_seconds)


def forget_actor(cache: TTLCache, username: str, uri: str | None = None) -> None:
    """After this process changed an actor (profile form, a milestone's stage): serve it fresh.
    With its `uri` (a deleted actor), its WebFinger answers go too, for `acct:name@host` and for
    its URL, however the resource was spelt: dropping another entry only costs a rebuild."""
    cache.pop(("actor", username), None)
    if uri is not None:
        for key in [k for k in list(cache.keys()) if k[0] == "webfinger"]:
            resource = key[1].lower()
            if resource.startswith(uri.lower()) or f"{username}@" in resource:
                cache.pop(key, None)
