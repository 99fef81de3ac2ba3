"""The per-request shortcuts (caches, constants) answer exactly as the code they stand in for."""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import make_mocked_request

from fedsph.core import safe_links
from fedsph.core.logtext import LogFormatter
from fedsph.core.safe_links import http_url
from fedsph.federation import httpsig
from fedsph.federation.httpsig import parse_signature_header
from fedsph.federation.inbox import SignedRequest
from fedsph.i18n import _accept_language_choice, negotiate, request_language
from fedsph.web.access_log import _printable
from fedsph.web.headers import POLICY, content_security_policy
from fedsph.web.render import _accept_wants_html, wants_html

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


def test_long_request_texts_are_answered_but_never_kept():
    """What strangers send (Accept, Accept-Language, URLs, Date) is cached only while short: a
    flood of long distinct texts cannot hold the caches' 256-1024 entries at 8 KB each."""
    for cached in (_accept_language_choice, _accept_wants_html, safe_links._is_http_url_cached,
                   httpsig._cached_http_date):
        cached.cache_clear()
    long_language = "fr," + ",".join(f"x{n};q=0.1" for n in range(400))
    assert request_language(make_mocked_request(
        "GET", "/", headers={"Accept-Language": long_language})) == "fr"
    assert wants_html(make_mocked_request("GET", "/", headers={"Accept": "text/html," + "a" * 900}))
    assert http_url("https://a.example/" + "x" * 1000)
    date = "Sun, 06 Dec 2026 08:00:00 GMT"
    assert httpsig._http_date(date + " " + "junk" * 200) == httpsig._http_date(date)
    assert _accept_language_choice.cache_info().currsize == 0
    assert _accept_wants_html.cache_info().currsize == 0
    assert safe_links._is_http_url_cached.cache_info().currsize == 0
    assert httpsig._cached_http_date.cache_info().currsize == 1  # the short one only


def test_verify_refuses_a_signature_check_did_not_pass():
    """The window and digest are checked once, by check(): verify() without it is a bug, never a
    pass (a future caller that skipped check() would accept stale or replayed requests)."""
    params = parse_signature_header('keyId="https://a.example/u#k",headers="(request-target) '
                                    'host date",signature="AAAA"')
    request = SignedRequest(method="POST", path="/inbox", query="", headers={}, body=None)
    with pytest.raises(RuntimeError):
        request.verify(params, "")
