"""OAuth and the client API's tokens, as an attacker would try them: a code redeemed with a
code_verifier but without the app's secret, expired and revoked tokens, a read-only token that
tries to write, and an app that registers a `javascript:` website.

Each refused attempt also checks that nothing was created or changed in the database.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import delete, func, select, update

from fedsph.accounts import hash_token, new_token
from fedsph.api.tokens import issue_token
from fedsph.config import ConfigError, load_settings
from fedsph.models import Membership, OAuthApp, OAuthCode, OAuthToken, Object, User, utcnow
from fedsph.web.auth_middleware import LIMITER
from tests.support import testdb
from tests.support.members import PASSWORD, make_user

REDIRECT = "https://app.example/callback"
VERIFIER = "v" * 50


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def app(node, http):
    """A registered app: (client_id, client_secret)."""
    async with http.post(f"{node.base}/api/v1/apps", json={
            "client_name": "tester", "redirect_uris": REDIRECT,
            "scopes": "read write", "website": "https://app.example/"}) as answer:
        assert answer.status == 200
        body = await answer.json()
    return body["client_id"], body["client_secret"]


async def count(node, column) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count(column)))


async def password_token(node, http, app, scope: str = "read write") -> str:
    client_id, secret = app
    async with http.post(f"{node.base}/oauth/token", data={
            "grant_type": "password", "client_id": client_id, "client_secret": secret,
            "username": "ana", "password": PASSWORD, "scope": scope}) as answer:
        assert answer.status == 200, await answer.text()
        return (await answer.json())["access_token"]


async def verify(node, http, token: str) -> tuple[int, dict]:
    async with http.get(f"{node.base}/api/v1/accounts/verify_credentials",
                        headers={"Authorization": f"Bearer {token}"}) as answer:
        return answer.status, await answer.json()


# --- the client secret is always required ----------------------------------------------------------

async def pkce_code(node, app) -> str:
    """An authorization code as the consent page issues it, bound to an S256 challenge."""
    user = await make_user(node, "ana")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    code = new_token()
    async with node.writers() as db, db.begin():
        registered = await db.scalar(select(OAuthApp).where(OAuthApp.client_id == app[0]))
        db.add(OAuthCode(code_hash=hash_token(code), app_id=registered.id, user_id=user.id,
                         actor_id=user.actor_id, redirect_uri=REDIRECT, scopes="read",
                         code_challenge=challenge.decode().rstrip("="),
                         code_challenge_method="S256", expires_at=utcnow() + timedelta(minutes=5)))
    return code


@pytest.mark.parametrize("secret", [None, "", "not-the-secret"])
async def test_a_code_verifier_does_not_replace_the_client_secret(node, http, app, secret):
    code = await pkce_code(node, app)
    fields = {"grant_type": "authorization_code", "code": code, "client_id": app[0],
              "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    if secret is not None:
        fields["client_secret"] = secret
    async with http.post(f"{node.base}/oauth/token", data=fields) as answer:
        assert answer.status == 401
        assert (await answer.json())["error"] == "invalid_client"
    assert await count(node, OAuthToken.id) == 0
    async with node.readers() as db:  # the code was not spent: the real app can still use it
        assert (await db.scalar(select(OAuthCode))).used_at is None
    async with http.post(f"{node.base}/oauth/token",
                         data={**fields, "client_secret": app[1]}) as answer:
        assert answer.status == 200
    assert await count(node, OAuthToken.id) == 1


async def test_the_metadata_no_longer_offers_unauthenticated_clients(node, http):
    async with http.get(f"{node.base}/.well-known/oauth-authorization-server") as answer:
        methods = (await answer.json())["token_endpoint_auth_methods_supported"]
    assert "none" not in methods


# --- tokens expire and can be revoked ------------------------------------------------------------

async def test_a_token_expires_after_the_configured_lifetime(node, http, app):
    await make_user(node, "ana")
    client_id, secret = app
    async with http.post(f"{node.base}/oauth/token", data={
            "grant_type": "password", "client_id": client_id, "client_secret": secret,
            "username": "ana", "password": PASSWORD}) as answer:
        entity = await answer.json()
    assert entity["expires_in"] == 90 * 24 * 3600  # the default FEDSPH_TOKEN_LIFETIME_DAYS
    token = entity["access_token"]
    assert (await verify(node, http, token))[0] == 200
    async with node.writers() as db, db.begin():
        await db.execute(update(OAuthToken).values(created_at=utcnow() - timedelta(days=91)))
    status, body = await verify(node, http, token)
    assert status == 401 and body == {"error": "The access token expired"}


async def test_a_revoked_token_is_refused(node, http, app):
    await make_user(node, "ana")
    token = await password_token(node, http, app)
    client_id, secret = app
    # Revoking needs the app's credentials: a stranger holding only the token cannot.
    async with http.post(f"{node.base}/oauth/revoke", data={"token": token,
                                                            "client_id": client_id}) as answer:
        assert answer.status == 401
    assert (await verify(node, http, token))[0] == 200
    async with http.post(f"{node.base}/oauth/revoke", data={
            "token": token, "client_id": client_id, "client_secret": secret}) as answer:
        assert answer.status == 200
    status, body = await verify(node, http, token)
    assert status == 401 and body == {"error": "The access token was revoked"}


async def test_a_read_only_token_cannot_post(node, http, app):
    await make_user(node, "ana")
    token = await password_token(node, http, app, scope="read")
    before = await count(node, Object.id)
    async with http.post(f"{node.base}/api/v1/statuses", json={"status": "sneaky"},
                         headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 403
        assert "error" in await answer.json()
    assert await count(node, Object.id) == before


async def test_the_password_grant_lets_the_member_in_while_others_guess_their_password(
        node, http, app):
    """Same limiter as the login form: guessers elsewhere slow only their own wrong answers."""
    await make_user(node, "ana")
    limiter = node.app[LIMITER]
    limiter.__init__(per_address=5, per_account=3, clock=lambda: 1000.0)
    for n in range(8):
        limiter.fail(f"192.0.2.{n}", "ana")
    client_id, secret = app
    grant = {"grant_type": "password", "client_id": client_id, "client_secret": secret,
             "username": "ana"}
    before = await count(node, OAuthToken.id)
    async with http.post(f"{node.base}/oauth/token", data={**grant, "password": "guess"}) as r:
        assert r.status == 429  # a wrong answer for a hot account costs this address a wait
    async with http.post(f"{node.base}/oauth/token", data={**grant, "password": PASSWORD}) as r:
        assert r.status == 429  # …so this address is now held, whatever it sends
    assert await count(node, OAuthToken.id) == before
    limiter.__init__(per_address=5, per_account=3, clock=lambda: 1000.0)
    for n in range(8):
        limiter.fail(f"192.0.2.{n}", "ana")
    async with http.post(f"{node.base}/oauth/token", data={**grant, "password": PASSWORD}) as r:
        assert r.status == 200  # the member, not held, gets in at once
    assert await count(node, OAuthToken.id) == before + 1


async def project_token(node, app, user, project) -> str:
    """A read/write token of `user` acting as `project`, as the consent page would issue it."""
    async with node.writers() as db, db.begin():
        registered = await db.scalar(select(OAuthApp).where(OAuthApp.client_id == app[0]))
        token, _ = await issue_token(db, registered, user.id, project.id, ["read", "write"])
    return token


async def test_a_token_stops_acting_as_a_project_its_user_may_no_longer_act_as(node, http, app):
    other = await node.create_actor("othercoop", "Group")
    admin = await make_user(node, "ana", admin=True)
    token = await project_token(node, app, admin, other)
    assert (await verify(node, http, token))[0] == 200
    async with node.writers() as db, db.begin():  # `fedsph admin revoke ana`
        await db.execute(update(User).where(User.id == admin.id).values(is_admin=False))
    before = await count(node, Object.id)
    status, body = await verify(node, http, token)
    assert status == 401 and body == {"error": "The access token is invalid"}
    async with http.post(f"{node.base}/api/v1/statuses", json={"status": "still the admin?"},
                         headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 401
    assert await count(node, Object.id) == before


async def test_a_token_stops_acting_as_a_project_its_member_left(node, http, app):
    project = await node.create_actor("coop", "Group")
    member = await make_user(node, "ana", project)
    token = await project_token(node, app, member, project)
    assert (await verify(node, http, token))[0] == 200
    async with node.writers() as db, db.begin():
        await db.execute(delete(Membership).where(Membership.user_id == member.id))
    before = await count(node, Object.id)
    assert (await verify(node, http, token))[0] == 401
    async with http.post(f"{node.base}/api/v1/statuses", json={"status": "gone"},
                         headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 401
    assert await count(node, Object.id) == before


def test_tokens_cannot_be_made_to_live_forever():
    for days in ("0", "-1", "3651"):
        with pytest.raises(ConfigError, match="FEDSPH_TOKEN_LIFETIME_DAYS"):
            load_settings(environ={"FEDSPH_TOKEN_LIFETIME_DAYS": days})
    assert load_settings(environ={"FEDSPH_TOKEN_LIFETIME_DAYS": "7"}).token_lifetime_days == 7


def test_cli_revokes_every_token_of_a_member(fedsph, tmp_path):
    assert fedsph("migrate")[0] == 0
    assert fedsph("user", "create", "ana")[0] == 0
    data, at = tmp_path / "data", datetime(2026, 1, 1)
    testdb.sql(data, "INSERT INTO oauth_apps (client_id, client_secret_hash, name, redirect_uris, "
               "scopes, created_at) VALUES ('c', 'h', 'app', 'urn:x', 'read', :at)", at=at)
    testdb.sql(data, "INSERT INTO oauth_tokens (token_hash, app_id, user_id, actor_id, scopes, "
               "created_at) SELECT 't', (SELECT id FROM oauth_apps), id, actor_id, 'read', :at "
               "FROM users", at=at)
    code, out = fedsph("token", "revoke", "ana")
    assert code == 0 and "revoked 1 token" in out
    assert testdb.sql(data, "SELECT revoked_at IS NOT NULL FROM oauth_tokens") == [(True,)]


# --- an app's website becomes a link: http(s) only ---------------------------------------------

@pytest.mark.parametrize("website", ["javascript:alert(1)", "JavaScript:alert(1)",
                                     " javascript:alert(1)", "java\tscript:alert(1)",
                                     "data:text/html,<script>alert(1)</script>",
                                     "//evil.example/", "https://evil.example/\\@x"])
async def test_an_app_with_a_website_that_is_not_http_is_refused(node, http, website):
    async with http.post(f"{node.base}/api/v1/apps", json={
            "client_name": "evil", "redirect_uris": REDIRECT, "website": website}) as answer:
        assert answer.status == 422
        assert await answer.json() == {"error": "Validation failed: Website is invalid"}
    assert await count(node, OAuthApp.id) == 0


async def test_an_app_website_that_is_http_is_kept(node, http, app):
    async with node.readers() as db:
        assert await db.scalar(select(OAuthApp.website)) == "https://app.example/"
