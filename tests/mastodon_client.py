"""A real `fedsph serve` with a project (casa) and two members (ana in casa, bea on her own), and
Mastodon.py clients logged in with the password grant or the authorization-code flow: what the
client-API tests share."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import requests
from mastodon import Mastodon

from tests.processes import NodeProcess

PASSWORD = "correct horse battery"
OOB = "urn:ietf:wg:oauth:2.0:oob"


def start_server(data_dir) -> NodeProcess:
    server = NodeProcess(data_dir)
    server.cli("migrate")
    server.cli("project", "create", "casa", "--name", "Casa Común")
    server.cli("user", "create", "ana", "--password-stdin", "--project", "casa",
               stdin=PASSWORD + "\n")
    server.cli("user", "create", "bea", "--password-stdin", stdin=PASSWORD + "\n")
    server.start()
    return server


def stop_server(server: NodeProcess) -> None:
    server.stop()
    assert "Traceback" not in server.server_log()


def logged_in(server: NodeProcess, username: str, app_name: str = "fedsph tests") -> Mastodon:
    client_id, client_secret = Mastodon.create_app(app_name, api_base_url=server.base)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    api.log_in(username, PASSWORD, allow_http=True, scopes=["read", "write", "follow"])
    return api


def authorized(server: NodeProcess, username: str, account: str | None = None,
               redirect_uri: str = OOB, app: tuple[str, str] | None = None) -> Mastodon:
    """A client logged in with the authorization-code flow, as apps do it: log in on the site,
    pick `account` (a project the member may act as, or her own) on the consent page, and
    read the code from the page (out-of-band) or from the redirect to `redirect_uri`.
    `app` is the (client_id, client_secret) of an app registered before; else one is."""
    scopes = ["read", "write", "follow"]
    client_id, client_secret = app or Mastodon.create_app(
        "fedsph tests", api_base_url=server.base, scopes=scopes, redirect_uris=redirect_uri)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    url = api.auth_request_url(redirect_uris=redirect_uri, scopes=scopes, state="xyz",
                               allow_http=True)
    browser = requests.Session()
    login = browser.get(f"{server.base}/login", timeout=10).text
    answer = browser.post(f"{server.base}/login", timeout=10, allow_redirects=False, data={
        "csrf": _field(login, "csrf"), "next": "/", "username": username, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    consent = browser.get(url, timeout=10)
    assert consent.status_code == 200, consent.text
    choice = re.search(rf'value="(\d+)"[^>]*>\s*<label[^>]*>[^<]*<span class="handle">'
                       rf'@{re.escape(account or username)}</span>', consent.text)
    assert choice, f"{account or username} is not offered on the consent page"
    form = {name: _field(consent.text, name) for name in (
        "csrf", "client_id", "redirect_uri", "scope", "state", "response_type",
        "code_challenge", "code_challenge_method")}
    answer = browser.post(f"{server.base}/oauth/authorize", timeout=10, allow_redirects=False,
                          data={**form, "account": choice.group(1), "decision": "allow"})
    if redirect_uri == OOB:
        assert answer.status_code == 200, answer.text
        code = re.search(r'id="code" readonly value="([^"]+)"', answer.text).group(1)
    else:
        assert answer.status_code == 302, answer.text
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query["state"] == ["xyz"]
        code = query["code"][0]
    api.log_in(code=code, redirect_uri=redirect_uri, scopes=scopes, allow_http=True)
    return api


def _field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no field {name} in the form"
    return unescape(match.group(1))
