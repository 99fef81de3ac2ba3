"""A post's fields as people give them, checked and turned into Object columns (pure: no I/O).

`post_columns` is what publish_post and edit_post (fedsph.projects.outbox) store; the checks
raise UserError with a message for people. Events reuse `language_tag` and `clean_place`.
"""

from __future__ import annotations

import html
import re

from fedsph.core import vocab
from fedsph.core.mention_markup import link_mentions
from fedsph.core.safe_links import http_url
from fedsph.core.urls import URLs
from fedsph.errors import N_, UserError
from fedsph.federation.visibility import DIRECT
from fedsph.models import Actor, Media
from fedsph.projects.notes import build_content, clean_hashtag
from fedsph.projects.profile import location_precision, public_location

LANGUAGE_TAG_MAX = 16
VISIBILITIES = ("public", "unlisted", "followers", DIRECT)
MAX_IMAGES = 4  # what Mastodon shows
MAX_TITLE_CHARS = 200
MAX_SUMMARY_CHARS = 500
MAX_HASHTAGS = 20
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def language_tag(tag: str | None) -> str:
    if not tag:
        return ""
    if len(tag) > LANGUAGE_TAG_MAX or not _LANGUAGE_TAG.match(tag):
        raise UserError(N_("%(value)r is not a language tag"), value=tag)
    return tag


def clean_place(place: dict | None, precision: str) -> dict | None:
    """An AS2 Place with a name and/or coordinates; anything else in the dict is dropped.

    Coordinates are rounded to the project's location precision: a settlement that hides where
    it is must not give itself away in a post's place.
    """
    if not place:
        return None
    clean: dict = {"type": "Place"}
    name = str(place.get("name") or "").strip()
    if name:
        clean["name"] = name[:200]
    lat, lon = place.get("latitude"), place.get("longitude")
    if lat is not None or lon is not None:
        try:
            lat, lon = float(lat), float(lon)
        except (TypeError, ValueError):
            raise UserError(N_("a place needs both latitude and longitude as numbers")) from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise UserError(N_("latitude must be within ±90 and longitude within ±180"))
        rounded = public_location({"latitude": lat, "longitude": lon, "precision": precision})
        clean["latitude"], clean["longitude"] = rounded["latitude"], rounded["longitude"]
    if len(clean) == 1:
        raise UserError(N_("a place needs a name or coordinates"))
    return clean


def _check_slug(field: str, slug: str, message_id: str) -> str:
    if not vocab.is_valid(field, slug):
        raise UserError(message_id, value=slug)
    return slug


def post_columns(urls: URLs, actor: Actor, contents: dict, title_map: dict | None,
                 kind: str | None, stage_change: str | None, hashtags, themes,
                 place: dict | None, summary: str | None, media: list[Media],
                 visibility: str) -> dict:
    """Validate a post's fields and turn them into Object column values (no attachments yet).

    Empty translations (a blank language tab) are dropped; the first language left is the primary.
    """
    texts = {language_tag(lang): text.strip() for lang, text in (contents or {}).items()
             if text and text.strip()}
    if not texts:
        raise UserError(N_("an update needs some text"))
    if "" in texts and len(texts) > 1:
        raise UserError(N_("every text of a multilingual update needs its language"))
    primary = next(iter(texts))
    titles = {language_tag(lang): " ".join(t.split()) for lang, t in (title_map or {}).items()
              if t and t.strip()}
    if any(len(t) > MAX_TITLE_CHARS for t in titles.values()):
        raise UserError(N_("a title is limited to %(limit)s characters"), limit=MAX_TITLE_CHARS)
    if visibility not in VISIBILITIES:
        raise UserError(N_("visibility must be one of %(choices)s"), choices=", ".join(VISIBILITIES))
    if kind:
        _check_slug("update_kind", kind, N_("%(value)r is not a known update kind"))
    if stage_change:
        if kind != "milestone":
            raise UserError(N_("only a milestone can change the project's stage"))
        _check_slug("stage", stage_change, N_("%(value)r is not a known stage"))
    if len(media) > MAX_IMAGES:
        raise UserError(N_("an update can carry at most %(limit)s images, not %(count)s"),
                        limit=MAX_IMAGES, count=len(media))
    if any(m.owner_id != actor.id for m in media):
        raise UserError(N_("an image belongs to another project"))
    summary = " ".join((summary or "").split())
    if len(summary) > MAX_SUMMARY_CHARS:
        raise UserError(N_("a content warning is limited to %(limit)s characters"),
                        limit=MAX_SUMMARY_CHARS)

    names = list(dict.fromkeys(clean_hashtag(h) for h in hashtags))
    if len(names) > MAX_HASHTAGS:
        raise UserError(N_("an update can carry at most %(limit)s hashtags"), limit=MAX_HASHTAGS)
    hashtag_tags = [{"type": "Hashtag", "name": "#" + n, "href": f"{urls.base}/tags/{n.lower()}"}
                    for n in names]
    theme_tags = [{"type": "theme", "name": _check_slug("themes", t, N_("%(value)r is not a known theme")),
                   "href": f"{urls.base}/tags/{t}"} for t in dict.fromkeys(themes)]

    def title_for(lang: str) -> str | None:
        return titles.get(lang) or titles.get(primary) or next(iter(titles.values()), None)

    content_map = {lang: build_content(text, title_for(lang), hashtag_tags)
                   for lang, text in texts.items()}
    # Only the titles written: a reader's node falls back to `name` as it does for any text.
    name_map = {lang: titles[lang] for lang in texts if lang in titles}
    return {
        "content": content_map[primary],
        "content_map": content_map if primary else None,
        "language": primary or None,
        "name": title_for(primary),
        "name_map": name_map if primary and name_map else None,
        "kind": kind or None,
        "stage_change": stage_change or None,
        "tags": hashtag_tags + theme_tags or None,
        "place": clean_place(place, location_precision(actor)),
        "summary": html.escape(summary, quote=False) or None,
        "visibility": visibility,
        "source": texts[primary],  # as typed: what the client API's source and edit forms give
    }


def link_mentions_in(columns: dict, author: Actor, mentioned: list[Actor]) -> None:
    """Mentions of stored actors become Mastodon's mention links in every language's content."""
    links = {(a.username.lower(), (a.domain or "").lower()): http_url(a.url) or a.uri
             for a in mentioned}
    if not links:
        return
    columns["content"] = link_mentions(columns["content"], links, author.domain)
    if columns["content_map"]:
        columns["content_map"] = {lang: link_mentions(html, links, author.domain)
                                  for lang, html in columns["content_map"].items()}


def mention_tags(actors: list[Actor]) -> list[dict]:
    """AS2 Mention tags as Mastodon reads them: href is the actor, name is @user@host."""
    tags = {a.uri: {"type": "Mention", "name": f"@{a.username}@{a.domain}", "href": a.uri}
            for a in actors}
    return list(tags.values())
