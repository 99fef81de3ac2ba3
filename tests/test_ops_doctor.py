"""`fedsph doctor` against what a reviewer found it missed (issue 14, item 5): odd answers from
the public URL (types it did not expect, a chunked body), a check that crashes, a retry that
is not a stuck queue, the FEDSPH_CONFIG file and symbolic links, a database of another account
or behind a lock, /metrics open to everyone through a proxy on the same machine."""

from __future__ import annotations

import asyncio
import os
import time
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
from aiohttp import web
from sqlalchemy import text

from fedsph.admin import doctor as doctor_module
from fedsph.admin import doctor_checks, doctor_net
from fedsph.config import load_settings
from fedsph.db import make_engine
from tests.fakepeer import free_port
from tests.processes import NodeProcess
from tests.support import testdb
from tests.support.ops import TOKEN, doctor, start


@pytest.fixture
def bootstrapped(tmp_path):
    node = NodeProcess(tmp_path / "node")
    node.cli("bootstrap")
    yield node
    node.stop()


async def _server(routes: dict) -> tuple[web.AppRunner, str]:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _chunked(request: web.Request, document: dict) -> web.StreamResponse:
    """200 KB in 8 KB pieces with pauses: content.read(n) alone would see only the first."""
    body = orjson.dumps(document)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start_at in range(0, len(body), 8192):
        await response.write(body[start_at:start_at + 8192])
        await asyncio.sleep(0.005)
    await response.write_eof()
    return response


@pytest.mark.parametrize("public_key", [["a list"], "a string", None])
async def test_unexpected_json_types_are_problems_not_crashes(tmp_path, public_key):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    node = NodeProcess(tmp_path / "node", port=port)
    node.cli("bootstrap")

    async def webfinger(request):
        return await _chunked(request, {
            "subject": f"acct:demo@127.0.0.1:{port}", "padding": "x" * 200_000,
            "links": [{"rel": "self", "href": f"{base}/actors/demo"}]})

    async def actor(_request):
        return web.json_response({"id": f"{base}/actors/demo", "inbox": f"{base}/actors/demo/inbox",
                                  "publicKey": public_key})

    app = web.Application()
    app.router.add_get("/.well-known/webfinger", webfinger)
    app.router.add_get("/actors/demo", actor)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        code, lines, output = await doctor(node)
    finally:
        await runner.cleanup()
    assert lines["WebFinger"].startswith("ok "), output  # the whole chunked 200 KB was read
    assert lines["actor document"].startswith("problem actor document:"), output
    assert code == 2 and "Traceback" not in output, output


async def test_webfinger_links_not_a_list(tmp_path):
    port = free_port()
    node = NodeProcess(tmp_path / "node", port=port)
    node.cli("bootstrap")

    async def webfinger(_request):
        return web.json_response({"subject": f"acct:demo@127.0.0.1:{port}", "links": "self"})

    app = web.Application()
    app.router.add_get("/.well-known/webfinger", webfinger)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        code, lines, output = await doctor(node)
    finally:
        await runner.cleanup()
    assert lines["WebFinger"].startswith("problem WebFinger:"), output
    assert code == 2 and "Traceback" not in output, output


async def test_read_at_most_reads_to_the_end_or_gives_up():
    document = {"padding": "y" * 200_000}

    async def answer(request):
        return await _chunked(request, document)

    runner, base = await _server({"/": answer})
    try:
        async with doctor_net.client(load_settings({})) as http:
            async with http.get(base + "/") as response:
                assert orjson.loads(await doctor_net.read_body(response, 1024 * 1024)) == document
            async with http.get(base + "/") as response:
                assert await doctor_net.read_body(response, 100_000) is None
    finally:
        await runner.cleanup()


async def test_a_crashing_check_is_its_problem_line_and_the_rest_run(bootstrapped, monkeypatch):
    def broken(_settings):
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor_module, "check_permissions", broken)
    settings = load_settings(bootstrapped.env)
    lines = {line.name: line for line in await doctor_module.run_checks(settings, None, True)}
    assert lines["permissions"].verdict == "problem"
    assert "RuntimeError: boom" in lines["permissions"].detail
    assert lines["database"].verdict == "ok" and lines["keys"].verdict == "ok"

    async def crash(*_args):
        raise KeyError("everything")

    monkeypatch.setattr(doctor_module, "run_checks", crash)
    code = await asyncio.to_thread(doctor_module.doctor, settings, Namespace(peer=None,
                                                                             offline=True))
    assert code == 2  # not 1, which means "warnings"


