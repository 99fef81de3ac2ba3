"""Registering client apps (POST /api/v1/apps) and checking an app's token."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from aiohttp import web

from fedsph.accounts import hash_token
from fedsph.api.errors import ApiError, api_json
from fedsph.api.params import list_param, read_params
from fedsph.api.tokens import parse_scopes, require_token
from fedsph.core.safe_links import http_url
from fedsph.models import OAuthApp
from fedsph.web.keys import WRITERS

OOB = "urn:ietf:wg:oauth:2.0:oob"
NAME_MAX, URI_MAX = 255, 2000


def redirect_uris_of(app: OAuthApp) -> list[str]:
    return [uri for uri in app.redirect_uris.split("\n") if uri]


def app_entity(app: OAuthApp, client_secret: str | None = None) -> dict:
    """Mastodon's Application entity; the credentials only in the answer to registration."""
    uris = redirect_uris_of(app)
    entity = {"id": str(app.id), "name": app.name, "website": app.website,
              "scopes": app.scopes.split(), "redirect_uri": "\n".join(uris),
              "redirect_uris": uris, "vapid_key": ""}
    if client_secret is not None:
        entity.update(client_id=app.client_id, client_secret=client_secret,
                      client_secret_expires_at=0)
    return entity


def _valid_redirect(uri: str) -> bool:
    """Absolute URIs (apps use custom schemes like `elk://`), or the out-of-band marker."""
    if uri == OOB:
        return True
    parts = urlsplit(uri)
    return bool(parts.scheme) and not parts.fragment and len(uri) <= URI_MAX and (
        bool(parts.netloc) or parts.scheme not in ("http", "https"))


def _website(raw: str | None) -> str | None:
    """The app's homepage: shown as a link on the consent page, so http(s) only (Mastodon
    validates it as a URL too); a `javascript:` or `data:` value is refused, not cleaned."""
    value = (raw or "").strip()
    if not value:
        return None
    if http_url(value) is None:
        raise ApiError(422, "Validation failed: Website is invalid")
    return value


async def create_app(request: web.Request) -> web.Response:
    params = await read_params(request)
    name = (params.get("client_name") or "").strip()
    if not name:
        raise ApiError(422, "Validation failed: Application name can't be blank")
    if len(name) > NAME_MAX:
        raise ApiError(422, "Validation failed: Application name is too long")
    uris = [u.strip() for raw in list_param(params, "redirect_uris") for u in raw.split("\n")
            if u.strip()]
    if not uris:
        raise ApiError(422, "Validation failed: Redirect URI can't be blank")
    if not all(_valid_redirect(u) for u in uris):
        raise ApiError(422, "Validation failed: Redirect URI must be an absolute URI.")
    scopes = parse_scopes(" ".join(list_param(params, "scopes")))
    website = _website(params.get("website"))
    secret = secrets.token_urlsafe(32)
    async with request.app[WRITERS]() as db, db.begin():
        app = OAuthApp(client_id=secrets.token_urlsafe(32), client_secret_hash=hash_token(secret),
                       name=name, website=website, redirect_uris="\n".join(uris),
                       scopes=" ".join(scopes))
        db.add(app)
        await db.flush()
    return api_json(app_entity(app, secret))


async def verify_app(request: web.Request) -> web.Response:
    caller = await require_token(request)
    return api_json(app_entity(caller.app))
