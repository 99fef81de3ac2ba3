"""Pure builders for the Notes we publish, from their database rows."""

from __future__ import annotations

import html
import re

from fedsph.activitystreams import PUBLIC, iso
from fedsph.models import Actor, Object

_BLANK_LINES = re.compile(r"\n\s*\n")
_URL = re.compile(r"(https?://[^\s<]+[^\s<.,;:!?)\]'\"])")


def text_to_html(text: str) -> str:
    """Plain text from a form or the CLI as safe HTML: paragraphs, line breaks, links."""
    paragraphs = []
    for block in _BLANK_LINES.split(text.strip()):
        escaped = html.escape(block.strip(), quote=False)
        linked = _URL.sub(r'<a href="\1" rel="nofollow noopener noreferrer">\1</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>") + "</p>")
    return "".join(paragraphs)


def addressing(actor: Actor, visibility: str) -> tuple[list[str], list[str]]:
    """to/cc as Mastodon reads them: public, unlisted, or followers only."""
    if visibility == "unlisted":
        return [actor.followers_url], [PUBLIC]
    if visibility == "followers":
        return [actor.followers_url], []
    return [PUBLIC], [actor.followers_url]


def build_note(obj: Object, actor: Actor) -> dict:
    """The AS2 Note for a local object, without @context (it is embedded in activities).

    `content` is the primary language, which also comes first in contentMap.
    """
    to, cc = addressing(actor, obj.visibility)
    content_map = {obj.language: obj.content} if obj.language else {}
    for language, content in (obj.content_map or {}).items():
        content_map.setdefault(language, content)
    note = {
        "id": obj.uri,
        "type": obj.type,
        "attributedTo": actor.uri,
        "content": obj.content,
        "published": iso(obj.published),
        "url": obj.url or obj.uri,
        "to": to,
        "cc": cc,
        "sensitive": bool(obj.summary),
        "summary": obj.summary,
        "inReplyTo": obj.in_reply_to,
        "updated": iso(obj.updated),
    }
    if content_map:
        note["contentMap"] = content_map
    return {k: v for k, v in note.items() if v is not None}
