"""What an app reads about the server: instance v1 and v2, peers, custom emojis (none)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import distinct, func, select

from fedsph import __version__
from fedsph.api.entities import MISSING_IMAGE
from fedsph.api.errors import api_json
from fedsph.core.vocab import UI_LANGUAGES
from fedsph.models import Actor, Object, User
from fedsph.web.keys import READERS, SETTINGS, URLS

# Mastodon.py and apps compare the first word to Mastodon versions to know what they may call.
# 4.2, not 4.3: apps take 4.3 to mean its new endpoints (grouped notifications) are there.
# Hence no `api_versions` in instance v2 either: Mastodon added it in 4.3.0 for the API changes
# made from then on, and a 4.2 server has none (Mastodon.py reads an absent one as version 0).
COMPATIBLE_API_VERSION = "4.2.0"
MAX_CHARACTERS = 5000
MAX_MEDIA = 4
IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"]


def version() -> str:
    short = ".".join(__version__.split(".")[:2])
    return f"{COMPATIBLE_API_VERSION} (compatible; fedsph {short})"


def streaming_url(base: str) -> str:
    """Where apps open the streaming API (fedsph/api/streaming.py, served by every `fedsph
    serve`): this node's public URL with ws:// for http:// and wss:// for https://, so a node
    behind a TLS proxy is reached through it. Apps add /api/v1/streaming to it."""
    if base.startswith(("http://", "https://")):
        return "ws" + base[len("http"):].rstrip("/")
    return base


def _configuration(settings, base: str) -> dict:
    return {
        "urls": {"streaming": streaming_url(base)},
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 5},
        "statuses": {"max_characters": MAX_CHARACTERS, "max_media_attachments": MAX_MEDIA,
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": IMAGE_TYPES,
                              "image_size_limit": settings.max_upload_bytes,
                              "image_matrix_limit": 16_777_216,
                              "video_size_limit": 0, "video_frame_rate_limit": 0,
                              "video_matrix_limit": 0},
        "polls": {"max_options": 0, "max_characters_per_option": 0,
                  "min_expiration": 0, "max_expiration": 0},
        "translation": {"enabled": False},
    }


async def _stats(request: web.Request) -> dict[str, int]:
    async with request.app[READERS]() as db:
        users = await db.scalar(select(func.count(User.id))) or 0
        statuses = await db.scalar(select(func.count(Object.id)).join(
            Actor, Actor.id == Object.actor_id).where(
            Actor.local.is_(True), Object.deleted_at.is_(None))) or 0
        domains = await db.scalar(select(func.count(distinct(Actor.domain))).where(
            Actor.local.is_(False))) or 0
    return {"user_count": users, "status_count": statuses, "domain_count": domains}


def _description(settings) -> str:
    return (f"{settings.node_name}: a fedsph node where housing projects publish their "
            "progress to the fediverse.")


async def instance_v1(request: web.Request) -> web.Response:
    settings, base = request.app[SETTINGS], request.app[URLS].base
    return api_json({
        "uri": settings.domain, "title": settings.node_name,
        "short_description": _description(settings), "description": _description(settings),
        "email": "", "version": version(), "urls": {"streaming_api": streaming_url(base)},
        "stats": await _stats(request), "thumbnail": base + MISSING_IMAGE,
        "languages": list(UI_LANGUAGES), "registrations": False, "approval_required": False,
        "invites_enabled": True, "configuration": _configuration(settings, base),
        "contact_account": None, "rules": [],
    })


async def instance_v2(request: web.Request) -> web.Response:
    settings, base = request.app[SETTINGS], request.app[URLS].base
    stats = await _stats(request)
    return api_json({
        "domain": settings.domain, "title": settings.node_name, "version": version(),
        "source_url": base + "/",  # no public repository yet: the node itself
        "description": _description(settings),
        "usage": {"users": {"active_month": stats["user_count"]}},
        "thumbnail": {"url": base + MISSING_IMAGE},  # blurhash and versions: optional
        "icon": [], "languages": list(UI_LANGUAGES),
        "configuration": _configuration(settings, base),
        "registrations": {"enabled": False, "approval_required": False, "message": None,
                          "url": None},
        "contact": {"email": "", "account": None},
        "rules": [],
    })


async def peers(request: web.Request) -> web.Response:
    async with request.app[READERS]() as db:
        domains = await db.scalars(select(distinct(Actor.domain)).where(
            Actor.local.is_(False)).order_by(Actor.domain))
        return api_json(list(domains))


async def custom_emojis(request: web.Request) -> web.Response:
    return api_json([])
