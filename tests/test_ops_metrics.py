"""/healthz and /metrics on real `fedsph serve` processes (issue 14, item 6): real traffic (a
post, a follow from a fake peer), who may read the metrics, and label cardinality."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest

from fedsph.config import ConfigError, load_settings
from fedsph.federation.queue_health import KNOWN_STATUSES
from fedsph.web.metrics import may_read
from tests.fakepeer import AS, FakePeer
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support.ops import TOKEN
from tests.support.ops import mocked_request as _request

ALLOWED = "10.20.0.0/16"  # not loopback: from 127.0.0.1 only the token opens /metrics


def fetch(node: NodeProcess, path: str, method: str = "GET", **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(node.base + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(node: NodeProcess) -> str:
    status, _headers, body = fetch(node, "/metrics", Authorization=f"Bearer {TOKEN}")
    assert status == 200, body
    return body.decode()


def value(text: str, series: str) -> float | None:
    """The series' value; None when it is not there at all (not the same as 0)."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("fedsph_")}


@pytest.fixture
def node(tmp_path):
    node = NodeProcess(tmp_path / "node", FEDSPH_METRICS_TOKEN=TOKEN,
                       FEDSPH_METRICS_ALLOW=ALLOWED, FEDSPH_TRUSTED_PROXIES="127.0.0.2")
    node.cli("bootstrap")
    node.start()
    yield node
    node.stop()


async def follow_from_peer(node: NodeProcess) -> FakePeer:
    peer = await FakePeer().start()
    ana = peer.add_actor("ana")
    status, _ = await peer.post(ana, f"{node.base}/actors/demo/inbox", {
        "@context": AS, "id": peer.new_id(), "type": "Follow", "actor": ana.uri,
        "object": f"{node.base}/actors/demo"})
    assert status == 202
    return peer


async def test_health_and_metrics_after_real_traffic(node):
    text = scrape(node)
    for queue, statuses in KNOWN_STATUSES.items():  # every status there from the start, as 0
        for status in statuses:
            assert value(text, f'fedsph_{queue}{{status="{status}"}}') == 0, text
    status, headers, body = fetch(node, "/healthz")
    assert (status, body, headers["Cache-Control"]) == (200, b"ok\n", "no-store")
    assert fetch(node, "/healthz", method="HEAD")[0] == 200
    node.cli("post", "demo", "--text", "Open day on Saturday")
    peer = await follow_from_peer(node)
    try:  # the fake peer answers in this event loop: wait without blocking it
        for _ in range(300):
            text = await asyncio.to_thread(scrape, node)
            if value(text, 'fedsph_deliveries{status="sent"}'):
                break
            await asyncio.sleep(0.2)
        assert peer.activities("Accept")
    finally:
        await peer.stop()
    assert value(text, 'fedsph_inbox_items{status="done"}') == 1
    assert value(text, 'fedsph_inbox_items{status="pending"}') == 0
    assert value(text, "fedsph_inbox_most_overdue_seconds") == 0
    assert value(text, "fedsph_mail_most_overdue_seconds") is None  # no SMTP: no mail lag
    assert value(text, "fedsph_hosts_failing") == 0
    assert value(text, 'fedsph_http_requests_total{route_class="inbox",status="2xx"}') == 1
    assert value(text, 'fedsph_http_requests_total{route_class="health",status="2xx"}') == 2
    assert value(text, 'fedsph_http_request_duration_seconds_count{route_class="inbox"}') == 1
    # The probes' successes stay out of the access log; the scrapes are in it, minus the token.
    log = node.server_log()
    assert '"GET /healthz"' not in log and '"GET /metrics"' in log and TOKEN not in log


