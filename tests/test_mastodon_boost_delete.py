"""Issue 13, items 3 and 4 end to end: a deleted post leaves every server where it was boosted,
and a boost is a status with an id of its own, across three real `fedsph serve` processes
driven by Mastodon.py.

A: ana, the author. B: bea, who boosts ana's post. C: cai, who follows bea (and not ana), and
so sees the post only as bea's boost. When ana deletes the post, A sends the Delete to bea
(a booster: A knows of the boost from its Announce), B withdraws bea's boost (Undo{Announce}
to her followers) and forwards ana's Delete, which carries ana's integrity proof, to them; on
C both the boost and the post go. Nothing is left on any of the three: no status by id, no
boost in a home timeline, no notification about it.
"""

from __future__ import annotations

import pytest
import requests
from mastodon import Mastodon, MastodonNotFoundError

from tests.mastodon_client import PASSWORD, logged_in, start_server, stop_server
from tests.mastodon_schema import mismatches, mismatches_of_list
from tests.processes import NodeProcess, wait_for

pytestmark = pytest.mark.e2e

POST = "Fiesta de techo el sábado en la cooperativa"
SCOPES = ["read", "write", "follow"]


@pytest.fixture
def nodes(tmp_path):
    made = []
    for name, user in (("a", "ana"), ("b", "bea"), ("c", "cai")):
        node = NodeProcess(tmp_path / name)
        node.cli("migrate")
        node.cli("user", "create", user, "--password-stdin", stdin=PASSWORD + "\n")
        made.append(node)
    try:
        for node in made:
            node.start()
        yield made
    finally:
        for node in made:
            node.stop()
    for node in made:
        assert "Traceback" not in node.server_log()


def client(node: NodeProcess, username: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app("fedsph tests", api_base_url=node.base,
                                                   scopes=SCOPES)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=node.base)
    api.log_in(username, PASSWORD, allow_http=True, scopes=SCOPES)
    return api


def raw(api: Mastodon, path: str):
    """The JSON as the server sent it (Mastodon.py turns dates into datetimes), for the schema."""
    answer = requests.get(api.api_base_url + path, timeout=10,
                          headers={"Authorization": f"Bearer {api.access_token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def gone(api: Mastodon, status_id) -> bool:
    try:
        api.status(status_id)
    except MastodonNotFoundError:
        return True
    return False


def boosts_in_home(api: Mastodon, uri: str) -> list:
    return [s for s in api.timeline_home(limit=40) if s.reblog and s.reblog.uri == uri]


def about(api: Mastodon, uri: str) -> list:
    """Notifications whose status is the post, or a boost of it."""
    return [n for n in api.notifications() if n.status and uri in (
        n.status.uri, (n.status.reblog or {}).get("uri"))]


def test_a_deleted_post_leaves_the_boosters_followers_too(nodes):
    a, b, c = nodes
    ana, bea, cai = client(a, "ana"), client(b, "bea"), client(c, "cai")

    # cai (C) follows bea (B).
    [bea_on_c] = cai.search_v2(f"bea@{b.domain}", resolve=True).accounts
    cai.account_follow(bea_on_c.id)
    wait_for(lambda: cai.account_relationships(bea_on_c.id)[0].following, timeout=30,
             what="B to accept cai's follow")

    # ana (A) posts; bea finds the post on B and boosts it.
    post = ana.status_post(POST)
    [post_on_b] = bea.search_v2(post.uri, resolve=True).statuses
    wrapper = bea.status_reblog(post_on_b.id)
    # Item 4: the wrapper is a status of its own, after the post in the id order.
    assert wrapper.id != post_on_b.id and wrapper.id > post_on_b.id
    assert wrapper.reblog.id == post_on_b.id
    assert mismatches(raw(bea, f"/api/v1/statuses/{wrapper.id}"), "Status") == []
    assert bea.status(wrapper.id).reblog.uri == post.uri
    assert bea.status(wrapper.id).id == wrapper.id and bea.status(post_on_b.id).reblog is None
    assert bea.timeline_home()[0].id == wrapper.id

    # cai sees the boost in home, with its own id, and can open it by that id.
    [boost_on_c] = wait_for(lambda: boosts_in_home(cai, post.uri), timeout=30,
                            what="bea's boost to reach C")
    assert boost_on_c.account.acct == f"bea@{b.domain}" and POST in boost_on_c.reblog.content
    assert boost_on_c.id != boost_on_c.reblog.id
    assert mismatches_of_list(raw(cai, "/api/v1/timelines/home"), "Status") == []
    assert cai.status(boost_on_c.id).reblog.id == boost_on_c.reblog.id
    # A counts the boost and tells ana: that is how A knows to tell B of the delete.
    wait_for(lambda: about(ana, post.uri), timeout=30, what="the reblog notification on A")

    # ana deletes the post.
    ana.status_delete(post.id)

    assert gone(ana, post.id)
    wait_for(lambda: gone(bea, post_on_b.id), timeout=30, what="the Delete to reach B")
    assert gone(bea, wrapper.id) and boosts_in_home(bea, post.uri) == []
    wait_for(lambda: boosts_in_home(cai, post.uri) == [], timeout=30,
             what="the boost to leave cai's home on C")
    wait_for(lambda: gone(cai, boost_on_c.reblog.id), timeout=30,
             what="the forwarded Delete to remove the post on C")
    assert gone(cai, boost_on_c.id)
    for api in (ana, bea, cai):
        # Not even one whose status is now null (ana's reblog notification went with the boost).
        assert [n.type for n in api.notifications() if n.type != "follow"] == []
        assert [s for s in api.timeline_home(limit=40)
                if post.uri in (s.uri, (s.reblog or {}).get("uri"))] == []


def test_a_boost_is_read_and_deleted_by_its_own_id(tmp_path):
    """Item 4 on one node, through Mastodon.py: the wrapper's id opens the wrapper, deletes the
    boost for its owner only, and pages home among posts: bea's own, and her boost of ana's
    (whom she does not follow: a followed account's post is in home already, not its boosts)."""
    server = start_server(tmp_path)
    try:
        ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
        old = ana.status_post("An old post")
        newer = bea.status_post("A newer post")
        boost = bea.status_reblog(old.id)
        assert boost.id > newer.id and boost.reblog.id == old.id
        assert [s.id for s in bea.timeline_home()] == [boost.id, newer.id]
        assert [s.id for s in bea.timeline_home(max_id=boost.id)] == [newer.id]
        assert [s.id for s in bea.timeline_home(min_id=newer.id)] == [boost.id]
        assert ana.status(boost.id).reblog.id == old.id  # anyone who may see the post
        with pytest.raises(MastodonNotFoundError):
            ana.status_delete(boost.id)  # not hers
        assert [a.username for a in ana.status_reblogged_by(old.id)] == ["bea"]
        deleted = bea.status_delete(boost.id)
        assert deleted.id == boost.id and deleted.reblog.id == old.id
        assert ana.status_reblogged_by(old.id) == [] and gone(bea, boost.id)
        assert not gone(bea, old.id) and [s.id for s in bea.timeline_home()] == [newer.id]
    finally:
        stop_server(server)
