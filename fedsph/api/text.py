"""What a status's plain text names: #hashtags and @mentions, read the way Mastodon reads them.

Pure functions: the caller decides which mentioned accounts exist (only stored actors count,
nothing is fetched while an app waits for its answer). link_mentions writes the resolved ones
into the status's HTML as Mastodon does.
"""

from __future__ import annotations

# Hashtag and mention parsing live outside fedsph.api so the outbox, the web compose form and
# the CLI read a text the same way.
from fedsph.core.hashtags import hashtags
from fedsph.core.mention_markup import MENTION as _MENTION
from fedsph.core.mention_markup import link_mentions, unlink_mentions


def mentions(text: str, local_domain: str) -> list[tuple[str, str]]:
    """(username, domain) of each @user or @user@host, in order, once; bare @user is local."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for match in _MENTION.finditer(text):
        username, domain = match.group(1), (match.group(2) or local_domain)
        found.setdefault((username.lower(), domain.lower()), (username, domain))
    return list(found.values())


__all__ = ["hashtags", "link_mentions", "mentions", "unlink_mentions"]