def test_metrics_refuse_strangers_with_the_answer_of_any_unknown_path(node):
    expected = fetch(node, f"/no-such-{uuid.uuid4().hex}")
    attempts = [
        {},  # nothing
        {"Authorization": "Bearer " + TOKEN[:-1]},  # nearly the token
        {"Authorization": "Bearer " + TOKEN + "x"},
        {"Authorization": "Basic " + TOKEN},
        {"Authorization": TOKEN},
        # An allowed address in X-Forwarded-For, from a peer that is no trusted proxy.
        {"X-Forwarded-For": "10.20.1.1"},
        {"X-Forwarded-For": "10.20.1.1, 127.0.0.2"},
    ]
    for headers in attempts:
        status, answer_headers, body = fetch(node, "/metrics", **headers)
        assert (status, body) == (expected[0], expected[2]), headers
        assert answer_headers["Content-Type"] == expected[1]["Content-Type"]
    assert fetch(node, f"/metrics?token={TOKEN}")[0] == 404
    for method in ("HEAD", "POST", "DELETE"):  # no 405 saying the path exists
        assert fetch(node, "/metrics", method=method)[0] == 404, method
    # Nothing was counted for the refused scrapes beyond their 404s.
    assert 'route_class="metrics",status="2xx"' not in scrape(node)


def test_random_paths_make_no_new_series(node):
    fetch(node, "/warm-up-unknown-path")
    scrape(node)  # so the scrapes' own series exist before
    before = series(scrape(node))
    for _ in range(1000):
        fetch(node, f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}?q={uuid.uuid4().hex}")
    after = scrape(node)
    assert series(after) == before
    assert value(after, 'fedsph_http_requests_total{route_class="unmatched",status="4xx"}') >= 1001


def test_metrics_are_off_unless_configured(tmp_path):
    node = NodeProcess(tmp_path / "plain")
    node.cli("bootstrap")
    node.start()
    try:
        assert fetch(node, "/metrics", Authorization=f"Bearer {TOKEN}")[0] == 404
        assert fetch(node, "/healthz")[0] == 200
        assert not (node.data_dir / "prometheus-multiproc").exists()
    finally:
        node.stop()


def test_allowed_addresses_behind_a_trusted_proxy():
    proxied = {"metrics_allow": "10.0.0.0/8", "trusted_proxies": "192.0.2.1"}
    assert may_read(_request("192.0.2.1", "10.1.2.3", **proxied))
    assert not may_read(_request("192.0.2.1", "203.0.113.9", **proxied))
    # Written by the client left of a stranger: the stranger is the client.
    assert not may_read(_request("192.0.2.1", "10.1.2.3, 203.0.113.9", **proxied))
    assert not may_read(_request("198.51.100.1", "10.1.2.3", **proxied))  # not a trusted proxy
    assert may_read(_request("10.9.9.9", None, **proxied))


def test_requests_of_several_processes_are_counted_together(tmp_path):
    """`serve --processes 2` and a separate worker: whichever process a scrape reaches, it
    reports the requests all of them answered."""
    node = NodeProcess(tmp_path / "group", FEDSPH_METRICS_TOKEN=TOKEN)
    node.cli("bootstrap")
    with open(node.log, "a") as log:
        group = subprocess.Popen([sys.executable, "-m", "fedsph", "serve", "--processes", "2",
                                  "--no-worker"], env=node.env, stdout=log, stderr=subprocess.STDOUT)
        worker = subprocess.Popen([sys.executable, "-m", "fedsph", "worker"], env=node.env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: node.get("/healthz")[0] == 200, timeout=90, what="the group to start")
        # Both processes listening (the second may start later on a busy machine): each has
        # answered a health check once its counts file is there.
        wait_for(lambda: node.get("/healthz")[0] == 200 and len(_pids(node)) == 2, timeout=90,
                 what="both processes to answer")
        for _ in range(40):
            assert node.get("/actors/demo")[0] == 200
        for _ in range(8):
            text = scrape(node)
            assert value(text, 'fedsph_http_requests_total{route_class="activitypub",'
                               'status="2xx"}') == 40
        assert len(_pids(node)) == 2  # one file per server process, none from the worker
    finally:
        stop_process(group)
        stop_process(worker)


def _pids(node: NodeProcess) -> set[str]:
    return {path.name.rsplit("_", 1)[1]  # not the .lock the group's parent holds
            for path in (node.data_dir / "prometheus-multiproc").iterdir()
            if path.name.endswith(".db")}


@pytest.mark.parametrize(("settings", "message"), [
    ({"FEDSPH_METRICS_ALLOW": "10.0.0.0/33"}, "FEDSPH_METRICS_ALLOW"),
    ({"FEDSPH_METRICS_TOKEN": "short"}, "at least 16"),
    ({"FEDSPH_METRICS_TOKEN": "a token with spaces in it"}, "without spaces")])
def test_bad_metrics_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(settings)
