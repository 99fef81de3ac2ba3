"""Who is asking (the session cookie) and whether a form really came from our pages (CSRF).

Every POST outside the ActivityPub inboxes must carry the form field `csrf` equal to the token of
the visitor's session (or, before login, of the `fedsph_csrf` cookie: double-submit). Inboxes are
exempt because they authenticate each request with an HTTP signature, not a cookie.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from multidict import MultiDict

from fedsph.accounts import (
    ANON_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    FailureLimiter,
    csrf_matches,
    get_session,
    may_act_as,
    new_token,
)
from fedsph.core.urls import INBOX_ROUTES
from fedsph.errors import Forbidden, NotFound
from fedsph.federation.actors import get_local_actor
from fedsph.i18n import N_
from fedsph.models import Actor, User
from fedsph.web.keys import CSRF_TOKEN, LOGIN_SESSION, MULTIPART, READERS, SETTINGS, USER

LIMITER = web.AppKey("login_limiter", FailureLimiter)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf"
CSRF_REFUSED = N_("This form could not be accepted: it has expired or did not come from this site. "
                "Go back, reload the page and send it again.")
CSRF_TOKEN_MAX = 128


# Routes (as registered, e.g. "/actors/{username}/inbox") that browsers never post forms to.
CSRF_EXEMPT_ROUTES = INBOX_ROUTES | {"/oauth/token", "/oauth/revoke"}
# E-mail: one-click unsubscribe (RFC 8058) comes from a mail program; its signed link is the proof.
CSRF_EXEMPT_ROUTES |= {"/mail/unsubscribe/{token}"}
# /metrics changes nothing and answers any method but an allowed GET with the 404 of an unknown
# path (fedsph/web/metrics.py): a CSRF 403 would tell a stranger it exists.
CSRF_EXEMPT_ROUTES |= {"/metrics"}


def csrf_exempt(request: web.Request) -> bool:
    """Inboxes (shared, per actor, instance actor) are signed by servers, not sent by browsers;
    the Mastodon client API authenticates with Bearer tokens or client secrets, not cookies.

    Decided by the route that matched, never the path's text: "/invite/abc%2Finbox" ends in
    "/inbox" but reaches the invitation form. A request no route matched runs no handler (it
    ends in 404/405), so there is nothing to protect and API clients keep their 404.
    """
    resource = request.match_info.route.resource
    if resource is None:
        return True
    route = resource.canonical
    return route in CSRF_EXEMPT_ROUTES or route.startswith("/api/")


def is_https(request: web.Request) -> bool:
    return request.app[SETTINGS].base_url.startswith("https://")


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int | None = int(SESSION_LIFETIME.total_seconds())) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                        secure=is_https(request))


async def _posted_csrf(request: web.Request) -> str | None:
    """The `csrf` field of a form, leaving the body readable for the handler.

    URL-encoded forms are parsed (aiohttp caches the result for request.post()). Multipart forms
    are streamed: `csrf` must be their first part, and the reader is handed on in
    request[MULTIPART] so uploads are never buffered whole before the token is known.
    """
    if request.content_type == "application/x-www-form-urlencoded":
        return (await request.post()).get(CSRF_FIELD)
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        request[MULTIPART] = reader
        part = await reader.next()
        if part is None or getattr(part, "name", None) != CSRF_FIELD:
            return None
        value = await part.read_chunk(CSRF_TOKEN_MAX + 1)
        return value.decode(errors="replace") if len(value) <= CSRF_TOKEN_MAX else None
    return None


@web.middleware
async def authentication(request: web.Request, handler):
    request[USER] = None
    request[LOGIN_SESSION] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[READERS]() as db:
            found = await get_session(db, token)
        if found is not None:
            request[LOGIN_SESSION], request[USER] = found
            request[CSRF_TOKEN] = found[0].csrf_token
    fresh_anon_token = None
    safe = request.method in SAFE_METHODS
    exempt = not safe and csrf_exempt(request)
    if request[USER] is None:
        anon = request.cookies.get(ANON_CSRF_COOKIE, "")
        if 20 <= len(anon) <= CSRF_TOKEN_MAX:
            pass
        elif (safe and "json" in request.headers.get("Accept", "")) or exempt:
            # A machine read that asks for JSON (AS2, JRD, the API) renders no form, nor does a
            # POST to an inbox or the API (signed or token-bearing, never a browser's form): no
            # token to make on these hot paths. An empty token never matches (csrf_matches).
            # (Not wants_html: pages answer `*/*` too, and their forms need the token.)
            anon = ""
        else:
            anon = fresh_anon_token = new_token()
        request[CSRF_TOKEN] = anon
    if (not safe and not exempt
            and not csrf_matches(request[CSRF_TOKEN], await _posted_csrf(request))):
        raise Forbidden(CSRF_REFUSED)
    response = await handler(request)
    # Only pages can hold a form; machine answers (AS2 JSON) stay cookie-free.
    if fresh_anon_token and response.content_type == "text/html" and not response.prepared:
        set_cookie(request, response, ANON_CSRF_COOKIE, fresh_anon_token, max_age=None)
    return response


async def local_actor_or_404(request: web.Request) -> Actor:
    """The local project or person named in the URL ({username}); never the instance actor."""
    async with request.app[READERS]() as db:
        actor = await get_local_actor(db, request.match_info["username"])
    if actor is None or actor.type == "Application":
        raise NotFound(N_("There is no such project here."))
    return actor


async def require_member(request: web.Request, actor: Actor) -> User:
    """The logged-in user if they may act as `actor`; else a redirect to log in, or 403."""
    user = request.get(USER)
    if user is None:
        target = request.path_qs if request.method in SAFE_METHODS else request.path
        raise web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")
    async with request.app[READERS]() as db:
        allowed = await may_act_as(db, user, actor)
    if not allowed:
        raise Forbidden(N_("You are not a member of this project."))
    return user


async def read_form(request: web.Request) -> MultiDict:
    """The posted fields of a URL-encoded form (already parsed by the CSRF check)."""
    return MultiDict(await request.post())
