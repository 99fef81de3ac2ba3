"""/metrics against hostile input and careless settings (issue 14, item 6, review findings): a
header that is not UTF-8, a loopback allow list behind a proxy, the shared directory of counts
(a second `serve` by mistake, a symbolic link), IPv4-mapped client addresses, streams."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from fedsph.config import load_settings
from fedsph.errors import UserError
from fedsph.federation.queue_health import QueueHealth
from fedsph.web import metrics
from tests.processes import NodeProcess
from tests.support.ops import TOKEN
from tests.support.ops import FakeTransport as _Transport
from tests.support.ops import mocked_request as _request


def raw_answer(node: NodeProcess, request: bytes) -> tuple[bytes, bytes]:
    """(status line, body) of a request written byte by byte on a socket."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


def test_a_header_that_is_not_utf8_gets_the_404_of_any_path(tmp_path):
    node = NodeProcess(tmp_path / "node", FEDSPH_METRICS_TOKEN=TOKEN)
    node.cli("bootstrap")
    node.start()
    try:
        unknown = raw_answer(node, f"GET /no-such-{uuid.uuid4().hex} HTTP/1.1\r\nHost: "
                             f"{node.domain}\r\nConnection: close\r\n\r\n".encode())
        for value in (b"Bearer \xff\xfe\x80", b"Bearer " + TOKEN.encode()[:-1] + b"\xe9",
                      b"\xff\xff " + TOKEN.encode()):
            answer = raw_answer(node, b"GET /metrics HTTP/1.1\r\nHost: " + node.domain.encode()
                                + b"\r\nAuthorization: " + value + b"\r\nConnection: close\r\n\r\n")
            assert answer == unknown, answer
        assert unknown[0].startswith(b"HTTP/1.1 404")
        log = node.server_log()
        assert "Traceback" not in log and "UnicodeEncodeError" not in log, log
    finally:
        node.stop()


def test_a_loopback_allow_list_without_trusted_proxies_is_warned_at_start(tmp_path):
    node = NodeProcess(tmp_path / "node", FEDSPH_METRICS_ALLOW="127.0.0.1/32")
    node.cli("bootstrap")
    node.start()
    try:
        assert node.get("/healthz")[0] == 200  # a warning, not a refusal: it serves
    finally:
        node.stop()
    assert "FEDSPH_METRICS_ALLOW names a loopback address" in node.server_log()
    quiet = NodeProcess(tmp_path / "quiet", FEDSPH_METRICS_ALLOW="127.0.0.1/32",
                        FEDSPH_TRUSTED_PROXIES="127.0.0.1")
    assert metrics.loopback_without_proxies(load_settings(quiet.env)) is False
    for allow in ("::1/128", "::ffff:127.0.0.1/128", "127.0.0.0/8, 10.0.0.0/8"):
        assert metrics.loopback_without_proxies(load_settings({"FEDSPH_METRICS_ALLOW": allow}))
    assert not metrics.loopback_without_proxies(load_settings({"FEDSPH_METRICS_ALLOW": "10.0.0.5"}))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def multiproc_env(monkeypatch):
    # Recorded first (setenv), so that what prepare_directory sets is undone after the test:
    # prometheus_client reads it once, when first imported.
    monkeypatch.setenv(metrics.MULTIPROCESS_ENV, "")
    monkeypatch.delenv(metrics.MULTIPROCESS_ENV)


HOLDER = """
import sys, time
from fedsph.config import load_settings
from fedsph.web import metrics
metrics.prepare_directory(load_settings({"FEDSPH_DATA_DIR": sys.argv[1],
                                         "FEDSPH_METRICS_TOKEN": sys.argv[2]}), fresh=True)
print("holding", flush=True)
sys.stdin.read()
"""


