"""The one rule for links made from data we did not write: absolute http(s) URLs only.

Everything that becomes an `href`/`src` on our pages, or a URL we store from the network or a
form, passes `http_url` (or the template filter built on it in fedsph.web.render). `javascript:`,
`data:`, scheme-relative `//host` and anything with control characters or backslashes (which
browsers rewrite into other URLs) is refused, never "cleaned".
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote, urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
# Control characters, space, DEL and the backslash. A regular expression, because the inbox
# checks several URLs of every request and a loop over characters in Python cost more than the
# signature check.
UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


def _has_unsafe_characters(value: str) -> bool:
    return UNSAFE_CHARACTERS.search(value) is not None


def http_url(value: object) -> str | None:
    """`value` if it is an absolute http(s) URL with a host, else None."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        return None
    check = _is_http_url_cached if len(value) <= CACHED_URL_LENGTH else _is_http_url
    return value if check(value) else None


def _is_http_url(value: str) -> bool:
    if _has_unsafe_characters(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in SCHEMES and bool(parts.hostname)


# Pure, and the inbox checks the same actor and key ids all the time. Only URLs up to
# CACHED_URL_LENGTH are kept, so what strangers send can fill it with 512 KB of text at most.
CACHED_URL_LENGTH = 512
_is_http_url_cached = functools.lru_cache(maxsize=1024)(_is_http_url)


def local_path(value: object) -> str | None:
    """`value` if it is a path on this site ("/x", never "//host" or "/\\host"), else None."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_URL_LENGTH:
        return None
    if value.startswith("//") or _has_unsafe_characters(value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    # "/..//host" (or "/%2e%2e//host") resolves to the path "//host"; refused, not normalised.
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        return None
    return value


def origin(uri: str | None) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URI, the port made explicit; None for anything else."""
    return _origin(uri) if isinstance(uri, str) else None


@functools.lru_cache(maxsize=4096)  # pure; the inbox compares the same few origins all the time
def _origin(uri: str) -> tuple[str, str, int] | None:
    # http_url's checks, with the one urlsplit: every activity id is new, so each costs a parse.
    if not uri or len(uri) > MAX_URL_LENGTH or _has_unsafe_characters(uri):
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def first_http_url(value: object) -> str | None:
    """The first http(s) URL of a string, a Link (its `href`) or a list of them, else None.

    AS2 lets `url` (and a tag's `href`) be any of these shapes; each candidate passes http_url.
    """
    for item in value if isinstance(value, list) else [value]:
        url = http_url(item.get("href") if isinstance(item, dict) else item)
        if url is not None:
            return url
    return None
