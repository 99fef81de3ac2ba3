"""Account management (issue 14, item 2) through real processes: `fedsph user …` and `fedsph
project delete` run as commands beside a running `fedsph serve`, and what they change counts
there at the very next request: a Mastodon.py client's token and a browser's session of a
disabled member stop at once. A project deleted on one node is gone from a second node that
followed it. Every command of the README's "Accounts" section is run here."""

from __future__ import annotations

import json
import re

import pytest
import requests
from mastodon import Mastodon
from mastodon.errors import MastodonIllegalArgumentError, MastodonUnauthorizedError

from tests.mastodon_client import PASSWORD, logged_in, start_server, stop_server
from tests.processes import NodeProcess, wait_for
from tests.support import testdb

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "una clave nueva y larga"


def _browser(server: NodeProcess, username: str, password: str = PASSWORD):
    """A logged-in browser session, and the status the login answered."""
    session = requests.Session()
    page = session.get(f"{server.base}/login", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = session.post(f"{server.base}/login", allow_redirects=False, timeout=10, data={
        "csrf": csrf, "next": "/", "username": username, "password": password})
    return session, answer


def _manage(session: requests.Session, server: NodeProcess) -> int:
    return session.get(f"{server.base}/actors/casa/manage", allow_redirects=False,
                       timeout=10).status_code


def _users(server: NodeProcess) -> list[tuple]:
    return testdb.sql(server.data_dir, "SELECT username, password_hash, disabled_at IS NOT NULL "
                                       "FROM users ORDER BY username")


def test_disable_enable_password_list_delete_from_the_command_line(tmp_path):
    server = start_server(tmp_path / "node")  # casa, with ana as its member; bea on her own
    try:
        api = logged_in(server, "ana")
        assert api.me()["username"] == "ana"
        web, answer = _browser(server, "ana")
        assert answer.status_code == 303 and _manage(web, server) == 200

        listed = server.cli("user", "list").stdout
        assert re.search(r"^ana\t-\tactive\tcasa\t\d{4}-\d\d-\d\d", listed, re.MULTILINE), listed
        assert re.search(r"^bea\t-\tactive\t-\t", listed, re.MULTILINE), listed

        # Disabled in another process: the token and the session stop at the next request.
        server.cli("user", "disable", "ana")
        with pytest.raises(MastodonUnauthorizedError):
            api.me()
        assert _manage(web, server) == 303
        assert _grant_error(server, "ana", PASSWORD) == "This account is disabled."
        assert _browser(server, "ana")[1].status_code == 403
        # A wrong password gets the answer any wrong password gets: no hint that it exists.
        assert _browser(server, "ana", "not her password")[1].status_code == 401
        assert _grant_error(server, "ana", "not her password") == \
            _grant_error(server, "nadie", "not her password") == \
            "The username or password is wrong."
        assert "\tdisabled\t" in server.cli("user", "list").stdout

        server.cli("user", "enable", "ana")
        with pytest.raises(MastodonUnauthorizedError):
            api.me()  # enabling gives back the login, not the revoked tokens
        api = logged_in(server, "ana")
        web, _ = _browser(server, "ana")
        assert api.me()["username"] == "ana" and _manage(web, server) == 200

        # A new password from standard input: every session and token of hers ends.
        before = _users(server)
        for bad, said in (("corta\n", "at least 8 characters"), ("", "at least 8 characters")):
            refused = server.cli("user", "password", "ana", stdin=bad, check=False)
            assert refused.returncode == 1 and said in refused.stderr, refused.stderr
        missing = server.cli("user", "disable", "nadie", check=False)
        assert missing.returncode == 1 and "no user called 'nadie'" in missing.stderr
        assert _users(server) == before
        out = server.cli("user", "password", "ana", stdin=NEW_PASSWORD + "\n").stdout
        assert "1 app token(s) revoked" in out
        with pytest.raises(MastodonUnauthorizedError):
            api.me()
        assert _manage(web, server) == 303
        with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
            logged_in(server, "ana")
        assert server_api_login(server, "ana", NEW_PASSWORD).me()["username"] == "ana"

        # Deleting: refused while ana is casa's only member, and without --yes off a terminal.
        before = (_users(server), server.get("/actors/casa")[0])
        alone = server.cli("user", "delete", "ana", "--yes", check=False)
        assert alone.returncode == 1 and "only member of casa" in alone.stderr
        unasked = server.cli("user", "delete", "bea", check=False)
        assert unasked.returncode == 1 and "add --yes" in unasked.stderr
        assert (_users(server), server.get("/actors/casa")[0]) == before == (before[0], 200)

        server.cli("user", "delete", "bea", "--yes")
        taken = server.cli("user", "create", "bea", "--password-stdin", stdin=PASSWORD + "\n",
                           check=False)
        assert taken.returncode == 1 and "already taken" in taken.stderr
        server.cli("admin", "grant", "ana")
        # The last admin who can log in is not deleted: nobody could run the node's accounts.
        before = _users(server)
        last = server.cli("user", "delete", "ana", "--with-projects", "--yes", check=False)
        assert last.returncode == 1 and "only admin" in last.stderr, last.stderr
        assert _users(server) == before and server.get("/actors/casa")[0] == 200
        server.cli("user", "create", "root", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
        server.cli("user", "delete", "ana", "--with-projects", "--yes")
        assert [row[0] for row in _users(server)] == ["root"]
        with pytest.raises(MastodonIllegalArgumentError):
            server_api_login(server, "ana", NEW_PASSWORD)
        # The serve process may show its cached actor document for FEDSPH_DOCUMENT_CACHE_SECONDS.
        wait_for(lambda: server.get("/actors/casa")[0] == 410, timeout=45,
                 what="the deleted project to answer 410")
        assert json.loads(server.get("/actors/ana")[1])["type"] == "Tombstone"
    finally:
        stop_server(server)


def server_api_login(server: NodeProcess, username: str, password: str):
    client_id, client_secret = Mastodon.create_app("accounts", api_base_url=server.base)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    api.log_in(username, password, allow_http=True, scopes=["read"])
    return api


def _grant_error(server: NodeProcess, username: str, password: str) -> str:
    """The error_description of a password grant (Mastodon.py keeps only the error code)."""
    client_id, client_secret = Mastodon.create_app("accounts", api_base_url=server.base)
    answer = requests.post(f"{server.base}/oauth/token", timeout=10, data={
        "grant_type": "password", "client_id": client_id, "client_secret": client_secret,
        "username": username, "password": password, "scope": "read"})
    assert answer.status_code == 400
    return answer.json()["error_description"]


def test_a_deleted_project_is_gone_from_the_node_that_followed_it(tmp_path):
    a, b = NodeProcess(tmp_path / "a"), NodeProcess(tmp_path / "b")
    a.cli("migrate")
    a.cli("project", "create", "casa", "--name", "Casa Común")
    b.cli("migrate")
    b.cli("project", "create", "beta", "--name", "Beta")
    for node in (a, b):
        node.start()
    try:
        casa = f"{a.base}/actors/casa"
        b.cli("follow", "beta", f"casa@{a.domain}")
        wait_for(lambda: casa in _following(b), what="A to accept B's follow")
        a.cli("post", "casa", "--text", "Primera piedra")
        wait_for(lambda: "Primera piedra" in b.html(), what="the post to reach B")

        unasked = a.cli("project", "delete", "casa", check=False)
        assert unasked.returncode == 1 and "add --yes" in unasked.stderr
        assert a.get("/actors/casa")[0] == 200
        out = a.cli("project", "delete", "casa", "--yes").stdout
        assert "Delete queued to 1 inbox(es)" in out
        wait_for(lambda: casa not in _following(b), timeout=60,
                 what="B to act on the Delete of casa")
        assert testdb.sql(b.data_dir, "SELECT count(*) FROM actors WHERE uri = :uri",
                          uri=casa) == [(0,)]
        assert "Primera piedra" not in b.html()
        assert testdb.sql(a.data_dir, "SELECT status FROM deliveries") == [("sent",)]
        wait_for(lambda: a.get("/actors/casa")[0] == 410, timeout=45,
                 what="casa's URL to answer 410")
        finger = a.get(f"/.well-known/webfinger?resource=acct:casa@{a.domain}")
        assert finger[0] == 410
        again = a.cli("project", "create", "casa", "--name", "Otra Casa", check=False)
        assert again.returncode == 1 and "already taken" in again.stderr
    finally:
        for node in (a, b):
            node.stop()
    assert "Traceback" not in a.server_log() + b.server_log()


def _following(node: NodeProcess) -> list:
    status, body = node.get("/actors/beta/following?page=1")
    return json.loads(body).get("orderedItems", []) if status == 200 else []
