"""`fedsph doctor` on a healthy node (exit 0) and on broken ones, each with its line and exit code
(issue 14, item 5). The doctor runs as a real `fedsph` process; the node, fake servers and
peers are real HTTP servers on loopback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from fedsph.admin.doctor_checks import check_configuration
from fedsph.config import load_settings
from fedsph.db import head_revision
from tests.fakepeer import FakePeer, free_port
from tests.processes import NodeProcess
from tests.support import testdb
from tests.support.ops import doctor, start
from tests.support.tls import make_ca


@pytest.fixture
def node(tmp_path):
    node = NodeProcess(tmp_path / "node")
    node.cli("bootstrap")
    yield node
    node.stop()


@pytest.fixture
async def peer():
    fake = await FakePeer().start()
    yield fake
    await fake.stop()


async def test_a_healthy_node_passes(node, peer):
    start(node)
    code, lines, output = await doctor(node, "--peer", peer.base)
    assert code == 0, output
    for name in ("configuration", "templates and catalogs", "permissions", "database", "keys",
                 "inbox queue", "delivery queue", "remote hosts", "WebFinger", "actor document",
                 "clock"):
        assert lines[name].startswith("ok "), output
    assert lines["TLS certificate"].startswith("skip ")  # http on loopback
    assert output.rstrip().endswith("doctor: all good (exit 0)")


async def test_files_others_can_read(node):
    node.data_dir.chmod(0o755)
    if not testdb.on_postgresql():
        (node.data_dir / "fedsph.sqlite3").chmod(0o644)
    code, lines, output = await doctor(node, "--offline")
    assert code == 2, output
    assert lines["permissions"].startswith("problem "), output
    assert str(node.data_dir) in lines["permissions"]
    assert f"chmod -R go-rwx {node.data_dir}" in output


async def test_an_actor_without_its_key(node):
    testdb.sql(node.data_dir, "UPDATE actors SET private_key_pem = NULL WHERE uri = :uri",
               uri=f"{node.base}/actors/demo")
    code, lines, output = await doctor(node, "--offline")
    assert code == 2, output
    assert lines["keys"].startswith("problem ") and f"{node.base}/actors/demo" in lines["keys"]


async def test_a_database_behind_this_fedsph(node, tmp_path):
    testdb.sql(node.data_dir, "UPDATE alembic_version SET version_num = '0017_stream_events'")
    code, lines, output = await doctor(node, "--offline")
    assert code == 2, output
    assert lines["database"] == ("problem database: reachable, but it is at revision "
                                 f"0017_stream_events and this fedsph expects {head_revision()}")
    assert "fedsph migrate" in output
    assert lines["keys"].startswith("skip ")
    for name in ("public URL", "metrics hidden", "TLS certificate", "clock"):
        assert lines[name] == f"skip {name}: --offline", output
    fresh = NodeProcess(tmp_path / "fresh")
    fresh.data_dir.mkdir()
    code, lines, output = await doctor(fresh, "--offline")
    assert code == 2 and lines["database"].startswith("problem "), output
    assert not (fresh.data_dir / "fedsph.sqlite3").exists()  # asking made no empty database


async def test_a_public_url_answering_for_someone_else(node, peer):
    """FEDSPH_BASE_URL reaches another server (a proxy sending to the wrong place)."""
    peer.add_actor("demo")
    code, lines, output = await doctor(node, "--peer", peer.base, FEDSPH_BASE_URL=peer.base)
    assert code == 2, output
    assert lines["WebFinger"].startswith("problem ") and f"{node.base}/actors/demo" in output
    nobody = f"http://127.0.0.1:{free_port()}"
    code, lines, output = await doctor(node, FEDSPH_BASE_URL=nobody)
    assert lines["public URL"].startswith(f"problem public URL: {nobody} did not answer"), output


async def _clock_server(offset: timedelta) -> tuple[web.AppRunner, str]:
    async def answer(_request):
        return web.Response(headers={"Date": format_datetime(datetime.now(UTC) + offset,
                                                             usegmt=True)})
    app = web.Application()
    app.router.add_route("*", "/", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize(("offset", "verdict", "exit_code"), [
    (timedelta(minutes=10), "problem", 2), (timedelta(minutes=-2), "warning", 1)])
async def test_a_clock_apart_from_a_peer(node, offset, verdict, exit_code):
    start(node)
    runner, url = await _clock_server(offset)
    try:
        code, lines, output = await doctor(node, "--peer", url)
    finally:
        await runner.cleanup()
    assert code == exit_code, output
    seconds = re.match(rf"{verdict} clock: (\d+) s (behind|ahead of) {url}$", lines["clock"])
    assert seconds, output
    assert abs(int(seconds[1]) - abs(offset.total_seconds())) <= 2  # Date has whole seconds
    assert seconds[2] == ("behind" if offset > timedelta(0) else "ahead of")
    assert "timedatectl set-ntp true" in output


async def test_a_stuck_queue(node):
    hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    testdb.sql(node.data_dir, "INSERT INTO inbox_items (activity_uri, type, actor_uri, body, "
               "status, attempts, next_attempt_at, created_at, signed_by_actor) VALUES "
               "('https://x.example/a/1', 'Create', 'https://x.example/u/x', :body, 'pending', 0, "
               ":at, :at, false)", body=b"{}", at=hour_ago)
    code, lines, output = await doctor(node, "--offline")
    assert code == 1, output
    assert lines["inbox queue"] == "warning inbox queue: 1 waiting, the oldest due 60 min ago"
    assert "is the worker running?" in output



async def test_a_stuck_mail_queue_when_mail_is_on(node):
    """With SMTP set up, the mail queue's most overdue pending mail has a line of its own (as
    /metrics has fedsph_mail_most_overdue_seconds); without, no such line."""
    hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    testdb.sql(node.data_dir, "INSERT INTO outgoing_mails (kind, to_address, status, attempts, "
               "next_attempt_at, created_at) VALUES ('invite', 'guest@else.example', 'pending', "
               "0, :at, :at)", at=hour_ago)
    code, lines, output = await doctor(node, "--offline")
    assert "mail queue" not in lines, output
    code, lines, output = await doctor(node, "--offline", FEDSPH_SMTP_HOST="127.0.0.1",
                                       FEDSPH_SMTP_TLS="none",
                                       FEDSPH_SMTP_FROM="noreply@coop.example")
    assert code == 1, output
    assert lines["mail queue"] == "warning mail queue: 1 waiting, the oldest due 60 min ago"
    assert lines["inbox queue"] == "ok inbox queue: 0 waiting", output

async def test_a_certificate_about_to_expire(node, tmp_path):
    ca = make_ca(tmp_path / "ca")  # its server certificate is valid for one day
    tls_server = await FakePeer(tls=ca.server_context()).start()
    try:
        _code, lines, output = await doctor(node, "--peer", tls_server.base, FEDSPH_BASE_URL=
                                           tls_server.base, FEDSPH_CA_BUNDLE=str(ca.ca_file))
        assert lines["TLS certificate"].startswith("warning TLS certificate: 127.0.0.1: valid "
                                                   "until "), output
        _code, lines, output = await doctor(node, FEDSPH_BASE_URL=tls_server.base)
        assert lines["TLS certificate"].startswith("problem "), output  # nobody trusts it
        assert "CERTIFICATE_VERIFY_FAILED" in lines["TLS certificate"]
    finally:
        await tls_server.stop()


def test_peer_must_be_a_url(node):
    """A usage error, as argparse reports one (exit 2): 1 would read as "warnings"."""
    result = node.cli("doctor", "--peer", "mastodon.social", check=False)
    assert result.returncode == 2 and "--peer: takes a server's URL" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("base_url", "verdict"), [
    ("http://127.0.0.1:8080", "ok"), ("http://[::1]:8080", "ok"), ("http://localhost", "ok"),
    ("https://coop.example", "ok"), ("http://coop.example", "warning")])
def test_plain_http_is_a_warning_off_this_machine(base_url, verdict):
    assert check_configuration(load_settings({"FEDSPH_BASE_URL": base_url})).verdict == verdict


async def test_missing_templates(node, tmp_path):
    """Every other command refuses to start so; doctor says it on its line, and goes on."""
    config = tmp_path / "fedsph.toml"
    config.write_text(f'templates_dir = "{tmp_path / "nowhere"}"\n')
    code, lines, output = await doctor(node, "--offline", FEDSPH_CONFIG=str(config))
    assert code == 2, output
    assert lines["templates and catalogs"].startswith(
        f"problem templates and catalogs: no templates in {tmp_path / 'nowhere'}"), output
    assert lines["database"].startswith("ok "), output
