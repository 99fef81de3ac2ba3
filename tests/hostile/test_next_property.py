"""Property test of the `next=` check: whatever a stranger sends, the redirect stays on this site."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from aiohttp import web
from hypothesis import example, given
from hypothesis import strategies as st

from fedsph.core.safe_links import local_path
from fedsph.web.members import safe_next

BASE = "https://coop.example"
# Biased towards the characters that make redirects go elsewhere.
TRICKY = st.sampled_from(["/", "\\", ".", ":", "%", "2", "e", "E", "F", "f", "\t", "\n", "\r",
                          " ", "\x00", "\x7f", "?", "#", "@", "evil.example", "http", "javascript"])
HOSTILE = st.lists(TRICKY, max_size=12).map("".join) | st.text(max_size=40)


@given(HOSTILE)
@example("/\t/evil.example")
@example("/..//evil.example")
@example("/%2e%2e//evil.example")
@example("/\\evil.example")
def test_next_is_the_default_or_a_single_slash_path_that_stays_here(raw):
    result = safe_next(raw)
    assert result == "/" or result == raw
    assert result.startswith("/") and not result.startswith("//")
    assert not any(ord(ch) < 0x20 or ch in "\x7f\\" for ch in result)
    assert not urlsplit(result).scheme and not urlsplit(result).netloc
    location = web.HTTPSeeOther(result).headers["Location"]
    resolved = urlsplit(urljoin(f"{BASE}/login", location))
    assert resolved.netloc == "coop.example" and not resolved.path.startswith("//")


@given(st.one_of(st.none(), st.integers(), st.binary(max_size=8), HOSTILE))
def test_local_path_is_none_or_the_value_itself(value):
    assert local_path(value) in (None, value)
