"""#hashtags in plain text, read the way Mastodon reads them (pure).

One reading for every way a post is written (the client API, the web compose form, the CLI), so
the same text gives the same `Hashtag` tags whichever way it came.
"""

from __future__ import annotations

import re

# A tag starts at the beginning or after a character that cannot be part of a word,
# a URL path or an address, so "a#b" and "x/#frag" are not tags.
_HASHTAG = re.compile(r"(?:^|(?<=[^\w/#&]))#(\w{1,100})(?!\w)")


def hashtags(text: str) -> list[str]:
    """Hashtag names in order of first use, without '#'; names made only of digits are not tags."""
    found: dict[str, str] = {}
    for match in _HASHTAG.finditer(text):
        name = match.group(1)
        if not name.isdigit():
            found.setdefault(name.lower(), name)
    return list(found.values())


def merged(*groups) -> list[str]:
    """Hashtag names from several places (a form field, the text) once each, first spelling kept."""
    found: dict[str, str] = {}
    for group in groups:
        for name in group:
            name = name.strip().lstrip("#")
            if name:
                found.setdefault(name.lower(), name)
    return list(found.values())


def retagged(kept: list[str], old_texts, new_texts) -> list[str]:
    """A post's hashtags after its texts changed (every language's, old and new): a tag the old
    texts named and the new ones do not goes; one the new texts name for the first time comes.
    A #word the texts named before and still name is left as it was: a post written before the
    texts' #words became tags (the web form's, until issue 13) gets none added by an edit that
    leaves them alone. Hashtags given apart from the texts (the web form's field) stay."""
    before = {name.lower() for text in old_texts for name in hashtags(text)}
    after = merged(*(hashtags(text) for text in new_texts))
    gone = before - {name.lower() for name in after}
    return merged([h for h in kept if h.lower() not in gone],
                  [h for h in after if h.lower() not in before])
