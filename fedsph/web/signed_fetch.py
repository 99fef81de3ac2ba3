"""Signed GETs (Mastodon's "authorized fetch"): who is asking, so a followers-only post can be
served to the servers of its author's followers, and a direct post to the servers of the actors
it addresses, and to no one else.

Mastodon signs such fetches with its instance actor, not with the follower's own key, and
decides by domain: a server may see a followers-only post when one of its accounts follows the
author (app/controllers/concerns/signature_verification.rb, StatusPolicy). fedsph does the same.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.logtext import printable
from fedsph.errors import BadRequest, NotFound, Unauthorized
from fedsph.federation import blocks
from fedsph.federation.inbox import SignedRequest, signature_params, verified_signer
from fedsph.federation.visibility import DIRECT, VISIBLE_TO_ALL, domain_addressed
from fedsph.models import Actor, Follow, Object
from fedsph.web.client_address import client_address
from fedsph.web.keys import READERS, REMOTE, SETTINGS, URLS, WRITERS
from fedsph.web.render import wants_html

log = logging.getLogger("fedsph.signed_fetch")


async def fetch_signer(request: web.Request) -> tuple[str, str] | None:
    """(actor URI, domain) of who signed this GET, or None when it is not (validly) signed."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    params = None
    try:
        params = signature_params(headers)
        signed = SignedRequest(method=request.method, path=request.rel_url.raw_path,
                               query=request.rel_url.raw_query_string, headers=headers,
                               body=None,
                               target_uri=request.app[SETTINGS].base_url + request.rel_url.raw_path_qs)
        signer = await verified_signer(request.app[READERS], request.app[WRITERS],
                                       request.app[REMOTE], params, signed)
    except (Unauthorized, BadRequest) as exc:
        log.warning("signed fetch of %s refused: %s; key %r from %s", request.rel_url.raw_path,
                    printable(exc), getattr(params, "key_id", None), client_address(request))
        return None
    return signer


async def domain_follows(db: AsyncSession, author: Actor, domain: str) -> bool:
    """Whether an account of `domain` follows `author` (accepted)."""
    found = await db.scalar(
        select(Follow.id).join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followed_id == author.id, Follow.state == "accepted",
               Actor.domain == domain).limit(1))
    return found is not None


async def may_fetch(request: web.Request, obj: Object, author: Actor) -> bool:
    """Whether this GET may have a local post as AS2 (or its page): public and unlisted for all;
    followers-only and direct only for a signed fetch from a server they were sent to."""
    if obj.visibility in VISIBLE_TO_ALL:
        return True
    if wants_html(request) or obj.visibility not in ("followers", DIRECT):
        return False
    signer = await fetch_signer(request)
    if signer is None:
        return False
    signer_uri, domain = signer
    async with request.app[READERS]() as db:
        if await blocks.is_blocked_domain(db, domain) or await blocks.is_blocked(db, signer_uri):
            allowed = False  # a blocked server or account sees nothing more
        elif obj.visibility == DIRECT:
            allowed = await domain_addressed(db, obj, domain)
        else:
            allowed = await domain_follows(db, author, domain)
    if not allowed:
        log.warning("signed fetch of %s refused: nobody on %s may see this %s post of %s; from %s",
                    request.rel_url.raw_path, domain, obj.visibility, author.uri,
                    client_address(request))
    return allowed


async def fetchable_local_object(request: web.Request) -> tuple[Object, Actor]:
    """The local object named by the path's `object_id` and its author, if this request may
    have it (may_fetch); 404 otherwise, as for anything that is not there. A deleted one is
    returned: each caller answers for it (a tombstone, or 410)."""
    uri = request.app[URLS].object(request.match_info["object_id"])
    async with request.app[READERS]() as db:
        obj = await db.scalar(select(Object).where(Object.uri == uri, Object.local.is_(True)))
        if obj is None:
            raise NotFound("no such object here")
        author = await db.get(Actor, obj.actor_id)
    if not await may_fetch(request, obj, author):
        raise NotFound("no such object here")
    return obj, author