async def test_a_crash_outside_the_checks_keeps_the_lines_gathered(bootstrapped, monkeypatch,
                                                                  capsys):
    """Something outside the guarded checks raises (here choosing the peer to ask the time):
    the lines gathered so far are printed, then a problem line, exit 2."""
    def broken(*_args):
        raise RuntimeError("no peer for you")

    monkeypatch.setattr(doctor_module.doctor_net, "database_peer", broken)
    settings = load_settings({**bootstrapped.env, "FEDSPH_BASE_URL": "http://127.0.0.1:9"})
    code = await asyncio.to_thread(doctor_module.doctor, settings, Namespace(peer=None,
                                                                             offline=False))
    out = capsys.readouterr().out
    assert code == 2, out
    assert "ok       database:" in out and "ok       keys:" in out, out
    assert "public URL:" in out, out
    assert "problem  doctor: the check itself failed: RuntimeError: no peer for you" in out, out
    assert "could not finish its checks" in out
    assert out.rstrip().endswith("(exit 2)")


async def test_a_retry_waiting_for_its_time_is_not_a_stuck_queue(bootstrapped):
    now = datetime.now(UTC).replace(tzinfo=None)
    testdb.sql(bootstrapped.data_dir, "INSERT INTO inbox_items (activity_uri, type, actor_uri, body, "
               "status, attempts, next_attempt_at, created_at, signed_by_actor) VALUES "
               "('https://x.example/a/1', 'Create', 'https://x.example/u/x', :body, 'pending', 3, "
               ":next, :created, false)", body=b"{}", next=now + timedelta(minutes=10),
               created=now - timedelta(hours=2))
    code, lines, output = await doctor(bootstrapped, "--offline")
    assert lines["inbox queue"] == "ok inbox queue: 1 waiting", output
    assert code == 0, output


async def test_the_config_file_and_symlinks_are_checked(bootstrapped, tmp_path):
    config = tmp_path / "fedsph.toml"
    config.write_text("")
    config.chmod(0o644)
    code, lines, output = await doctor(bootstrapped, "--offline", FEDSPH_CONFIG=str(config))
    assert code == 2 and str(config) in lines["permissions"], output
    config.chmod(0o600)
    private, public = tmp_path / "private", tmp_path / "public"
    private.mkdir(mode=0o700)
    public.mkdir(mode=0o755)
    (bootstrapped.data_dir / "kept").symlink_to(private)
    code, lines, output = await doctor(bootstrapped, "--offline", FEDSPH_CONFIG=str(config))
    assert code == 0, output
    assert "FEDSPH_CONFIG" in lines["permissions"]
    assert f"checked at their target only, not what a linked directory holds: " \
           f"{bootstrapped.data_dir / 'kept'}" in lines["permissions"], output
    (bootstrapped.data_dir / "shared").symlink_to(public)
    code, lines, output = await doctor(bootstrapped, "--offline")
    assert code == 2 and f"{bootstrapped.data_dir / 'shared'} (drwxr-xr-x)" in lines["permissions"]


@pytest.mark.skipif(testdb.on_postgresql(), reason="an SQLite file's owner")
@pytest.mark.skipif(os.getuid() != 0, reason="needs to give the files to another account")
async def test_a_sqlite_database_of_another_account_is_not_opened(bootstrapped):
    database = bootstrapped.data_dir / "fedsph.sqlite3"
    before = database.read_bytes()
    for path in (bootstrapped.data_dir, *bootstrapped.data_dir.iterdir()):
        os.chown(path, 65534, 65534)
    names = {p.name for p in bootstrapped.data_dir.iterdir()}
    code, lines, output = await doctor(bootstrapped, "--offline")
    assert lines["database"].startswith("warning database:") and "sudo -u" in output, output
    assert code == 1, output
    assert {p.name for p in bootstrapped.data_dir.iterdir()} == names  # no -wal/-shm of root's
    assert database.read_bytes() == before


