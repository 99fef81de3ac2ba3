"""The Mastodon client API, driven by the real Mastodon.py client against a `fedsph serve` process.

Covers app registration, the password grant, the authorization-code flow through the login and
consent pages (choosing a project as the acting account, with PKCE checked separately), the
client_credentials grant, revoke, instance v1/v2, accounts, error shape and CORS.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonIllegalArgumentError,
    MastodonUnauthorizedError,
)

from tests.processes import NodeProcess
from tests.support.members import PASSWORD, REDIRECT, login_and_consent

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = NodeProcess(tmp_path_factory.mktemp("mastodon-api"))
    node.cli("migrate")
    node.cli("project", "create", "casa", "--name", "Casa Común")
    node.cli("project", "set", "casa", "stage", "living")
    node.cli("user", "create", "ana", "--password-stdin", "--project", "casa", stdin=PASSWORD + "\n")
    node.start()
    yield node
    node.stop()
    assert "Traceback" not in node.server_log()


@pytest.fixture(scope="module")
def app_credentials(node):
    return Mastodon.create_app("fedsph tests", api_base_url=node.base,
                               redirect_uris=["urn:ietf:wg:oauth:2.0:oob", REDIRECT])


def client(node, credentials, **kwargs) -> Mastodon:
    client_id, client_secret = credentials
    return Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=node.base,
                    **kwargs)


def test_password_grant_and_verify_credentials(node, app_credentials):
    api = client(node, app_credentials)
    token = api.log_in("ana", PASSWORD, allow_http=True)  # default scopes, push included
    assert token
    me = api.account_verify_credentials()
    assert me.username == "ana" and me.acct == "ana" and me.group is False
    assert me.source.privacy == "public"
    assert me.avatar.startswith(node.base) and requests.get(me.avatar, timeout=10).ok

    app = api.app_verify_credentials()
    assert app.name == "fedsph tests"
    assert "client_secret" not in app

    with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
        client(node, app_credentials).log_in("ana", "wrong password", allow_http=True)


def test_authorization_code_flow_acts_as_the_chosen_project(node, app_credentials):
    api = client(node, app_credentials)
    url = api.auth_request_url(redirect_uris=REDIRECT, state="xyz", allow_http=True)
    location = login_and_consent(node, url, "casa")
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["xyz"]
    api.log_in(code=query["code"][0], redirect_uri=REDIRECT, allow_http=True)
    me = api.account_verify_credentials()
    assert me.username == "casa" and me.display_name == "Casa Común"
    assert me.group is True and me.bot is False
    assert me.fields and all({"name", "value"} <= set(f) for f in me.fields)

    # A code is used once.
    with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
        client(node, app_credentials).log_in(code=query["code"][0], redirect_uri=REDIRECT,
                                             allow_http=True)


def test_pkce_is_checked(node, app_credentials):
    client_id, client_secret = app_credentials
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
    url = (f"{node.base}/oauth/authorize?response_type=code&client_id={client_id}"
           f"&redirect_uri={REDIRECT}&scope=read&code_challenge={challenge.rstrip('=')}"
           "&code_challenge_method=S256")

    def exchange(code: str, code_verifier: str, secret: str | None = client_secret):
        # PKCE comes in addition to the secret: every app registered here has one.
        return requests.post(node.base + "/oauth/token", timeout=10, data={
            "grant_type": "authorization_code", "code": code, "client_id": client_id,
            "redirect_uri": REDIRECT, "code_verifier": code_verifier,
            **({"client_secret": secret} if secret else {})})

    code = parse_qs(urlsplit(login_and_consent(node, url, "ana")).query)["code"][0]
    assert exchange(code, verifier, secret=None).status_code == 401
    refused = exchange(code, "w" * 50)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    granted = exchange(code, verifier)
    assert granted.status_code == 200, granted.text
    assert granted.json()["token_type"] == "Bearer" and granted.json()["scope"] == "read"


def test_client_credentials_and_revoke(node, app_credentials):
    client_id, client_secret = app_credentials
    answer = requests.post(node.base + "/oauth/token", timeout=10, json={
        "grant_type": "client_credentials", "client_id": client_id,
        "client_secret": client_secret, "scope": "read"})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(node.base + "/api/v1/apps/verify_credentials", headers=headers,
                        timeout=10).json()["name"] == "fedsph tests"
    no_user = requests.get(node.base + "/api/v1/accounts/verify_credentials", headers=headers,
                           timeout=10)
    assert no_user.status_code == 422 and "error" in no_user.json()

    assert requests.post(node.base + "/oauth/revoke", timeout=10, data={
        "token": token, "client_id": client_id, "client_secret": client_secret}).status_code == 200
    gone = requests.get(node.base + "/api/v1/apps/verify_credentials", headers=headers,
                        timeout=10)
    assert gone.status_code == 401


def test_instance_v1_and_v2(node):
    api = Mastodon(api_base_url=node.base, version_check_mode="created")
    # Mastodon.py parsed "4.2.0 (compatible; fedsph 0.1)" as a Mastodon version.
    assert api.retrieve_mastodon_version() == "4.2.0"
    v1 = api.instance_v1()
    assert v1.version.startswith("4.2.0 (compatible; fedsph ")
    assert v1.registrations is False and v1.languages == ["en", "es", "fr", "pt"]
    v2 = api.instance_v2()
    assert v2.domain == node.domain
    statuses = v2.configuration.statuses
    assert statuses.max_characters == 5000 and statuses.max_media_attachments == 4
    assert "image/webp" in v2.configuration.media_attachments.supported_mime_types
    assert v2.registrations.enabled is False
    # Issue 13: no api_versions (Mastodon added it in 4.3; a 4.2 server has none), and a
    # streaming URL that apps can open (tests/test_streaming.py).
    assert v2.api_versions is None and api.mastodon_api_version == 0
    assert v2.configuration.urls.streaming == "ws" + node.base[len("http"):]
    assert v1.urls.streaming_api == v2.configuration.urls.streaming
    assert api.instance_peers() == []
    assert api.custom_emojis() == []
    info = api.oauth_authorization_server_info()
    assert "authorization_code" in info.grant_types_supported
    assert "S256" in info.code_challenge_methods_supported


def test_accounts_lookup_and_relationships(node, app_credentials):
    api = client(node, app_credentials)
    api.log_in("ana", PASSWORD, allow_http=True)
    casa = api.account_lookup("casa")
    assert casa.group is True and casa.acct == "casa"
    assert casa.url == f"{node.base}/actors/casa"
    assert api.account_lookup(f"casa@{node.domain}").id == casa.id
    assert api.account(casa.id).username == "casa"
    [relation] = api.account_relationships([casa.id])
    assert relation.id == casa.id and relation.following is False
    with pytest.raises(MastodonAPIError):
        api.account_lookup("nobody")
    # Trailing slashes are tolerated, as on Mastodon.
    assert requests.get(f"{node.base}/api/v1/accounts/{casa.id}/", timeout=10).ok


def test_bad_token_error_shape_and_cors(node):
    answer = requests.get(node.base + "/api/v1/accounts/verify_credentials", timeout=10,
                          headers={"Authorization": "Bearer not-a-token",
                                   "Origin": "https://elk.example"})
    assert answer.status_code == 401
    assert answer.json() == {"error": "The access token is invalid"}
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    with pytest.raises(MastodonUnauthorizedError):
        Mastodon(access_token="not-a-token", api_base_url=node.base).account_verify_credentials()

    missing = requests.get(node.base + "/api/v1/accounts/999999", timeout=10)
    assert missing.status_code == 404 and missing.json() == {"error": "Record not found"}

    preflight = requests.options(node.base + "/oauth/token", timeout=10, headers={
        "Origin": "https://elk.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()

    # Registering an app is a cross-site POST without the site's CSRF form token: it is allowed.
    registered = requests.post(node.base + "/api/v1/apps", timeout=10, json={
        "client_name": "Elk", "redirect_uris": ["https://elk.example/cb"], "scopes": "read write"})
    assert registered.status_code == 200 and registered.json()["scopes"] == ["read", "write"]
    blank = requests.post(node.base + "/api/v1/apps", data={"redirect_uris": REDIRECT},
                          timeout=10)
    assert blank.status_code == 422 and "error" in blank.json()
