"""The access log of `fedsph serve`: one line per request, on the `fedsph.access` logger.

    203.0.113.7 "GET /p/coop?page=2" 200 5120B 12.3ms "Mastodon/4.3 (+https://m.example/)"

client address (fedsph/web/client_address.py), method and path, status, bytes sent, time taken,
User-Agent. Secrets never reach the log: the values of query parameters that can carry one
(`access_token`, `code`, `client_secret`…) and secret path segments (the token of
`/invite/{token}`) are replaced by `REDACTED`, the path is logged as it
was sent (still percent-encoded, so no line breaks can be smuggled in), and no header other
than the User-Agent is written.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from fedsph.config import IPNetwork, Settings, proxy_networks
from fedsph.web.client_address import address_of
from fedsph.web.health import PATH as HEALTH_PATH

LOGGER_NAME = "fedsph.access"
SECRET_PARAMS = frozenset({"access_token", "code", "client_secret", "code_verifier", "token",
                           "refresh_token", "password", "state"})
# Routes whose next path segment is itself a secret: /invite/{token} lets anyone holding it join.
SECRET_PATH_PREFIXES = ("/invite/",
                        # the one-time links of fedsph/mail
                        "/password/reset/", "/email/confirm/", "/mail/unsubscribe/")
AGENT_MAX = 200


def _printable(text: str, limit: int = AGENT_MAX) -> str:
    """Text from the client, safe on one log line."""
    text = text[:limit]
    if text.isprintable() and '"' not in text:  # nearly always: no copy character by character
        return text
    return "".join(ch if ch.isprintable() and ch != '"' else f"\\x{ord(ch):02x}" for ch in text)


def redacted_query(raw_query: str) -> str:
    """The raw query string with the values of secret-bearing parameters replaced."""
    kept = []
    for pair in raw_query.split("&"):
        name, sep, _value = pair.partition("=")
        secret = name.lower().removesuffix("%5b%5d").removesuffix("[]") in SECRET_PARAMS
        kept.append(f"{name}{sep}REDACTED" if secret and sep else pair)
    return "&".join(kept)


def redacted_path(raw_path: str) -> str:
    """The raw path, or only its SECRET_PATH_PREFIXES prefix and REDACTED if it has one.

    Compared decoded, as the router matches ("/%69nvite/x" reaches the invite page too), and
    everything after the prefix goes: the secret is all those routes hold.
    """
    decoded = unquote(raw_path)
    for prefix in SECRET_PATH_PREFIXES:
        if decoded.startswith(prefix):
            return f"{prefix}REDACTED"
    return raw_path


def logged_target(request: web.BaseRequest) -> str:
    """The request target as sent, minus secrets."""
    path, _, query = request.raw_path.partition("?")
    return _printable(redacted_path(path) + ("?" + redacted_query(query) if query else ""),
                      limit=1000)


class AccessLogger(AbstractAccessLogger):
    """aiohttp calls `log` once per finished request, routed or not (so no request.app here)."""

    trusted: tuple[IPNetwork, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)  # FEDSPH_LOG_LEVEL=WARNING silences it

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        # The record is made and handed on as Logger.info would, minus its search of the stack
        # for the caller's file and line, which no format of ours shows and which cost a quarter
        # of the logging (a line per request, the hot path).
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):  # aiohttp asks `enabled` once a connection
            return
        if response.status == 200 and request.raw_path == HEALTH_PATH:
            return  # a probe every few seconds would bury the other lines; its failures are kept
        logger.handle(logger.makeRecord(
            logger.name, logging.INFO, "(access log)", 0, '%s "%s %s" %s %sB %.1fms "%s"',
            (address_of(request, self.trusted), _printable(request.method, 16),
             logged_target(request), response.status, response.body_length, time * 1000,
             _printable(request.headers.get("User-Agent", "-"))), None))


def access_log_options(settings: Settings) -> dict:
    """AppRunner's access-log arguments: our format and trusted proxies, or none when off."""
    if not settings.access_log:
        return {"access_log": None}
    trusted = proxy_networks(settings.trusted_proxies)
    return {"access_log": logging.getLogger(LOGGER_NAME),
            "access_log_class": type("AccessLogger", (AccessLogger,), {"trusted": trusted})}
