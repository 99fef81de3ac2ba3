"""TLS in front, tested (issue 14, item 4): Debian's Caddy, configured from the shipped
deploy/Caddyfile with its internal certificate authority, in front of two real nodes on two
loopback addresses on port 443, each run as deploy/'s systemd units run it (`serve --no-worker`
and a separate `fedsph worker`). The nodes trust Caddy's authority only through FEDSPH_CA_BUNDLE
and believe its X-Forwarded-For through FEDSPH_TRUSTED_PROXIES.

Over HTTPS end to end: WebFinger and the actor documents carry https ids; a follow (WebFinger,
a signed fetch of the actor, the Follow and its Accept delivered through the other's proxy); a
post delivered; a followers-only post that only a signed fetch from a follower's server gets; and
the client address fedsph logs is the visitor's, not the proxy's or a forged one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from mastodon import Mastodon

from tests.fakepeer import free_port
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support import testdb
from tests.support.caddy import Caddy, CountingUpstream, loopback_addresses, readme_lines

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
AS2 = "application/activity+json"
PUBLIC_POST = "Techo terminado en la manzana 4"
PRIVATE_POST = "Asamblea de socias el jueves, solo para quienes nos siguen"


class Site:
    """One node behind the proxy: its address, the node, and its separate worker process."""

    def __init__(self, address: str, node: NodeProcess):
        self.address, self.node = address, node
        self.base = f"https://{address}"
        self.worker: subprocess.Popen | None = None

    def start(self) -> None:
        self.node.start("--no-worker")
        with open(self.node.data_dir / "worker.log", "a") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "fedsph", "worker"],
                                           env=self.node.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        stop_process(self.worker)
        self.node.stop()

    def logs(self) -> str:
        worker = self.node.data_dir / "worker.log"
        return self.node.server_log() + (worker.read_text() if worker.exists() else "")


@pytest.fixture
def behind_caddy(tmp_path):
    first, second, third = loopback_addresses(3)
    a_node, b_node = NodeProcess(tmp_path / "a"), NodeProcess(tmp_path / "b")
    counting = CountingUpstream(free_port())
    caddy = Caddy(tmp_path / "caddy", {first: f"127.0.0.1:{a_node.port}",
                                       second: f"127.0.0.1:{b_node.port}",
                                       third: f"127.0.0.1:{counting.server.server_port}"})
    caddy.counting = (f"https://{third}", counting)
    sites = []
    try:
        caddy.start()
        for address, node in ((first, a_node), (second, b_node)):
            node.env.update({"FEDSPH_BASE_URL": f"https://{address}",
                             "FEDSPH_CA_BUNDLE": str(caddy.root_certificate),
                             "FEDSPH_TRUSTED_PROXIES": "127.0.0.1"})
            sites.append(Site(address, node))
        a, b = sites
        a.node.cli("migrate")
        a.node.cli("project", "create", "alpha", "--name", "Cooperativa Alfa")
        a.node.cli("user", "create", "ana", "--password-stdin", "--project", "alpha",
                   stdin=PASSWORD + "\n")
        b.node.cli("migrate")
        b.node.cli("project", "create", "beta", "--name", "Cooperativa Beta")
        b.node.cli("user", "create", "bea", "--password-stdin", stdin=PASSWORD + "\n")
        for site in sites:
            site.start()
        yield caddy, a, b
    finally:
        for site in sites:
            site.stop()
        caddy.stop()
        counting.stop()
    for site in sites:
        assert "Traceback" not in site.logs()


def _json(caddy: Caddy, url: str, accept: str = AS2) -> dict:
    status, _, body = caddy.request("GET", url, {"Accept": accept})
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def _items(caddy: Caddy, url: str) -> list:
    status, _, body = caddy.request("GET", url + "?page=1", {"Accept": AS2})
    return json.loads(body).get("orderedItems", []) if status == 200 else []


def _client(caddy: Caddy, site: Site, username: str) -> Mastodon:
    """A Mastodon app of `username` on `site`, over HTTPS, trusting Caddy's authority."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, wins over `verify`
    session.verify = str(caddy.root_certificate)
    client_id, client_secret = Mastodon.create_app("fedsph tls test", api_base_url=site.base,
                                                   session=session)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=site.base,
                   session=session)
    api.log_in(username, PASSWORD, scopes=["read", "write", "follow"])
    return api


def _post_status(caddy: Caddy, url: str, size: int) -> str:
    """The HTTP status of a POST of `size` bytes, or what curl said when none came."""
    done = subprocess.run(["curl", "-sS", "--cacert", str(caddy.root_certificate), "-o",
                           "/dev/null", "-w", "%{http_code}", "-H",
                           "Content-Type: application/activity+json", "--data-binary", "@-", url],
                          input=b"x" * size, capture_output=True, timeout=60, check=False)
    return done.stdout.decode() + done.stderr.decode()


