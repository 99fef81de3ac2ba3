"""OAuth 2 as Mastodon apps use it: authorize (a login and consent page), token, revoke, and
the RFC 8414 metadata. Codes live 10 minutes and are used once; PKCE (S256 or plain) is checked
when the app sent a code_challenge, in addition to the client secret, which is always required.
Tokens expire after FEDSPH_TOKEN_LIFETIME_DAYS (fedsph.api.tokens).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from datetime import timedelta
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from aiohttp import web
from sqlalchemy import select, update

from fedsph.accounts import authenticate, hash_token, may_act_as, may_log_in, new_token
from fedsph.api.apps import OOB, redirect_uris_of
from fedsph.api.errors import ApiError, api_json
from fedsph.api.params import get_by_id, read_params
from fedsph.api.tokens import (
    TOP_SCOPES,
    check_within,
    issue_token,
    parse_scopes,
    token_entity,
    token_lifetime,
)
from fedsph.models import Actor, OAuthApp, OAuthCode, OAuthToken, User, utcnow
from fedsph.projects.queries import actors_of_user
from fedsph.web.auth_middleware import LIMITER, read_form
from fedsph.web.client_address import client_address
from fedsph.web.headers import allow_form_target
from fedsph.web.keys import LANG, READERS, URLS, USER, WRITERS
from fedsph.web.render import html_response

log = logging.getLogger("fedsph.login")

CODE_LIFETIME = timedelta(minutes=10)
GRANT_TYPES = ("authorization_code", "password", "client_credentials")
CHALLENGE_METHODS = ("S256", "plain")

# The consent page's words. Kept here rather than in the gettext catalogs so this module can be
# added without regenerating them; same four languages as the interface.
CONSENT_TEXT = {
    "en": {"title": "Authorize {app}", "lead": "{app} asks to use your account on this node.",
           "scopes": "It will be allowed to:", "as": "Act as:", "allow": "Authorize",
           "deny": "Deny", "code": "Copy this code into the app:",
           "read": "read your timelines, account and notifications", "write": "post and change "
           "things as this account", "follow": "follow and unfollow accounts", "push":
           "(push notifications are not available on this node)"},
    "es": {"title": "Autorizar {app}", "lead": "{app} pide usar tu cuenta en este nodo.",
           "scopes": "Podrá:", "as": "Actuar como:", "allow": "Autorizar", "deny": "Rechazar",
           "code": "Copia este código en la aplicación:",
           "read": "leer tus cronologías, tu cuenta y tus notificaciones",
           "write": "publicar y cambiar cosas como esta cuenta",
           "follow": "seguir y dejar de seguir cuentas",
           "push": "(las notificaciones push no están disponibles en este nodo)"},
    "fr": {"title": "Autoriser {app}", "lead": "{app} demande à utiliser votre compte sur ce nœud.",
           "scopes": "Elle pourra :", "as": "Agir en tant que :", "allow": "Autoriser",
           "deny": "Refuser", "code": "Copiez ce code dans l’application :",
           "read": "lire vos fils, votre compte et vos notifications",
           "write": "publier et modifier au nom de ce compte",
           "follow": "suivre des comptes et cesser de les suivre",
           "push": "(les notifications push ne sont pas disponibles sur ce nœud)"},
    "pt": {"title": "Autorizar {app}", "lead": "{app} pede para usar sua conta neste nó.",
           "scopes": "Poderá:", "as": "Agir como:", "allow": "Autorizar", "deny": "Recusar",
           "code": "Copie este código no aplicativo:",
           "read": "ler suas linhas do tempo, sua conta e suas notificações",
           "write": "publicar e alterar coisas como esta conta",
           "follow": "seguir e deixar de seguir contas",
           "push": "(notificações push não estão disponíveis neste nó)"},
}


async def metadata(request: web.Request) -> web.Response:
    """RFC 8414, with the fields Mastodon serves (Mastodon.py reads the grant types here)."""
    base = request.app[URLS].base
    return api_json({
        "issuer": base + "/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": list(TOP_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "code_challenge_methods_supported": list(CHALLENGE_METHODS),
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    })


# --- authorize: the member logs in, picks the account, and the app gets a code -------------------

class _Refused(Exception):
    """The authorize request cannot go back to the app: shown on a page instead."""


async def _authorize_request(request: web.Request, params) -> dict:
    """The checked parameters of an authorize request (from the query, or the consent form)."""
    if params.get("response_type", "code") != "code":
        raise _Refused("unsupported response_type: only 'code' is available")
    async with request.app[READERS]() as db:
        app = await db.scalar(select(OAuthApp).where(
            OAuthApp.client_id == (params.get("client_id") or "")))
    if app is None:
        raise _Refused("unknown client_id: the app is not registered on this node")
    registered = redirect_uris_of(app)
    redirect_uri = params.get("redirect_uri") or (registered[0] if len(registered) == 1 else "")
    if redirect_uri not in registered:
        raise _Refused("this redirect_uri was not registered by the app")
    try:
        scopes = parse_scopes(params.get("scope"))
        check_within(scopes, app.scopes.split())
    except ApiError as error:
        raise _Refused(error.description or error.error) from error
    method = params.get("code_challenge_method") or ("S256" if params.get("code_challenge")
                                                     else None)
    if method and method not in CHALLENGE_METHODS:
        raise _Refused("unsupported code_challenge_method")
    return {"app": app, "redirect_uri": redirect_uri, "scopes": scopes,
            "state": params.get("state") or "", "code_challenge": params.get("code_challenge"),
            "code_challenge_method": method if params.get("code_challenge") else None}


def _page(request: web.Request, status: int = 200, **context) -> web.Response:
    lang = request.get(LANG, "en")
    words = CONSENT_TEXT.get(lang, CONSENT_TEXT["en"])
    return html_response(request, "oauth_authorize.html", status=status, words=words, **context)


async def authorize_form(request: web.Request) -> web.Response:
    if request[USER] is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
    try:
        checked = await _authorize_request(request, request.query)
    except _Refused as refused:
        return _page(request, status=400, error=str(refused))
    async with request.app[READERS]() as db:
        accounts = await actors_of_user(db, request[USER])
    page = _page(request, error=None, accounts=accounts, app=checked["app"],
                 redirect_uri=checked["redirect_uri"], scope=" ".join(checked["scopes"]),
                 scopes=checked["scopes"], state=checked["state"],
                 code_challenge=checked["code_challenge"] or "",
                 code_challenge_method=checked["code_challenge_method"] or "")
    allow_form_target(page, checked["redirect_uri"])  # the consent form ends at the app
    return page


def _back_to_app(redirect_uri: str, values: dict) -> web.HTTPFound:
    parts = urlsplit(redirect_uri)
    query = "&".join(q for q in (parts.query, urlencode({k: v for k, v in values.items() if v}))
                     if q)
    return web.HTTPFound(urlunsplit(parts._replace(query=query)))


async def authorize(request: web.Request) -> web.Response:
    """The consent form was posted (its CSRF token was checked by the site middleware)."""
    user = request[USER]
    if user is None:
        raise web.HTTPSeeOther("/login")
    form = await read_form(request)
    try:
        checked = await _authorize_request(request, form)
    except _Refused as refused:
        return _page(request, status=400, error=str(refused))
    if form.get("decision") != "allow":
        if checked["redirect_uri"] == OOB:
            raise web.HTTPSeeOther("/")
        raise _back_to_app(checked["redirect_uri"], {"error": "access_denied",
                                                     "state": checked["state"]})
    code = new_token()
    async with request.app[WRITERS]() as db, db.begin():
        actor = await get_by_id(db, Actor, form.get("account"))
        if actor is None or not await may_act_as(db, user, actor):
            return _page(request, status=403, error="You may not act as this account.")
        db.add(OAuthCode(code_hash=hash_token(code), app_id=checked["app"].id, user_id=user.id,
                         actor_id=actor.id, redirect_uri=checked["redirect_uri"],
                         scopes=" ".join(checked["scopes"]),
                         code_challenge=checked["code_challenge"],
                         code_challenge_method=checked["code_challenge_method"],
                         expires_at=utcnow() + CODE_LIFETIME))
    if checked["redirect_uri"] == OOB:
        return _page(request, error=None, code=code, app=checked["app"])
    raise _back_to_app(checked["redirect_uri"], {"code": code, "state": checked["state"]})


# --- token and revoke ----------------------------------------------------------------------------

def _client_credentials(request: web.Request, params) -> tuple[str, str | None]:
    """client_id and client_secret from HTTP Basic (client_secret_basic) or the body."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ApiError(401, "invalid_client", "Malformed client credentials.") from exc
        return client_id, secret
    return params.get("client_id") or "", params.get("client_secret")


