"""Pure builders of Mastodon's Status and MediaAttachment entities from fedsph rows.

Mastodon calls followers-only posts `private`; fedsph calls them `followers`. `direct` is
`direct` in both.
"""

from __future__ import annotations

import html
from urllib.parse import quote, urljoin

from fedsph.api.entities import iso, stored_html
from fedsph.core.safe_links import first_http_url, http_url
from fedsph.models import Media, Object
from fedsph.projects.media import file_url, largest_url

VISIBILITY_TO_API = {"public": "public", "unlisted": "unlisted", "followers": "private",
                     "direct": "direct"}
VISIBILITY_FROM_API = {v: k for k, v in VISIBILITY_TO_API.items()}


def _size(width: int, height: int) -> dict:
    return {"width": width, "height": height, "size": f"{width}x{height}",
            "aspect": round(width / height, 4) if height else None}


def media_attachment(media: Media, urls) -> dict:
    """An uploaded image: `url` is the largest rendition, `preview_url` the 320 px one."""
    renditions = media.renditions or {}
    small = renditions.get("320") or min(renditions.values(), key=lambda r: r["width"])
    return {
        "id": str(media.id),
        "type": "image",
        "url": largest_url(media, urls),
        "preview_url": file_url(urls, small["file"]),
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "description": media.alt,
        "blurhash": media.blurhash,
        "meta": {"original": _size(media.width, media.height),
                 "small": _size(small["width"], small["height"])},
    }


def remote_attachment(obj: Object, position: int, document: dict) -> dict:
    """An attachment of a stored remote object, described from its AS2 document."""
    media_type = str(document.get("mediaType") or "")
    kind = next((k for k in ("image", "video", "audio") if media_type.startswith(k + "/")),
                "image" if document.get("type") == "Image" else "unknown")
    url = first_http_url(document.get("url"))
    meta = {}
    if isinstance(document.get("width"), int) and isinstance(document.get("height"), int):
        meta["original"] = _size(document["width"], document["height"])
    return {
        "id": f"{obj.id}{position:02d}",  # stable, and distinct from local media ids in practice
        "type": kind,
        "url": url,
        "preview_url": url,
        "remote_url": url,
        "preview_remote_url": None,
        "text_url": None,
        "description": document.get("name") or None,
        "blurhash": document.get("blurhash"),
        "meta": meta,
    }


def spoiler_text(obj: Object) -> str:
    """Our summaries are stored as escaped text (local) or sanitised HTML (remote)."""
    return spoiler_text_of(obj.summary)


def spoiler_text_of(summary: str | None) -> str:
    """A stored summary (of a post or one of its earlier versions) as the API's spoiler_text."""
    return html.unescape(summary or "")


def hashtags(obj: Object) -> list[dict]:
    """Status::Tag needs a URL: a remote Hashtag without `href` links to its server's tag page."""
    return [{"name": (name := tag["name"].lstrip("#")),
             "url": http_url(tag.get("href")) or urljoin(obj.uri, "/tags/" + quote(name.lower()))}
            for tag in obj.tags or [] if tag.get("type") in ("Hashtag", "theme") and tag.get("name")]


def status(obj: Object, account: dict, media: list[dict], *, replies: int, favourites: int,
           reblogs: int, favourited: bool, reblogged: bool, in_reply_to_id: str | None,
           in_reply_to_account_id: str | None) -> dict:
    """The Status entity; `account` and `media` are already built entities."""
    entity = {
        "id": str(obj.id),
        "uri": obj.uri,
        "url": obj.url or obj.uri,
        "created_at": iso(obj.published),
        "edited_at": iso(obj.updated),
        "account": account,
        "content": stored_html(obj.content),
        "visibility": VISIBILITY_TO_API.get(obj.visibility, "direct"),  # unknown: the narrowest
        "sensitive": bool(obj.summary),
        "spoiler_text": spoiler_text(obj),
        "media_attachments": media,
        "mentions": [],
        "tags": hashtags(obj),
        "emojis": [],
        "reblogs_count": reblogs,
        "favourites_count": favourites,
        "replies_count": replies,
        "favourited": favourited,
        "reblogged": reblogged,
        "muted": False,
        "bookmarked": False,
        "pinned": obj.pinned_at is not None if obj.local else False,
        "in_reply_to_id": in_reply_to_id,
        "in_reply_to_account_id": in_reply_to_account_id,
        "reblog": None,
        "language": obj.language,
        "poll": None,
        "card": None,
        "filtered": [],
    }
    if obj.local:  # optional, never null: Mastodon leaves it out for other servers' posts
        entity["application"] = {"name": "fedsph", "website": None}
    return entity
