"""Pure builders for the Notes we publish (project posts), from their database rows.

A project post goes out as a `Note` because Mastodon shows only Notes in full. The title is
kept in `name`/`nameMap` for fedsph nodes and repeated as a bold first paragraph of every
language's content, so Mastodon readers see it too. Update kind, stage change and theme slugs are
extension terms in the fedsph namespace; themes are also sent as Hashtags so Mastodon links them.
"""

from __future__ import annotations

import html
import re

from fedsph.core.mention_markup import unlink_mentions
from fedsph.core.sanitize import clean_html, link
from fedsph.errors import UserError
from fedsph.federation.activitystreams import AS_CONTEXT, FEDSPH_NS, PUBLIC, iso
from fedsph.models import Actor, Object

# Term definitions for everything a Note or its Create may carry beyond plain AS2: Mastodon's
# `sensitive`, `Hashtag` and `blurhash`, and ours. Inline, so no processor needs to fetch them.
NOTE_CONTEXT: list = [
    AS_CONTEXT,
    {
        "sensitive": "as:sensitive",
        "Hashtag": "as:Hashtag",
        "toot": "http://joinmastodon.org/ns#",
        "blurhash": "toot:blurhash",
        "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
        "fedsph": FEDSPH_NS,
        "updateKind": "fedsph:updateKind",
        "stageChange": "fedsph:stageChange",
        "themes": {"@id": "fedsph:themes", "@container": "@set"},
        "license": {"@id": "fedsph:license", "@type": "@id"},
        "author": "fedsph:author",
    },
]

_BLANK_LINES = re.compile(r"\n\s*\n")
# A URL ends before a space, a quote or an angle bracket (none can be in a URL as typed), and
# before closing punctuation; the rest of the text stays text.
_URL = re.compile(r"(https?://[^\s<>\"]*[^\s<>\".,;:!?)\]'])")
_HASHTAG = re.compile(r"^\w{1,100}$")
# What build_content adds around the text; user text is escaped so it can never produce these.
_TITLE_PARAGRAPH = re.compile(r"^<p><strong>.*?</strong></p>", re.DOTALL)
_HASHTAG_PARAGRAPH = re.compile(r'<p>(<a href="[^"]*" class="mention hashtag"[^>]*>.*?</a> ?)+</p>$',
                                re.DOTALL)
_LINK = re.compile(r"<a [^>]*>(.*?)</a>", re.DOTALL)


def _linkify(block: str) -> str:
    """One paragraph of plain text as HTML: the text escaped, each http(s) URL a link."""
    parts, start = [], 0
    for match in _URL.finditer(block):
        parts.append(html.escape(block[start:match.start()], quote=True))
        url = match.group(1)
        parts.append(link(url, url, rel="nofollow noopener noreferrer"))
        start = match.end()
    parts.append(html.escape(block[start:], quote=True))
    return "".join(parts).replace("\n", "<br>")


def text_to_html(text: str) -> str:
    """Plain text from a form, the CLI or the API as safe HTML: paragraphs, line breaks, links.

    The result goes through the same sanitiser as remote HTML, so a slip here cannot store markup.
    """
    blocks = _BLANK_LINES.split(text.strip())
    return clean_html("".join(f"<p>{_linkify(block.strip())}</p>" for block in blocks))


def clean_hashtag(raw: str) -> str:
    """A hashtag without its '#': letters, digits and underscores, not only digits."""
    name = raw.strip().lstrip("#")
    if not _HASHTAG.match(name) or name.isdigit():
        raise UserError(f"{raw!r} is not a hashtag: use letters, digits and _ only")
    return name


def hashtag_link(tag: dict) -> str:
    """A hashtag as Mastodon writes it in content, so its clients turn it into a tag link."""
    name = html.escape(tag["name"].lstrip("#"), quote=False)
    return (f'<a href="{html.escape(tag["href"], quote=True)}" class="mention hashtag" rel="tag">'
            f"#<span>{name}</span></a>")


def build_content(text: str, title: str | None, hashtags: list[dict]) -> str:
    """One language's HTML: bold title paragraph, the text, then a paragraph of hashtag links."""
    parts = []
    if title:
        parts.append(f"<p><strong>{html.escape(title, quote=False)}</strong></p>")
    parts.append(text_to_html(text))
    if hashtags:
        parts.append("<p>" + " ".join(hashtag_link(t) for t in hashtags) + "</p>")
    return "".join(parts)


def html_to_text(content: str | None) -> str:
    """The plain text a member typed, recovered from content we built (for the edit form)."""
    if not content:
        return ""
    body = _HASHTAG_PARAGRAPH.sub("", _TITLE_PARAGRAPH.sub("", content, count=1), count=1)
    body = _LINK.sub(r"\1", unlink_mentions(body))
    paragraphs = [p for p in re.split(r"</p>\s*<p>", body.removeprefix("<p>").removesuffix("</p>"))]
    return html.unescape("\n\n".join(p.replace("<br>", "\n") for p in paragraphs))