def test_two_nodes_federate_over_https_through_caddy(behind_caddy):
    caddy, a, b = behind_caddy
    beta = f"{b.base}/actors/beta"

    # The README's two checks (Deploy, step 8), with B's name and project, and curl trusting
    # Caddy's authority: WebFinger and the actor document carry https ids on the public name.
    finger_line, actor_line = (
        line.replace("coop.example.org", b.address).replace("acct:coop@", "acct:beta@")
        .replace("/actors/coop", "/actors/beta")
        .replace("curl ", f"curl -sS --fail --cacert {caddy.root_certificate} ", 1)
        for line in readme_lines("curl "))
    finger = json.loads(subprocess.run(finger_line, shell=True, check=True, timeout=30,
                                       capture_output=True, text=True).stdout)
    assert finger["subject"] == f"acct:beta@{b.address}"
    assert {link["href"] for link in finger["links"] if link.get("rel") == "self"} == {beta}
    actor = json.loads(subprocess.run(actor_line, shell=True, check=True, timeout=30,
                                      capture_output=True, text=True).stdout)
    assert actor["id"] == beta and actor["inbox"] == f"{beta}/inbox"
    assert actor["publicKey"]["id"].startswith(f"{beta}#")
    assert actor["endpoints"]["sharedInbox"].startswith(f"{b.base}/")
    status, _, body = caddy.request("GET", f"{a.base}/api/v1/streaming/health")
    assert (status, body) == (200, "OK")
    instance = _json(caddy, f"{a.base}/api/v1/instance", accept="application/json")
    assert instance["urls"]["streaming_api"] == f"wss://{a.address}"

    # A body past the Caddyfile's limit: Caddy passes on no more than the limit, to an upstream
    # that reads everything (Debian's Caddy 2.6 then ends the exchange with a 502 or a reset
    # stream, not a 413); fedsph refuses an activity past its own limit (1 MiB), stores nothing.
    base, counting = caddy.counting
    assert not _post_status(caddy, f"{base}/", 46 * 1024 * 1024).startswith("2")
    wait_for(lambda: counting.received, what="the upstream to see the cut-off body")
    assert all(length <= 45 * 1024 * 1024 for length in counting.received), counting.received
    wait_for(lambda: "request body too large" in caddy.logged(), what="Caddy to log the cut-off")
    assert not _post_status(caddy, f"{a.base}/actors/alpha/inbox", 46 * 1024 * 1024).startswith("2")
    assert testdb.sql(a.node.data_dir, "SELECT count(*) FROM inbox_items") == [(0,)]

    # A followers-only post on B before anyone follows: not delivered to A, and not shown to
    # an unsigned fetch through the proxy.
    bea = _client(caddy, b, "bea")
    private = bea.status_post(PRIVATE_POST, visibility="private")
    assert private.uri.startswith(f"{b.base}/")
    status, _, body = caddy.request("GET", private.uri, {"Accept": AS2})
    assert status != 200 and PRIVATE_POST not in body

    # The follows: A's command line finds B over HTTPS (WebFinger, signed fetch of the actor),
    # A's worker delivers the Follow through B's proxy, B's worker fetches A's key through A's
    # proxy, and the Accept comes back the same way. Then ana, a member on A, follows bea from
    # a Mastodon app, over HTTPS too.
    assert "pending" in a.node.cli("follow", "alpha", f"beta@{b.address}").stdout
    wait_for(lambda: beta in _items(caddy, f"{a.base}/actors/alpha/following"), timeout=60,
             what="B to accept alpha's follow over HTTPS")
    assert f"{a.base}/actors/alpha" in _items(caddy, f"{beta}/followers")
    ana = _client(caddy, a, "ana")
    [bea_on_a] = ana.search_v2(f"bea@{b.address}", resolve=True).accounts
    ana.account_follow(bea_on_a.id)
    wait_for(lambda: ana.account_relationships(bea_on_a.id)[0].following, timeout=60,
             what="B to accept ana's follow of bea")

    # A post: B's worker delivers it to A through A's proxy.
    url = b.node.cli("post", "beta", "--text", PUBLIC_POST, "--lang", "es").stdout.strip()
    assert url.startswith(f"{b.base}/")
    wait_for(lambda: PUBLIC_POST in caddy.request("GET", f"{a.base}/", {"Accept": "text/html"})[2],
             timeout=60, what="beta's update to reach A over HTTPS")

    # A signed fetch: ana looks the followers-only post up from A; A fetches it signed, B checks
    # the signature (A's key, fetched over HTTPS) and serves it because ana follows bea.
    found = ana.search_v2(private.uri, resolve=True).statuses
    assert [status.uri for status in found] == [private.uri]
    assert PRIVATE_POST in found[0].content and found[0].visibility == "private"
    object_path = private.uri.removeprefix(b.base)
    assert any(f'"GET {object_path}" 200' in line and "fedsph/" in line
               for line in b.node.server_log().splitlines()), "no signed fetch reached B"

    # The visitor's address in the log is the one Caddy saw, not the proxy's nor a forged one.
    path = "/actors/alpha?tls-test=client-address"
    status, _, _ = caddy.request("GET", f"{a.base}{path}", {"X-Forwarded-For": "203.0.113.66"},
                                 source="127.0.0.9")
    assert status == 200
    [line] = wait_for(lambda: [line for line in a.node.server_log().splitlines()
                               if "tls-test=client-address" in line], what="the access log line")
    assert 'fedsph.access: 127.0.0.9 "GET ' in line and "203.0.113.66" not in line
