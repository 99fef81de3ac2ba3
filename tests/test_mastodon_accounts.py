"""Mastodon client API for accounts across two real `fedsph serve` processes, through Mastodon.py.

Node A holds project alpha, node B project beta; the member `ana` on each node gets tokens acting
as the project, or (on B) as her own Person (authorization-code flow). Covers search with
resolve, follow and unfollow across nodes and locally, relationships, followers/following with
Link pagination, follow requests once beta is locked, and update_credentials reaching the AS2
actor document and, through Update, the other node.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError

from tests.processes import NodeProcess, wait_for
from tests.support.members import PASSWORD, REDIRECT, login_and_consent

pytestmark = pytest.mark.e2e


def _node(tmp_path_factory, name: str, project: str) -> NodeProcess:
    node = NodeProcess(tmp_path_factory.mktemp(f"mastodon-{name}"))
    node.cli("migrate")
    node.cli("project", "create", project, "--name", project.title())
    node.cli("user", "create", "ana", "--password-stdin", "--project", project,
             stdin=PASSWORD + "\n")
    node.start()
    return node


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    a = _node(tmp_path_factory, "a", "alpha")
    b = _node(tmp_path_factory, "b", "beta")
    yield a, b
    for node in (a, b):
        node.stop()
        assert "Traceback" not in node.server_log()


def acting_as(node: NodeProcess, account: str) -> Mastodon:
    """A Mastodon.py client whose token acts as `account` (chosen on the consent page)."""
    client_id, client_secret = Mastodon.create_app(
        "fedsph tests", api_base_url=node.base, redirect_uris=[REDIRECT])
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=node.base)
    location = login_and_consent(node, api.auth_request_url(redirect_uris=REDIRECT,
                                                              allow_http=True), account)
    api.log_in(code=parse_qs(urlsplit(location).query)["code"][0], redirect_uri=REDIRECT,
               allow_http=True)
    assert api.account_verify_credentials().username == account
    return api


@pytest.fixture(scope="module")
def clients(nodes):
    a, b = nodes
    return acting_as(a, "alpha"), acting_as(b, "beta"), acting_as(b, "ana")


def _relation(api: Mastodon, account_id):
    [relation] = api.account_relationships([account_id])
    return relation


def test_search_resolves_and_follow_is_accepted(nodes, clients):
    a, b = nodes
    alpha, beta, _ = clients
    # Unknown on A until resolved through WebFinger.
    assert alpha.search_v2(f"beta@{b.domain}", resolve=False).accounts == []
    [found] = alpha.search_v2(f"@beta@{b.domain}", resolve=True).accounts
    assert found.acct == f"beta@{b.domain}" and found.url == f"{b.base}/actors/beta"
    assert alpha.search_v2(f"{b.base}/actors/beta", resolve=False).accounts[0].id == found.id
    unauthenticated = requests.get(f"{a.base}/api/v2/search", timeout=10,
                                   params={"q": f"ana@{b.domain}", "resolve": "true"})
    assert unauthenticated.status_code == 401 and "error" in unauthenticated.json()

    relation = alpha.account_follow(found.id)
    assert relation.requested or relation.following
    wait_for(lambda: _relation(alpha, found.id).following, what="B to accept alpha's follow")
    assert [acc.username for acc in alpha.account_following(
        alpha.account_verify_credentials().id)] == ["beta"]

    # B's side, through B's API: alpha is one of beta's followers.
    me = beta.account_verify_credentials()
    [follower] = beta.account_followers(me.id)
    assert follower.acct == f"alpha@{a.domain}"
    assert _relation(beta, follower.id).followed_by is True


def test_local_search_local_follow_and_paginated_followers(nodes, clients):
    _, b = nodes
    _, beta, ana = clients
    [beta_on_b] = ana.search_v2("bet", resolve=False).accounts
    assert beta_on_b.acct == "beta"
    ana.account_follow(beta_on_b.id)
    wait_for(lambda: _relation(ana, beta_on_b.id).following, what="beta to accept ana")

    first = ana.account_followers(beta_on_b.id, limit=1)
    assert [acc.username for acc in first] == ["ana"]  # newest follower first
    link = requests.get(f"{b.base}/api/v1/accounts/{beta_on_b.id}/followers",
                        params={"limit": 1}, timeout=10).headers["Link"]
    assert 'rel="next"' in link and 'rel="prev"' in link and "limit=1" in link
    second = ana.fetch_next(first)
    assert [acc.username for acc in second] == ["alpha"]
    assert not ana.fetch_next(second)
    assert [acc.username for acc in ana.fetch_previous(second)] == ["ana"]

    # A local unfollow reaches beta at once.
    assert ana.account_unfollow(beta_on_b.id).following is False
    assert [acc.username for acc in beta.account_followers(beta_on_b.id)] == ["alpha"]


def test_locked_project_answers_follow_requests(nodes, clients):
    a, b = nodes
    alpha, beta, _ = clients
    me = beta.account_update_credentials(locked=True, note="A garden.\n\nOpen on Sundays.")
    assert me.locked is True and me.source.note == "A garden.\n\nOpen on Sundays."
    status, body = b.get("/actors/beta")
    document = json.loads(body)
    assert status == 200 and document["manuallyApprovesFollowers"] is True
    assert document["summary"] == "<p>A garden.</p><p>Open on Sundays.</p>"

    # alpha follows again, now that beta approves its followers.
    [target] = alpha.search_v2(f"beta@{b.domain}").accounts
    wait_for(lambda: alpha.account(target.id).locked, what="the profile Update to reach A")
    assert alpha.account_unfollow(target.id).following is False
    wait_for(lambda: not beta.account_followers(me.id), what="the Undo to reach B")
    assert alpha.account_follow(target.id).requested is True
    pending = wait_for(lambda: beta.follow_requests(), what="the request to reach B")
    assert [acc.acct for acc in pending] == [f"alpha@{a.domain}"]
    assert beta.account_verify_credentials().source.follow_requests_count == 1

    relation = beta.follow_request_authorize(pending[0].id)
    assert relation.followed_by is True and relation.requested_by is False
    assert beta.follow_requests() == []
    wait_for(lambda: _relation(alpha, target.id).following, what="the Accept to reach A")
    with pytest.raises(MastodonAPIError):
        beta.follow_request_reject(pending[0].id)  # nothing pending any more

    renamed = beta.account_update_credentials(display_name="Beta Garden")
    assert renamed.display_name == "Beta Garden"
    wait_for(lambda: alpha.account(target.id).display_name == "Beta Garden",
             what="the new name to reach A")