def source_texts(obj: Object) -> dict[str, str]:
    """{language: plain text} of a local post, primary language first ('' when it has none).

    The primary text is the one stored as typed (`source`); a post from before it was kept, and
    other languages, are recovered from their HTML."""
    if not obj.content_map:
        texts = {obj.language or "": html_to_text(obj.content)}
    else:
        texts = {lang: html_to_text(content)
                 for lang, content in primary_first(obj.content_map, obj.language).items()}
    if obj.source is not None and texts:
        texts[next(iter(texts))] = obj.source
    return texts


def primary_first(mapping: dict | None, primary: str | None) -> dict:
    """The same mapping with the primary language's entry first (Mastodon reads the first key)."""
    mapping = mapping or {}
    if primary in mapping:
        return {primary: mapping[primary], **{k: v for k, v in mapping.items() if k != primary}}
    return dict(mapping)


def addressing(actor: Actor, visibility: str) -> tuple[list[str], list[str]]:
    """to/cc as Mastodon reads them: public, unlisted, followers only, or direct (build_note adds
    the mentioned actors, who are all a direct post is addressed to)."""
    if visibility == "direct":
        return [], []
    if visibility == "unlisted":
        return [actor.followers_url], [PUBLIC]
    if visibility == "followers":
        return [actor.followers_url], []
    return [PUBLIC], [actor.followers_url]


def _wire_tags(obj: Object) -> tuple[list[dict], list[str]]:
    """The `tag` list (themes as Hashtags too) and the theme slugs."""
    tags, themes, seen = [], [], set()
    for tag in obj.tags or []:
        if tag.get("type") == "theme":
            themes.append(tag["name"])
            name = "#" + tag["name"]
        else:
            name = tag["name"]
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        tags.append({"type": tag.get("type") if tag.get("type") != "theme" else "Hashtag",
                     "name": name, "href": tag.get("href")})
    return [{k: v for k, v in t.items() if v} for t in tags], themes


def note_collections(uri: str) -> dict:
    """Where a local post's replies, likes and shares are counted (fedsph.web.note_collections).

    `replies` is embedded with a first page, as Mastodon sends it: given only its URL, a
    Mastodon server queues a signed GET of it for every post it receives (create.rb
    fetch_replies, FetchRepliesWorker), while an embedded page is read as it is, and a crawler
    still finds the replies by `next`. Likes and shares are named by URL, as their totals
    change after the Note is sent.
    """
    replies = f"{uri}/replies"
    return {"replies": {"id": replies, "type": "Collection", "first": {
                "type": "CollectionPage", "partOf": replies, "items": [],
                "next": f"{replies}?page=1"}},
            "likes": f"{uri}/likes", "shares": f"{uri}/shares"}


def build_note(obj: Object, actor: Actor) -> dict:
    """The AS2 Note for a local object, without @context (it is embedded in activities).

    Mention tags (`{type: Mention, name: @user@host, href}`) are also cc'd.
    `content` is the primary language, which also comes first in contentMap.
    """
    to, cc = addressing(actor, obj.visibility)
    # Mentioned actors are addressed too: that is how their servers know to notify them.
    mentioned = [t["href"] for t in obj.tags or []
                 if t.get("type") == "Mention" and t.get("href") and t["href"] not in cc + to]
    if obj.visibility == "direct":
        to = to + mentioned
    else:
        cc = cc + mentioned
    content_map = primary_first(obj.content_map, obj.language)
    if obj.language and obj.content is not None:
        content_map[obj.language] = obj.content
        content_map = primary_first(content_map, obj.language)
    tags, themes = _wire_tags(obj)
    note = {
        "id": obj.uri,
        "type": obj.type,
        "attributedTo": actor.uri,
        "name": obj.name,
        "summary": obj.summary,
        "sensitive": bool(obj.summary),
        "content": obj.content,
        "contentMap": content_map or None,
        "nameMap": primary_first(obj.name_map, obj.language) or None,
        "published": iso(obj.published),
        "updated": iso(obj.updated),
        "url": obj.url or obj.uri,
        "to": to,
        "cc": cc,
        "inReplyTo": obj.in_reply_to,
        "tag": tags or None,
        "attachment": list(obj.attachments) if obj.attachments else None,
        "location": obj.place,
        "updateKind": obj.kind,
        "stageChange": obj.stage_change,
        "themes": themes or None,
        **note_collections(obj.uri),
    }
    return {k: v for k, v in note.items() if v is not None}
