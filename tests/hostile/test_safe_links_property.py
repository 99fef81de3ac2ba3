"""Property tests for the safe-link rule: whatever the input, the output is a link a browser reads
as http(s) or a path on this site, and markup built around it keeps to its attributes."""

from __future__ import annotations

from urllib.parse import urlsplit

import html5lib
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from fedsph.core.sanitize import link
from fedsph.projects.notes import text_to_html
from fedsph.web.render import link_to, safe_href
from tests.hostile.xss import PAYLOADS, problems

SCHEMES = st.sampled_from(["http", "https", "HTTP", "javascript", "JavaScript", "data", "vbscript",
                           "mailto", "file", "", " javascript", "java\tscript", "java\nscript"])
PIECES = st.sampled_from(list("\"'<>&\\/ \t\n\r\x00\x0b\x7f:;#?@%=\u2028")
                         + ["&#x09;", "&quot;", "//", "onerror=", "javascript:"])
TRICKY = st.lists(st.one_of(st.text(max_size=4), PIECES), max_size=10).map("".join)
URLISH = st.builds(lambda scheme, sep, rest: f"{scheme}{sep}{rest}", SCHEMES,
                   st.sampled_from([":", "://", ":/", ":\\\\", ""]), TRICKY)
ANYTHING = st.one_of(URLISH, TRICKY, st.none(), st.integers(), st.lists(st.text(max_size=5)))


def browser_scheme(url: str) -> str | None:
    """The scheme a browser sees (it drops tabs and newlines, strips edges); None for relative."""
    cleaned = "".join(ch for ch in url if ch not in "\t\n\r").strip("\x00 \x0b\x0c")
    scheme = urlsplit(cleaned).scheme
    return scheme.lower() if scheme else None


def as_parsed(text: str) -> str:
    """Text as an HTML parser gives it back: CR and CRLF become LF, NUL is dropped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


@settings(max_examples=400, deadline=None)
@given(ANYTHING)
@example("javascript:alert(1)")
@example("//evil.example/")
@example("?lang=de&next=%2F%2Fevil.example")
@example("?lang=de\tx")
@example("/\\evil.example/")
@example("https://ok.example\\@evil.example/")
def test_safe_href_gives_http_or_a_local_path_or_nothing(value):
    href = safe_href(value)
    assert isinstance(href, str)
    if href:
        assert href == value  # never "cleaned" into some other URL
        assert browser_scheme(href) in ("http", "https", None)
        assert not any(ch in href for ch in "\\\t\n\r\x00 ")
        if browser_scheme(href) is None:  # a path on this site, or this page with another query
            assert href.startswith(("/", "?")) and not href.startswith("//")


@settings(max_examples=300, deadline=None)
@given(ANYTHING, TRICKY)
def test_links_have_only_their_own_attributes(href, text):
    for markup in (link_to(href, text, rel="nofollow"), Markup(link(href, text, rel="nofollow"))):
        tree = html5lib.parseFragment(str(markup), treebuilder="etree",
                                      namespaceHTMLElements=False)
        anchors = tree.findall(".//a")
        assert len(anchors) <= 1
        assert problems(f"<p>{markup}</p>") == []
        for anchor in anchors:
            assert set(anchor.attrib) == {"href", "rel"}
            assert anchor.get("href") == safe_href(href)
            assert "".join(anchor.itertext()) == as_parsed(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(TRICKY, URLISH, st.sampled_from(PAYLOADS)), max_size=6))
def test_typed_text_never_becomes_script(parts):
    html = text_to_html(" ".join(parts))
    assert problems(html) == []
