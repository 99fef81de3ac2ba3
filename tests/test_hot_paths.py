"""The per-request shortcuts (caches, constants) answer exactly as the code they stand in for."""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import make_mocked_request

from fedsph.core.logtext import LogFormatter
from fedsph.core.safe_links import http_url
from fedsph.i18n import negotiate, request_language
from fedsph.web.access_log import _printable
from fedsph.web.headers import POLICY, content_security_policy
from fedsph.web.render import wants_html

ACCEPT_LANGUAGES = [None, "", "fr", "es-UY,es;q=0.9,en;q=0.8", "de, pt;q=0.5", "*", "en;q=0,fr",
                    "xx;q=abc, pt-BR"]


@pytest.mark.parametrize("accept_language", ACCEPT_LANGUAGES)
@pytest.mark.parametrize("path, cookie", [("/", None), ("/?lang=pt", None), ("/?x=1", "es"),
                                          ("/?lang=zz", "fr")])
def test_request_language_is_negotiate(accept_language, path, cookie):
    headers = {}
    if accept_language is not None:
        headers["Accept-Language"] = accept_language
    if cookie:
        headers["Cookie"] = f"lang={cookie}"
    request = make_mocked_request("GET", path, headers=headers)
    expected = negotiate(request.query.get("lang"), cookie, accept_language)
    for _ in range(2):  # the second answer comes from the cache
        assert request_language(make_mocked_request("GET", path, headers=headers)) == expected


@pytest.mark.parametrize("accept, html", [("", False), ("text/html", True),
                                          ("application/activity+json", False),
                                          ("TEXT/HTML,application/xhtml+xml", True),
                                          ("text/html, application/ld+json", False), ("*/*", False)])
def test_wants_html_twice(accept, html):
    for _ in range(2):
        assert wants_html(make_mocked_request("GET", "/", headers={"Accept": accept})) is html


def test_default_csp_is_the_policy_and_form_targets_still_extend_it():
    assert content_security_policy() == "; ".join(f"{k} {v}" for k, v in POLICY.items())
    assert "form-action 'self' https://app.example:443;" in content_security_policy(
        ["https://app.example:443"])


def test_log_formatter_writes_logging_default_time():
    for created in (0.0, 1765010521.123, 1765010521.999, 1765010522.5):
        record = logging.LogRecord("x", logging.INFO, "f", 1, "m", (), None)
        record.created, record.msecs = created, int((created - int(created)) * 1000)
        assert (LogFormatter("%(asctime)s %(message)s").format(record)
                == logging.Formatter("%(asctime)s %(message)s").format(record))


def test_printable_shortcut_still_escapes():
    assert _printable("Mastodon/4.3") == "Mastodon/4.3"
    assert _printable('a"b\nc') == "a\\x22b\\x0ac"


@pytest.mark.parametrize("value", ["https://a.example/x", "javascript:alert(1)", "https://a b/",
                                   "http://h:99999999/", "//a.example/", 7, None, ""])
def test_http_url_twice(value):
    first = http_url(value)
    assert http_url(value) == first
    assert first in (None, value)