async def _client(request: web.Request, params) -> OAuthApp:
    """The app, authenticated by its secret. Every app registered here is a confidential client
    (POST /api/v1/apps always issues a secret), so the secret is required on every grant, PKCE
    or not: a code_verifier proves who started the flow, not which app is asking."""
    client_id, secret = _client_credentials(request, params)
    async with request.app[READERS]() as db:
        app = await db.scalar(select(OAuthApp).where(OAuthApp.client_id == client_id))
    if app is None or not secret or not hmac.compare_digest(app.client_secret_hash,
                                                            hash_token(secret)):
        raise ApiError(401, "invalid_client", "Client authentication failed due to unknown "
                       "client, no client authentication included, or unsupported method.")
    return app


def _pkce_ok(code: OAuthCode, verifier: str | None) -> bool:
    if not code.code_challenge:
        return True
    if not verifier:
        return False
    if code.code_challenge_method == "plain":
        expected = verifier
    else:
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return hmac.compare_digest(expected.encode(), code.code_challenge.encode())


def _invalid_grant(description: str) -> ApiError:
    return ApiError(400, "invalid_grant", description)


async def token(request: web.Request) -> web.Response:
    params = await read_params(request)
    grant = params.get("grant_type")
    if grant == "authorization_code":
        return await _code_grant(request, params)
    if grant == "password":
        return await _password_grant(request, params)
    if grant == "client_credentials":
        app = await _client(request, params)
        scopes = parse_scopes(params.get("scope"))
        check_within(scopes, app.scopes.split())
        async with request.app[WRITERS]() as db, db.begin():
            secret, row = await issue_token(db, app, None, None, scopes)
        return api_json(token_entity(secret, row, token_lifetime(request)))
    raise ApiError(400, "unsupported_grant_type",
                   "The authorization grant type is not supported by the authorization server.")


