"""Sanitise HTML from elsewhere before we store or show it (nh3, the Ammonia sanitiser)."""

import html
import re

import nh3

from fedsph.core.safe_links import http_url

# The tags Mastodon keeps (app/lib/sanitize_config.rb); anything else is stripped.
ALLOWED_TAGS = {"p", "br", "span", "a", "del", "s", "pre", "blockquote", "code", "b", "strong",
                "u", "i", "em", "ul", "ol", "li"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title", "class"}, "span": {"class"}}
# `translate="no"` keeps a name out of machine translation (Mastodon's mention markup:
# <span class="h-card" translate="no"><a class="u-url mention">@<span>user</span></a></span>);
# like Mastodon, only the value "no" is kept.
ALLOWED_VALUES = {"a": {"translate": {"no"}}, "span": {"translate": {"no"}}}
# As Mastodon's class whitelist: microformats (h-card, u-url, …) and the few classes clients
# style; others are dropped, so a remote post cannot borrow the look of our own page elements.
_MICROFORMAT = re.compile(r"^(h|p|u|dt|e)-[a-z0-9-]+$")
KEPT_CLASSES = {"mention", "hashtag", "ellipsis", "invisible"}


def _kept_class(value: str) -> str | None:
    kept = [c for c in value.split() if c in KEPT_CLASSES or _MICROFORMAT.match(c)]
    return " ".join(kept) or None


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    return _kept_class(value) if attribute == "class" else value


def clean_html(html: str | None) -> str:
    """HTML from anywhere, local text included, reduced to what Mastodon keeps."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        tag_attribute_values=ALLOWED_VALUES,
        attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )


def plain_text(value, limit: int = 500) -> str | None:
    """A short plain-text field from another server (title, alt text, an address line): tags
    stripped, entities decoded, whitespace folded. Pages escape it when they show it."""
    if not isinstance(value, str):
        return None
    text = " ".join(nh3.clean(value, tags=set()).split())
    return html.unescape(text)[:limit] or None


def link(href: object, text: str, **attributes: str) -> str:
    """`<a href>` around text, every value escaped; only the escaped text if href is not http(s).

    The one way Python code builds a link from data: fedsph.core.safe_links decides what is a link.
    """
    url = http_url(href)
    if url is None:
        return html.escape(text, quote=True)
    extra = "".join(f' {name.replace("_", "-")}="{html.escape(value, quote=True)}"'
                    for name, value in attributes.items())
    return f'<a href="{html.escape(url, quote=True)}"{extra}>{html.escape(text, quote=True)}</a>'
