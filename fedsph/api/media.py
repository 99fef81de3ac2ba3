"""Media uploads from apps: POST /api/v1|v2/media, GET and PUT /api/v1/media/:id.

Images are processed while the request waits (fedsph.projects.media.save_upload), so v2 answers 200 with
a ready attachment, never 202. The description is the image's alt text. Apps upload first and
describe later (PUT), so an upload may come without one; fedsph requires it when the image is
posted (fedsph.api.statuses refuses a status with an undescribed image). The licence defaults to
CC-BY-4.0 with the acting account's name as author.
"""

from __future__ import annotations

from aiohttp import web

from fedsph.api.errors import ApiError, api_json, not_found
from fedsph.api.params import get_by_id, read_params
from fedsph.api.status_entities import media_attachment
from fedsph.api.tokens import Caller, require_account
from fedsph.models import Media
from fedsph.projects.media import MediaError, clean_alt, read_limited, save_upload
from fedsph.web.keys import READERS, SETTINGS, URLS, WRITERS

DEFAULT_LICENSE = "CC-BY-4.0"
MAX_PARTS = 10
TEXT_PART_MAX = 4096


async def _read_upload(request: web.Request) -> tuple[bytes | None, dict[str, str]]:
    """The `file` part and the text fields of a multipart upload, read part by part."""
    if request.content_type != "multipart/form-data":
        raise ApiError(422, "Validation failed: File can't be blank")
    reader = await request.multipart()
    data, fields = None, {}
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            break
        if part.filename is not None:
            if part.name == "file" and data is None:
                try:
                    data = await read_limited(part, request.app[SETTINGS].max_upload_bytes)
                except MediaError as exc:
                    raise ApiError(413, str(exc)) from None
            continue  # a thumbnail (for video and audio) has no use here
        value = await part.read_chunk(TEXT_PART_MAX + 1)
        if len(value) > TEXT_PART_MAX:
            raise ApiError(422, f"Validation failed: {part.name} is too long")
        fields[part.name or ""] = value.decode("utf-8", errors="replace")
    return data, fields


async def upload(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:media")
    data, fields = await _read_upload(request)
    if not data:
        raise ApiError(422, "Validation failed: File can't be blank")
    actor = caller.actor
    try:
        async with request.app[WRITERS]() as db, db.begin():
            media = await save_upload(db, request.app[SETTINGS], actor, data,
                                      fields.get("description"), DEFAULT_LICENSE,
                                      actor.name or actor.username, alt_later=True)
    except MediaError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    return api_json(media_attachment(media, request.app[URLS]))


async def _own_media(db, caller: Caller, raw: str) -> Media:
    media = await get_by_id(db, Media, raw)
    if media is None or media.owner_id != caller.actor.id:
        raise not_found()
    return media


async def get_media(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:media")
    async with request.app[READERS]() as db:
        media = await _own_media(db, caller, request.match_info["id"])
    return api_json(media_attachment(media, request.app[URLS]))


async def update_media(request: web.Request) -> web.Response:
    """Change the description of an image not yet attached to a post (as on Mastodon)."""
    caller = await require_account(request, "write:media")
    params = await read_params(request)
    async with request.app[WRITERS]() as db, db.begin():
        media = await _own_media(db, caller, request.match_info["id"])
        if "description" in params:
            if media.object_id is not None:
                raise ApiError(422, "Validation failed: the image is already in a post; "
                                    "edit the post instead")
            try:
                media.alt = clean_alt(params["description"])
            except MediaError as exc:
                raise ApiError(422, f"Validation failed: {exc}") from None
    return api_json(media_attachment(media, request.app[URLS]))

