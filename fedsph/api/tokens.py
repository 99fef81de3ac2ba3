"""Scopes, issuing access tokens, and resolving `Authorization: Bearer` to who is acting.

A token acts as one local actor (the member's own Person or one of their projects); an app-only
token (client_credentials) has neither user nor actor. Only SHA-256 hashes of tokens are stored.
Tokens expire FEDSPH_TOKEN_LIFETIME_DAYS after they were issued and can be revoked.

Scopes: read, write, follow and push, plus Mastodon's granular `read:…`/`write:…`/`admin:…`
forms. `push` is granted when asked for (Mastodon.py asks for it by default and fails when a
requested scope is missing from the answer) but gives nothing: there is no Web Push here.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select

from fedsph.accounts import hash_token, may_act_as, may_log_in, new_token
from fedsph.api.errors import ApiError, unauthorized
from fedsph.models import Actor, OAuthApp, OAuthToken, User, utcnow
from fedsph.web.keys import READERS, SETTINGS

TOP_SCOPES = ("read", "write", "follow", "push")
GRANULAR_PREFIXES = ("read:", "write:", "admin:read", "admin:write")
DEFAULT_SCOPES = "read"


def parse_scopes(raw: str | None, default: str = DEFAULT_SCOPES) -> list[str]:
    """The scopes of a space-separated string (`+` also separates, as in some apps' URLs)."""
    words = (raw or "").replace("+", " ").split() or default.split()
    unknown = [w for w in words if w not in TOP_SCOPES and not w.startswith(GRANULAR_PREFIXES)]
    if unknown:
        raise ApiError(400, "invalid_scope",
                       f"The requested scope is invalid, unknown, or malformed: {unknown[0]}")
    return list(dict.fromkeys(words))


def check_within(requested: list[str], allowed: list[str]) -> None:
    """An app may only ask a user for scopes it registered with (`read` covers `read:…`)."""
    for scope in requested:
        if not covers(allowed, scope):
            raise ApiError(400, "invalid_scope",
                           f"The requested scope is not registered for this application: {scope}")


def covers(granted: list[str], needed: str) -> bool:
    """`read` grants `read:accounts`; `follow` grants the follow parts of read and write."""
    if needed in granted or needed.split(":")[0] in granted:
        return True
    follow_parts = {"read:follows", "write:follows", "read:blocks", "write:blocks",
                    "read:mutes", "write:mutes"}
    return needed in follow_parts and "follow" in granted


async def issue_token(db, app: OAuthApp, user_id: int | None, actor_id: int | None,
                      scopes: list[str]) -> tuple[str, OAuthToken]:
    token = new_token()
    row = OAuthToken(token_hash=hash_token(token), app_id=app.id, user_id=user_id,
                     actor_id=actor_id, scopes=" ".join(scopes), created_at=utcnow())
    db.add(row)
    await db.flush()
    return token, row


def token_lifetime(request: web.Request) -> timedelta:
    return timedelta(days=request.app[SETTINGS].token_lifetime_days)


def token_entity(token: str, row: OAuthToken, lifetime: timedelta) -> dict:
    """Mastodon's Token entity, with RFC 6749's `expires_in` (Mastodon.py reads it)."""
    return {"access_token": token, "token_type": "Bearer", "scope": row.scopes,
            "created_at": calendar.timegm(row.created_at.timetuple()),
            "expires_in": int(lifetime.total_seconds())}


@dataclass
class Caller:
    """Who a request acts for: the token, the member (None for app tokens) and the account."""

    token: OAuthToken
    app: OAuthApp
    user: User | None
    actor: Actor | None

    @property
    def scopes(self) -> list[str]:
        return self.token.scopes.split()


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("access_token") or None


async def optional_caller(request: web.Request) -> Caller | None:
    """The caller if a token was sent (401 if that token is not valid), else None."""
    token = bearer_token(request)
    if token is None:
        return None
    return await caller_for(request, token)


async def caller_for(request: web.Request, token: str) -> Caller:
    """Who `token` acts for, checked now (401 if it is unknown, revoked or expired): also
    what an open stream asks again and again (fedsph/api/streaming.py)."""
    async with request.app[READERS]() as db:
        found = (await db.execute(
            select(OAuthToken, OAuthApp).join(OAuthApp, OAuthApp.id == OAuthToken.app_id)
            .where(OAuthToken.token_hash == hash_token(token)))).first()
        if found is None:
            raise unauthorized()
        row, app = found
        _check_still_valid(row, token_lifetime(request))
        user = await db.get(User, row.user_id) if row.user_id else None
        actor = await db.get(Actor, row.actor_id) if row.actor_id else None
        # Checked on every use, not only at issue: a revoked admin, a member who left a
        # project or a disabled user loses that actor's tokens at once (read from the
        # database on every request: no cache to outlive the change).
        if row.user_id and (not may_log_in(user) or actor is None
                            or not await may_act_as(db, user, actor)):
            raise unauthorized()
    return Caller(row, app, user, actor)


def _check_still_valid(row: OAuthToken, lifetime: timedelta) -> None:
    """401 with Doorkeeper's words (as Mastodon answers) for a revoked or expired token."""
    if row.revoked_at is not None:
        raise ApiError(401, "The access token was revoked")
    # Counted from issue, not stored: shortening the setting also shortens older tokens.
    if row.created_at + lifetime <= utcnow():
        raise ApiError(401, "The access token expired")


async def require_token(request: web.Request, scope: str | None = None) -> Caller:
    """Any valid token (app tokens too), holding `scope` if given."""
    caller = await optional_caller(request)
    if caller is None:
        raise unauthorized()
    if scope and not covers(caller.scopes, scope):
        raise ApiError(403, "This action is outside the authorized scopes")
    return caller


async def require_account(request: web.Request, scope: str) -> Caller:
    """A token that acts as an account (not an app-only token), holding `scope`."""
    caller = await require_token(request, scope)
    if caller.actor is None:
        raise ApiError(422, "This method requires an authenticated user")
    return caller
