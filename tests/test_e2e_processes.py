"""End to end between two real `fedsph serve` processes on loopback, with the CLI.

Project A follows project B; B posts, edits and deletes an update and A shows each step; an
update posted while A is down (SIGKILL) arrives after A restarts; A unfollows.
"""

import json

import pytest

from tests.processes import NodeProcess, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def nodes(tmp_path):
    a, b = NodeProcess(tmp_path / "a"), NodeProcess(tmp_path / "b")
    for node, slug in ((a, "alpha"), (b, "beta")):
        node.cli("migrate")
        node.cli("project", "create", slug, "--name", f"Project {slug.title()}")
        node.start()
    yield a, b
    for node in (a, b):
        node.stop()


def collection_items(node: NodeProcess, path: str) -> list:
    status, body = node.get(path + "?page=1")
    return json.loads(body)["orderedItems"] if status == 200 else []


def test_follow_post_edit_delete_unfollow(nodes):
    a, b = nodes
    beta_uri, alpha_uri = f"{b.base}/actors/beta", f"{a.base}/actors/alpha"

    out = a.cli("follow", "alpha", f"beta@{b.domain}").stdout
    assert "pending" in out
    wait_for(lambda: beta_uri in collection_items(a, "/actors/alpha/following"),
             what="B to accept A's follow")
    assert alpha_uri in collection_items(b, "/actors/beta/followers")

    url = b.cli("post", "beta", "--text", "Primera piedra colocada", "--lang", "es").stdout.strip()
    wait_for(lambda: "Primera piedra colocada" in a.html(), what="the update to reach A")

    b.cli("edit", "beta", url, "--text", "Primera piedra colocada con la vecindad")
    wait_for(lambda: "con la vecindad" in a.html(), what="the edit to reach A")

    b.cli("delete", "beta", url)
    wait_for(lambda: "Primera piedra" not in a.html(), what="the delete to reach A")
    assert b.get(url.removeprefix(b.base))[0] == 410

    # A goes down hard; B publishes meanwhile; nothing is lost once A is back.
    a.kill()
    b.cli("post", "beta", "--text", "Update while alpha was offline")
    wait_for(lambda: "deliveries: " in (q := b.cli("queue").stdout) and "pending" in q,
             what="B's delivery to fail and wait for a retry")
    a.start()
    wait_for(lambda: "Update while alpha was offline" in a.html(), timeout=60,
             what="the queued update to arrive after A restarted")

    a.cli("unfollow", "alpha", f"beta@{b.domain}")
    wait_for(lambda: alpha_uri not in collection_items(b, "/actors/beta/followers"),
             what="B to process the Undo")
    assert beta_uri not in collection_items(a, "/actors/alpha/following")
    assert "Traceback" not in a.server_log() + b.server_log()