def test_the_first_start_deletes_every_processes_file_a_second_none(tmp_path, multiproc_env,
                                                                    caplog):
    """Who gets the directory's lock (the single server or a group's parent, for its whole
    life) deletes every process's file, whatever its pid (absurd, reused, running); a second
    start of the node while the first runs deletes none. Other files are never touched."""
    settings = load_settings({"FEDSPH_DATA_DIR": str(tmp_path / "data"),
                              "FEDSPH_METRICS_TOKEN": TOKEN})
    directory = metrics.metrics_directory(settings)
    directory.mkdir(parents=True, mode=0o700)
    huge = 10 ** 30  # os.kill(huge, 0) raised OverflowError and stopped serve
    files = {f"counter_{_dead_pid()}.db", f"histogram_{huge}.db", "gauge_livesum_1.db",
             f"counter_{os.getpid()}.db"}
    others = {"notes.txt", f"counter_{_dead_pid()}.db.bak"}

    def write_all() -> None:
        for name in files | others:
            (directory / name).write_bytes(b"x")

    write_all()
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.data_dir), TOKEN],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline() == "holding\n"
        assert {p.name for p in directory.iterdir()} == others | {".lock"}
        write_all()  # the running node's processes write theirs
        metrics.prepare_directory(settings, fresh=True)  # started again: the lock is taken
        assert {p.name for p in directory.iterdir()} == files | others | {".lock"}
        assert os.environ[metrics.MULTIPROCESS_ENV] == str(directory.resolve())
    finally:
        first.stdin.close()
        first.wait(timeout=30)
    metrics.prepare_directory(settings, fresh=False)  # a group's child: deletes nothing
    assert {p.name for p in directory.iterdir()} == files | others | {".lock"}
    metrics.prepare_directory(settings, fresh=True)  # the first has ended: this one owns it
    assert {p.name for p in directory.iterdir()} == others | {".lock"}
    assert all((directory / n).read_bytes() == b"x" for n in others)
    assert directory.name == "prometheus-multiproc"
    # A second start within this process (it holds the lock): nothing deleted, no warning
    # about another server.
    write_all()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=metrics.log.name):
        metrics.prepare_directory(settings, fresh=True)
    assert {p.name for p in directory.iterdir()} == files | others | {".lock"}
    assert "holds its lock already" in caplog.text and "another" not in caplog.text
    os.close(metrics._HELD.pop(directory))


def test_a_symlinked_directory_is_refused_and_left_alone(tmp_path, multiproc_env):
    settings = load_settings({"FEDSPH_DATA_DIR": str(tmp_path / "data"),
                              "FEDSPH_METRICS_TOKEN": TOKEN})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / f"counter_{_dead_pid()}.db"
    victim.write_bytes(b"keep me")
    settings.data_dir.mkdir()
    metrics.metrics_directory(settings).symlink_to(elsewhere)
    with pytest.raises(UserError, match="symbolic link"):
        metrics.prepare_directory(settings, fresh=True)
    assert victim.read_bytes() == b"keep me"
    assert metrics.MULTIPROCESS_ENV not in os.environ


def test_ipv4_mapped_client_addresses_are_ipv4():
    allowed = {"metrics_allow": "10.20.0.0/16"}
    assert metrics.may_read(_request("::ffff:10.20.1.1", None, **allowed))
    assert not metrics.may_read(_request("::ffff:10.21.1.1", None, **allowed))
    mapped = {"metrics_allow": "10.0.0.0/8", "trusted_proxies": "192.0.2.1"}
    assert metrics.may_read(_request("192.0.2.1", "::ffff:10.1.2.3", **mapped))


def test_streams_are_counted_but_not_timed():
    recorder = metrics.request_metrics()
    app = web.Application()
    app.router.add_get("/api/v1/streaming", _answer)
    app.router.add_get("/api/v1/timelines/home", _answer)
    for path in ("/api/v1/streaming", "/api/v1/timelines/home"):
        request = make_mocked_request("GET", path, app=app, transport=_Transport("10.0.0.1"))
        match = app.router._resources[0 if "streaming" in path else 1]
        request._match_info = type("M", (), {"route": type("R", (), {"resource": match})()})()
        before = _samples(recorder, path)
        recorder.record(request, web.Response(), 200, 0.0)
        counted, timed = _samples(recorder, path)
        assert counted == before[0] + 1
        assert timed == before[1] + (0 if "streaming" in path else 1)


async def _answer(_request):
    return web.Response()


def _samples(recorder: metrics.RequestMetrics, path: str) -> tuple[float, float]:
    name = "streaming" if "streaming" in path else "api"
    counted = recorder.requests.labels(name, "2xx")._value.get()
    timed = sum(bucket.get() for bucket in recorder.seconds.labels(name)._buckets)
    return counted, timed


def test_the_most_overdue_mail_is_a_gauge():
    now = datetime(2026, 12, 7, 12, 0)
    health = QueueHealth(by_status={"outgoing_mails": {"pending": 3}},
                         oldest_mail_due=now - timedelta(minutes=20))
    text = metrics._queue_text(health, now, True).decode()
    assert "\nfedsph_mail_most_overdue_seconds 1200\n" in text
    assert '\nfedsph_outgoing_mails{status="pending"} 3\n' in text
    assert "\nfedsph_mail_most_overdue_seconds 0\n" in metrics._queue_text(
        QueueHealth(by_status={}), now, True).decode()
    # without SMTP set up mails wait by design: no lag line to alert on
    assert "fedsph_mail_most_overdue" not in metrics._queue_text(health, now, False).decode()