@pytest.mark.skipif(not testdb.on_postgresql(), reason="a lock another session holds")
async def test_a_locked_table_is_a_problem_not_a_hang(bootstrapped, monkeypatch):
    monkeypatch.setattr(doctor_checks, "DB_TIMEOUT_SECONDS", 1.0)
    settings = load_settings(bootstrapped.env)
    holder, engine = make_engine(settings), make_engine(settings)
    try:
        async with engine.connect():  # connected before: the 1 s is for the locked read only
            pass
        async with holder.connect() as connection:
            await connection.execute(text("BEGIN"))
            await connection.execute(text("LOCK TABLE actors IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            lines, _target, _peer = await doctor_checks.local_checks(settings, engine)
            # the patched 1 s, not the real 10 s nor the lock's endless wait (room for load)
            assert time.monotonic() - started < 8
            await connection.execute(text("ROLLBACK"))
    finally:
        await engine.dispose()
        await holder.dispose()
    assert lines[-1].verdict == "problem" and "did not answer within 1 s" in lines[-1].detail


async def test_metrics_open_to_loopback_behind_a_proxy(tmp_path):
    node = NodeProcess(tmp_path / "node", FEDSPH_METRICS_ALLOW="127.0.0.1/32")
    node.cli("bootstrap")
    start(node)
    try:
        # Loopback allowed and no trusted proxy: a proxy here would let everyone in, so the
        # 200 asked from 127.0.0.1 is a problem, not downgraded to a warning.
        code, lines, output = await doctor(node)
        assert code == 2, output
        assert lines["metrics hidden"].startswith(
            f"problem metrics hidden: {node.base}/metrics answered 200 to a request without the "
            "token from 127.0.0.1, which FEDSPH_METRICS_ALLOW lets in, and "
            "FEDSPH_TRUSTED_PROXIES is empty"), output
        assert "list the proxy in FEDSPH_TRUSTED_PROXIES" in output
        assert lines["metrics access"].startswith("warning metrics access:"), output
        # With the proxy listed, the doctor's own loopback request says nothing of strangers:
        # a warning.
        code, lines, output = await doctor(node, FEDSPH_TRUSTED_PROXIES="127.0.0.2")
        assert code == 1, output
        assert lines["metrics hidden"].startswith(
            f"warning metrics hidden: {node.base}/metrics answered 200, but asked from this "
            "machine's address 127.0.0.1, which FEDSPH_METRICS_ALLOW lets in"), output
        assert "ask /metrics from another machine" in output
        # The doctor's list does not name this machine (the running server's still does): a
        # 200 to us is then what a stranger gets, a problem.
        code, lines, output = await doctor(node, FEDSPH_METRICS_ALLOW="10.9.9.9/32")
        assert code == 2, output
        assert lines["metrics hidden"].startswith(f"problem metrics hidden: {node.base}/metrics "
                                                  "answered 200 to a request without"), output
        code, lines, output = await doctor(node, FEDSPH_METRICS_ALLOW="",
                                           FEDSPH_METRICS_TOKEN=TOKEN)
        assert lines["metrics access"].startswith("ok ") and "token" in lines["metrics access"]
    finally:
        node.stop()
    token_only = NodeProcess(tmp_path / "token", FEDSPH_METRICS_TOKEN=TOKEN)
    token_only.cli("bootstrap")
    start(token_only)
    try:
        code, lines, output = await doctor(token_only)
        assert lines["metrics hidden"] == (f"ok metrics hidden: {token_only.base}/metrics is 404 "
                                           "without the token"), output
    finally:
        token_only.stop()


@pytest.mark.parametrize(("allow", "verdict"), [
    ("0.0.0.0/0", "warning"), ("::/0", "warning"), ("10.0.0.0/8, 0.0.0.0/0", "warning"),
    ("10.0.0.5/32", "ok")])
def test_an_allow_list_of_everyone_is_a_warning(allow, verdict):
    settings = load_settings({"FEDSPH_METRICS_ALLOW": allow})
    assert doctor_checks.check_metrics_access(settings).verdict == verdict


def test_the_databases_peer_honours_allow_private_networks():
    strict = load_settings({"FEDSPH_ALLOW_PRIVATE_NETWORKS": "0"})
    peer, line = doctor_net.database_peer(strict, "http://127.0.0.1:9")
    assert peer is None and line.verdict == "skip" and "private" in line.detail
    lax = load_settings({"FEDSPH_ALLOW_PRIVATE_NETWORKS": "1"})
    assert doctor_net.database_peer(lax, "http://127.0.0.1:9") == ("http://127.0.0.1:9", None)
    assert doctor_net.database_peer(strict, "https://mastodon.example") == (
        "https://mastodon.example", None)
    for settings in (strict, lax):  # a malformed URL: the setting is not the reason
        peer, line = doctor_net.database_peer(settings, "https://[::1")
        assert peer is None and line.verdict == "skip", line
        assert "not a valid URL" in line.detail and "PRIVATE" not in line.detail, line


async def test_a_date_without_a_zone_is_utc(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")  # local time 5 hours off UTC
    time.tzset()

    async def answer(_request):  # "-0000": no zone given
        return web.Response(headers={"Date": format_datetime(datetime.now(UTC).replace(
            tzinfo=None))})

    runner, base = await _server({"/": answer})
    try:
        async with doctor_net.client(load_settings({})) as http:
            line = await doctor_net.check_clock(http, base + "/")
    finally:
        await runner.cleanup()
        monkeypatch.undo()
        time.tzset()
    assert line.verdict == "ok", line
