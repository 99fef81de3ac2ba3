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


def retagged(kept: list[str], old_text: str, new_text: str) -> list[str]:
    """A post's hashtags after its text changed: those the old text gave are replaced by those
    of the new text; hashtags given apart from the text (the web form's field) stay."""
    from_old = {name.lower() for name in hashtags(old_text)}
    return merged([h for h in kept if h.lower() not in from_old], hashtags(new_text))