async def _code_grant(request: web.Request, params) -> web.Response:
    app = await _client(request, params)
    now = utcnow()
    async with request.app[WRITERS]() as db, db.begin():
        code = await db.scalar(select(OAuthCode).where(
            OAuthCode.code_hash == hash_token(params.get("code") or ""),
            OAuthCode.app_id == app.id))
        if code is None or code.used_at is not None or code.expires_at < now:
            raise _invalid_grant("The authorization code is invalid, expired or already used.")
        if params.get("redirect_uri", code.redirect_uri) != code.redirect_uri:
            raise _invalid_grant("The redirect_uri does not match the one of the authorization.")
        if not _pkce_ok(code, params.get("code_verifier")):
            raise _invalid_grant("The code_verifier does not match the code_challenge.")
        if not may_log_in(await db.get(User, code.user_id)):  # disabled since it consented
            raise _invalid_grant("The authorization code is invalid, expired or already used.")
        # Conditional update: of two requests racing with one code, only one gets a token.
        used = await db.execute(update(OAuthCode).where(
            OAuthCode.id == code.id, OAuthCode.used_at.is_(None)).values(used_at=now))
        if used.rowcount != 1:
            raise _invalid_grant("The authorization code was already used.")
        secret, row = await issue_token(db, app, code.user_id, code.actor_id,
                                        code.scopes.split())
    return api_json(token_entity(secret, row, token_lifetime(request)))


async def _password_grant(request: web.Request, params) -> web.Response:
    """Username (or e-mail address, as Mastodon takes) and password of a member; the token acts
    as the member's own Person."""
    app = await _client(request, params)
    scopes = parse_scopes(params.get("scope"))
    check_within(scopes, app.scopes.split())
    username = (params.get("username") or "").strip().lower()[:255]
    limiter, address = request.app[LIMITER], client_address(request)
    if limiter.retry_after(address):
        log.warning("token refused: throttled; user %r from %s", username, address)
        raise ApiError(429, "Too many failed attempts. Wait a few minutes and try again.")
    async with request.app[READERS]() as db:
        found = await authenticate(db, username, params.get("password") or "")
    user = found.user
    if user is None:
        wait = limiter.fail(address, found.account)
        log.warning("token refused: wrong password; user %r from %s", username, address)
        if wait:  # the account is under attack: this address waits before its next guess
            raise ApiError(429, "Too many failed attempts. Wait a few minutes and try again.")
        raise _invalid_grant("The username or password is wrong.")
    limiter.succeed(address, found.account)
    if not may_log_in(user):  # said only to whoever knows the password: no enumeration
        log.warning("token refused: account disabled; user %r from %s", username, address)
        raise _invalid_grant("This account is disabled.")
    async with request.app[WRITERS]() as db, db.begin():
        secret, row = await issue_token(db, app, user.id, user.actor_id, scopes)
    return api_json(token_entity(secret, row, token_lifetime(request)))


async def revoke(request: web.Request) -> web.Response:
    """RFC 7009: always 200 for a known client, whether or not the token existed."""
    params = await read_params(request)
    app = await _client(request, params)
    async with request.app[WRITERS]() as db, db.begin():
        await db.execute(update(OAuthToken).where(
            OAuthToken.token_hash == hash_token(params.get("token") or ""),
            OAuthToken.app_id == app.id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=utcnow()))
    return api_json({})
