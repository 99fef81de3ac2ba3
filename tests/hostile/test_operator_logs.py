"""`fedsph serve` writes an access log (one line a request, no secrets), on by default."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from fedsph.config import load_settings
from fedsph.web.access_log import (
    LOGGER_NAME,
    AccessLogger,
    access_log_options,
    logged_target,
    redacted_query,
)
from tests.processes import NodeProcess, wait_for

SECRET = "s3cr3t-token-value"


@pytest.fixture
def served(tmp_path):
    node = NodeProcess(tmp_path / "node")
    node.cli("migrate")
    node.start()
    yield node
    node.stop()


def test_the_access_log_has_a_line_per_request_and_no_secrets(served):
    status, _ = served.get(f"/api/v1/accounts/verify_credentials?access_token={SECRET}&x=1")
    assert status == 401
    served.get("/.well-known/nodeinfo?code=" + SECRET)
    served.get("/invite/" + SECRET)
    wait_for(lambda: "/invite/" in served.server_log(), timeout=10, what="the access log lines")
    log = served.server_log()
    line = re.search(r'127\.0\.0\.1 "GET /api/v1/accounts/verify_credentials\?'
                     r'access_token=REDACTED&x=1" 401 \d+B [\d.]+ms "[^"]*"', log)
    assert line, log
    assert "fedsph.access" in log and "INFO" in log  # the logging format: time level name
    assert re.search(r'"GET /invite/REDACTED" 410 ', log), log
    assert SECRET not in log


def test_the_access_log_can_be_turned_off(tmp_path):
    node = NodeProcess(tmp_path / "quiet", FEDSPH_ACCESS_LOG="0")
    node.cli("migrate")
    node.start()
    try:
        node.get("/.well-known/nodeinfo?marker=1")
    finally:
        node.stop()
    assert "fedsph serving" in node.server_log()
    assert "marker=1" not in node.server_log()


def test_secret_query_values_are_redacted_and_line_breaks_cannot_be_smuggled():
    assert redacted_query("access_token=a&Code=b&client_secret=c&page=2") == (
        "access_token=REDACTED&Code=REDACTED&client_secret=REDACTED&page=2")
    assert redacted_query("token") == "token"
    request = make_mocked_request("GET", "/p/x%0A%0Dfake?password=hunter2",
                                  app=web.Application())
    target = logged_target(request)
    assert "\n" not in target and "\r" not in target and "hunter2" not in target


def test_invitation_tokens_in_the_path_are_redacted():
    """The token of /invite/{token} lets anyone join the project: it is a secret like a password."""
    for sent in (f"/invite/{SECRET}", f"/invite/{SECRET}?lang=de", f"/%69nvite/{SECRET}",
                 f"/invite/{SECRET}/x", f"/invite/{SECRET[:4]}%2F{SECRET[4:]}"):
        target = logged_target(make_mocked_request("GET", sent, app=web.Application()))
        assert target.startswith("/invite/REDACTED"), (sent, target)
        assert SECRET[4:] not in target, target
    assert logged_target(make_mocked_request("GET", "/invites/x", app=web.Application())) == (
        "/invites/x")


def test_a_request_aiohttp_could_not_parse_is_logged_too(caplog):
    """aiohttp logs unparseable requests with a stand-in whose headers are a plain dict."""
    stand_in = SimpleNamespace(remote="198.51.100.1", headers={}, method="UNKNOWN", raw_path="/")
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    AccessLogger(logging.getLogger(LOGGER_NAME), "").log(stand_in, web.Response(status=400), 0.001)
    assert '198.51.100.1 "UNKNOWN /" 400' in caplog.text


def test_the_access_log_believes_forwarded_for_only_from_trusted_proxies(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    settings = load_settings(environ={"FEDSPH_TRUSTED_PROXIES": "127.0.0.1"})
    logger_class = access_log_options(settings)["access_log_class"]
    for peer in ("127.0.0.1", "192.0.2.9"):
        request = SimpleNamespace(remote=peer, headers={"X-Forwarded-For": "203.0.113.5"},
                                  method="GET", raw_path="/")
        logger_class(logging.getLogger(LOGGER_NAME), "").log(request, web.Response(), 0.001)
    assert '203.0.113.5 "GET /"' in caplog.text and '192.0.2.9 "GET /"' in caplog.text
    assert access_log_options(load_settings(environ={"FEDSPH_ACCESS_LOG": "0"})) == {
        "access_log": None}
