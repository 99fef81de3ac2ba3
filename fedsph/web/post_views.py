"""Project updates as pages show them: the translation picked, the title out of the content,
themes labelled, and images (our own renditions or those another server sent)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from fedsph.core.safe_links import http_url
from fedsph.core.vocab import label
from fedsph.federation.activitystreams import as_list, get_id
from fedsph.models import Actor, Media, Object
from fedsph.projects import media as media_files
from fedsph.projects import queries
from fedsph.web.hrefs import page_href, with_query
from fedsph.web.languages import language_name, translated


@dataclass
class Image:
    src: str
    alt: str
    width: int | None = None
    height: int | None = None
    srcset: str | None = None


@dataclass
class PostView:
    obj: Object
    author: Actor
    href: str  # where this update is read on this node
    author_href: str
    author_name: str
    title: str | None
    content: str
    lang: str | None
    others: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, name, href)
    kind: str | None = None
    stage_change: str | None = None
    tags: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


def _number(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def local_images(media: list[Media], urls) -> list[Image]:
    """Our own uploads: the small rendition as src, the others in srcset."""
    return [Image(media_files.src(item, urls), item.alt or "", item.width, item.height,
                  media_files.srcset(item, urls)) for item in media if item.renditions]


def remote_images(attachments) -> list[Image]:
    """Images among an object's attachments as sent (Mastodon sends Document with an image type)."""
    images = []
    for item in as_list(attachments):
        if not isinstance(item, dict):
            continue
        media_type = str(item.get("mediaType") or "")
        if item.get("type") != "Image" and not media_type.startswith("image/"):
            continue
        url = item.get("url")
        src = get_id(url) if not isinstance(url, list) else get_id(next(
            (u for u in url if isinstance(u, dict) and str(u.get("mediaType", "")).startswith("image/")),
            url[0] if url else None))
        if not http_url(src):
            continue
        alt = item.get("name") if isinstance(item.get("name"), str) else ""
        images.append(Image(src, alt, _number(item.get("width")), _number(item.get("height"))))
    return images[:8]


def post_view(obj: Object, author: Actor, lang: str, media: list[Media], urls,
              show: str | None = None) -> PostView:
    content_map = obj.content_map if isinstance(obj.content_map, dict) else {}
    if show and show in content_map:
        content, shown = content_map[show], show
    else:
        content, shown = translated(content_map, lang, obj.content, obj.language)
    title, _title_lang = translated(obj.name_map, shown or lang, obj.name)
    href = page_href(obj)
    others = [(tag, language_name(tag), with_query(href, show=tag))
              for tag in content_map if tag != shown]
    # Hashtags are links inside the content already (for Mastodon); themes are not.
    tags = [label("themes", tag["name"], lang) for tag in as_list(obj.tags)
            if isinstance(tag, dict) and tag.get("type") == "theme" and isinstance(tag.get("name"), str)]
    if title and content:
        # fedsph repeats the title as a bold first paragraph for Mastodon; here it is the heading.
        content = content.removeprefix(f"<p><strong>{html.escape(title, quote=False)}</strong></p>")
    attachments = obj.attachments if obj.attachments is not None else (obj.document or {}).get("attachment")
    images = local_images(media, urls) if media else remote_images(attachments)
    return PostView(
        obj=obj, author=author, href=href, author_href=page_href(author),
        author_name=translated(author.name_map, lang, author.name or author.username)[0], title=title, content=content or "", lang=shown,
        others=others, kind=label("update_kind", obj.kind, lang) if obj.kind else None,
        stage_change=label("stage", obj.stage_change, lang) if obj.stage_change else None,
        tags=tags, images=images)


async def post_views(db, pairs: list[tuple[Object, Actor]], lang: str, urls) -> list[PostView]:
    media = await queries.media_for(db, [obj.id for obj, _ in pairs if obj.local])
    return [post_view(obj, author, lang, media.get(obj.id, []), urls) for obj, author in pairs]
