"""Sanitise HTML from elsewhere before we store or show it (nh3, the Ammonia sanitiser)."""

import nh3

# The tags Mastodon keeps (app/lib/sanitize_config.rb); anything else is stripped.
ALLOWED_TAGS = {"p", "br", "span", "a", "del", "s", "pre", "blockquote", "code", "b", "strong",
                "u", "i", "em", "ul", "ol", "li"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title", "class"}, "span": {"class"}}


def clean_html(html: str | None) -> str:
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
