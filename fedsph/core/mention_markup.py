"""@mentions in the text of a post: how they are found, and Mastodon's markup that links them.

Pure functions over text and HTML. They are here, not in fedsph.api.text, so that the outbox and
the Note builders can use them without importing the client API (which imports the outbox).
"""

from __future__ import annotations

import re
from html import escape

from fedsph.core.safe_links import http_url

# A mention starts at the beginning or after a character that cannot be part of a word, a URL
# path or an address, so "x.example/@page" and "mail@host" are not mentions.
MENTION = re.compile(
    r"(?:^|(?<=[^\w/@.]))@(\w+(?:[.-]\w+)*)(?:@([A-Za-z0-9.-]+(?::\d{1,5})?[A-Za-z0-9]))?(?![\w@])")


# Mastodon's markup for a mention (app/lib/text_formatter.rb), which its clients turn into a link
# to the account. The handle is shown as typed, so the text can be read back for editing.
MENTION_LINK = ('<span class="h-card" translate="no"><a href="{url}" class="u-url mention">'
                "@<span>{handle}</span></a></span>")
MENTION_LINK_PATTERN = re.compile(
    r'<span class="h-card" translate="no"><a href="[^"]*" class="u-url mention">'
    r"@<span>([^<]*)</span></a></span>")
# Tags and whole links of HTML we built: mentions are linked only in the text between them.
_MARKUP = re.compile(r"(<a [^>]*>.*?</a>|<[^>]+>)", re.DOTALL)


def link_mentions(html: str, urls: dict[tuple[str, str], str], local_domain: str) -> str:
    """Turn each @mention in escaped HTML into Mastodon's mention link.

    `urls` maps (username, domain), lower-cased, to the URL of each resolved actor (its profile
    page, else its id); mentions not in it, or whose URL is not http(s), stay plain text.
    """
    def link(match: re.Match) -> str:
        username, domain = match.group(1), match.group(2) or local_domain
        url = http_url(urls.get((username.lower(), domain.lower())))
        if url is None:
            return match.group(0)
        return MENTION_LINK.format(url=escape(url, quote=True), handle=match.group(0)[1:])

    parts = _MARKUP.split(html)
    return "".join(part if i % 2 else MENTION.sub(link, part) for i, part in enumerate(parts))


def unlink_mentions(html: str) -> str:
    """The reverse of link_mentions: each mention link back to the @handle typed."""
    return MENTION_LINK_PATTERN.sub(r"@\1", html)
