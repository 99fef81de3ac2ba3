"""Atom 1.0 feeds (RFC 4287) of a project's public posts, for feed readers.

Built with xml.etree, which escapes text and attributes, rather than a feed library: an Atom
feed is a dozen elements, not worth a dependency that pulls in lxml.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import TYPE_CHECKING

from fedsph.core.safe_links import http_url
from fedsph.core.sanitize import clean_html
from fedsph.federation.activitystreams import iso
from fedsph.models import Actor, Object, utcnow

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
TITLE_WORDS = 10
_TAGS = re.compile(r"<[^>]+>")
_TITLE_PARAGRAPH = re.compile(r"^<p><strong>.*?</strong></p>", re.DOTALL)


def entry_title(obj: Object) -> str:
    """The post's title, or its first words when it has none."""
    if obj.name:
        return obj.name
    words = html.unescape(_TAGS.sub(" ", obj.content or "")).split()
    title = " ".join(words[:TITLE_WORDS])
    return title + " …" if len(words) > TITLE_WORDS else title or "Update"


def entry_html(obj: Object) -> str:
    """The content without the bold title paragraph (the entry has a title), then the images."""
    body = _TITLE_PARAGRAPH.sub("", obj.content or "", count=1) if obj.name else obj.content or ""
    # Local content too: rows stored before the linkifier escaped quotes may carry markup.
    body = clean_html(body)
    for image in obj.attachments or []:
        url = http_url(image.get("url"))
        if str(image.get("mediaType", "image/")).startswith("image/") and url:
            body += (f'<p><img src="{html.escape(url, quote=True)}" '
                     f'alt="{html.escape(image.get("name") or "", quote=True)}"></p>')
    return body


def _text(parent: ET.Element, tag: str, text: str, **attributes) -> ET.Element:
    import xml.etree.ElementTree as ET  # imported on use: most processes never write a feed (idle memory)

    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _when(moment: datetime | None) -> str:
    return iso(moment or utcnow())


def build_atom(actor: Actor, posts: list[Object], feed_url: str) -> bytes:
    """The feed document: newest posts first, as UTF-8 XML bytes."""
    import xml.etree.ElementTree as ET  # see above

    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _text(feed, "id", feed_url)
    _text(feed, "title", actor.name or actor.username)
    if actor.summary:
        _text(feed, "subtitle", actor.summary, type="html")
    newest = max((u.updated or u.published for u in posts), default=actor.created_at)
    _text(feed, "updated", _when(newest))
    ET.SubElement(feed, "link", {"rel": "self", "type": "application/atom+xml", "href": feed_url})
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html",
                                 "href": http_url(actor.url) or actor.uri})
    author = ET.SubElement(feed, "author")
    _text(author, "name", actor.name or actor.username)
    _text(author, "uri", actor.url or actor.uri)
    _text(feed, "generator", "fedsph")
    for post in posts:
        entry = ET.SubElement(feed, "entry")
        _text(entry, "id", post.uri)
        _text(entry, "title", entry_title(post))
        _text(entry, "published", _when(post.published))
        _text(entry, "updated", _when(post.updated or post.published))
        ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html",
                                      "href": http_url(post.url) or post.uri})
        if post.summary:
            _text(entry, "summary", post.summary, type="html")
        content = _text(entry, "content", entry_html(post), type="html")
        if post.language:
            content.set("{http://www.w3.org/XML/1998/namespace}lang", post.language)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
