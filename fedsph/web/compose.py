"""Writing updates from the web: compose, edit, delete, pin. Works without JavaScript.

The form is multipart (photos). Its parts are streamed: each image is refused as soon as it
passes the configured size, and whatever went wrong, the form comes back with the member's text
in it. Images that were accepted are kept (ticked) so they need not be sent again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict
from sqlalchemy import select

from fedsph.core import vocab
from fedsph.core.hashtags import hashtags, merged
from fedsph.errors import NotFound, PayloadTooLarge, UserError
from fedsph.models import Actor, Media, Object
from fedsph.projects import outbox
from fedsph.projects.media import MediaError, read_limited, save_upload
from fedsph.projects.media import src as media_src
from fedsph.web.auth_middleware import local_actor_or_404, read_form, require_member
from fedsph.web.documents import forget_actor
from fedsph.web.keys import DOCUMENTS, MULTIPART, READERS, SETTINGS, URLS, WRITERS
from fedsph.web.render import error_message, html_response

IMAGE_SLOTS = (1, 2, 3, 4)
TEXT_PART_MAX = 64 * 1024  # bytes in one text field: far more than any update
MAX_PARTS = 200
DEFAULT_LICENSE = "CC-BY-4.0"
# Tabs offered after the project's own languages (the interface languages; Spanish first, as
# most projects on the first nodes write in it).
TAB_LANGUAGES = ("es", "en", "fr", "pt")


@dataclass
class Upload:
    name: str
    data: bytes

    @property
    def slot(self) -> int:
        return int(self.name.rsplit("_", 1)[1])


async def read_multipart(request: web.Request, max_bytes: int, file_names: frozenset[str]
                         ) -> tuple[MultiDict, list[Upload], dict[str, str]]:
    """(text fields, uploaded files, errors) of a posted form, streamed part by part.

    Only files named in `file_names` are read, each refused once it passes max_bytes (the error
    is recorded under its name and the rest of the form is still read, so nothing typed is lost).
    """
    reader = request.get(MULTIPART)
    if reader is None:  # a URL-encoded post (no files): already parsed by the CSRF check
        return await read_form(request), [], {}
    fields, uploads, errors = MultiDict(), [], {}
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            break
        name = part.name or ""
        if part.filename is not None:
            if name not in file_names:
                continue  # not one of our inputs: skipped unread (next() drains it)
            try:
                data = await read_limited(part, max_bytes)
            except MediaError as exc:
                errors[name] = error_message(request, exc)
                continue
            if data:
                uploads.append(Upload(name, data))
            continue
        value = await part.read_chunk(TEXT_PART_MAX + 1)
        if len(value) > TEXT_PART_MAX or await part.read_chunk(1):
            raise PayloadTooLarge(f"the field {name!r} is too long")
        fields.add(name, value.decode("utf-8", errors="replace"))
    return fields, uploads, errors


IMAGE_FIELDS = frozenset(f"image_{n}" for n in IMAGE_SLOTS)


def form_languages(actor: Actor, obj: Object | None = None) -> list[str]:
    """Language tabs: the project's languages first, then the interface languages."""
    languages = list((actor.profile or {}).get("languages") or [])
    if obj is not None:
        languages += list(obj.content_map or {}) + [obj.language or ""]
    return [lang for lang in dict.fromkeys([*languages, *TAB_LANGUAGES]) if lang]


def post_fields_from_form(form: MultiDict, languages: list[str]) -> dict:
    """publish_post's keyword arguments from the posted form (validation happens there)."""
    filled = [lang for lang in languages if form.get(f"text_{lang}", "").strip()]
    chosen = form.get("primary")
    primary = chosen if chosen in filled else (filled[0] if filled else None)
    order = [primary, *[lang for lang in filled if lang != primary]] if primary else []
    place = {"name": form.get("place_name", "").strip(),
             "latitude": form.get("place_lat", "").strip() or None,
             "longitude": form.get("place_lon", "").strip() or None}
    return {
        "contents": {lang: form[f"text_{lang}"] for lang in order},
        "title_map": {lang: form[f"title_{lang}"] for lang in languages
                      if form.get(f"title_{lang}", "").strip()},
        "kind": form.get("kind") or None,
        "stage_change": form.get("stage_change") or None,
        # The field's hashtags, then those typed in the texts, read as the client API reads them.
        "hashtags": merged([h for h in re.split(r"[\s,]+", form.get("hashtags", "")) if h.strip("#")],
                           *(hashtags(form[f"text_{lang}"]) for lang in order)),
        "themes": form.getall("themes", []),
        "place": place if any(place.values()) else None,
        "summary": form.get("summary") or None,
        "visibility": form.get("visibility") or "public",
    }


def form_from_post(fields: dict) -> MultiDict:
    """The edit form's initial values, from outbox.editable_post_fields."""
    form = MultiDict()
    contents = fields["contents"]
    for lang, text in contents.items():
        form.add(f"text_{lang}", text)
    for lang, title in (fields["title_map"] or {}).items():
        form.add(f"title_{lang}", title or "")
    form.add("primary", next(iter(contents), ""))
    for key in ("kind", "stage_change", "summary", "visibility"):
        form.add(key, fields.get(key) or "")
    # The field holds only the hashtags the texts do not name: the texts' own come back from
    # them when the form is saved, so taking one out of a text takes it off the post.
    typed = {h.lower() for text in contents.values() for h in hashtags(text)}
    form.add("hashtags", " ".join("#" + h for h in fields["hashtags"] if h.lower() not in typed))
    for theme in fields["themes"]:
        form.add("themes", theme)
    place = fields.get("place") or {}
    form.add("place_name", place.get("name", ""))
    form.add("place_lat", str(place.get("latitude", "")))
    form.add("place_lon", str(place.get("longitude", "")))
    return form


async def _object_or_404(request: web.Request, actor: Actor) -> Object:
    uri = request.app[URLS].object(request.match_info["object_id"])
    async with request.app[READERS]() as db:
        obj = await db.scalar(select(Object).where(
            Object.uri == uri, Object.actor_id == actor.id, Object.local.is_(True),
            Object.deleted_at.is_(None)))
    if obj is None:
        raise NotFound("no such update by this project")
    return obj


async def _kept_media(request: web.Request, actor: Actor, keys: list[str],
                      obj: Object | None) -> list[Media]:
    """The images the member ticked to keep: this actor's, and free or already on this update."""
    if not keys:
        return []
    async with request.app[READERS]() as db:
        rows = {m.key: m for m in await db.scalars(select(Media).where(
            Media.key.in_(keys), Media.owner_id == actor.id))}
    allowed = (None, obj.id if obj else None)
    return [rows[k] for k in dict.fromkeys(keys) if k in rows and rows[k].object_id in allowed]


async def render_form(request: web.Request, actor: Actor, form: MultiDict, *, obj=None,
                      media=(), errors=None, status: int = 200) -> web.Response:
    settings, urls = request.app[SETTINGS], request.app[URLS]
    async with request.app[READERS]() as db:
        recent = list(await db.scalars(
            select(Object).where(Object.actor_id == actor.id, Object.local.is_(True),
                                 Object.deleted_at.is_(None), Object.in_reply_to.is_(None))
            .order_by(Object.published.desc()).limit(10)))
    return html_response(
        request, "compose.html", status=status, actor=actor, form=form, obj=obj,
        errors=errors or {}, languages=form_languages(actor, obj),
        kept=[(m, media_src(m, urls)) for m in media], slots=IMAGE_SLOTS,
        free_slots=IMAGE_SLOTS[:max(0, len(IMAGE_SLOTS) - len(media))],
        default_license=DEFAULT_LICENSE, recent=recent, vocab_choices=vocab.VOCABULARIES.get,
        max_upload_mb=round(settings.max_upload_bytes / (1024 * 1024), 1),
        object_path=lambda o: o.uri[len(urls.base):], done=request.query.get("done"))


async def _save(request: web.Request, actor: Actor, obj: Object | None) -> web.Response:
    """Shared by compose and edit: store the photos, then publish or edit in one transaction."""
    settings, urls = request.app[SETTINGS], request.app[URLS]
    form, uploads, errors = await read_multipart(request, settings.max_upload_bytes,
                                                  IMAGE_FIELDS)
    media = await _kept_media(request, actor, form.getall("keep_media", []), obj)
    too_large = bool(errors)
    for upload in uploads:
        n = upload.slot
        try:
            # One short transaction per photo: the resizing runs before the write lock is taken.
            async with request.app[WRITERS]() as db, db.begin():
                media.append(await save_upload(
                    db, settings, actor, upload.data, form.get(f"alt_{n}"),
                    form.get(f"license_{n}") or DEFAULT_LICENSE, form.get(f"author_{n}"),
                    position=len(media)))
        except MediaError as exc:
            errors[f"image_{n}"] = error_message(request, exc)
    if not errors:
        try:
            fields = post_fields_from_form(form, form_languages(actor, obj))
            async with request.app[WRITERS]() as db, db.begin():
                author = await db.get(Actor, actor.id)
                rows = [await db.get(Media, m.id) for m in media]
                if obj is None:
                    obj = await outbox.publish_post(db, urls, author, media=rows, **fields)
                else:
                    obj = await outbox.edit_post(db, urls, author, await db.get(Object, obj.id),
                                                   media=rows, **fields)
            forget_actor(request.app[DOCUMENTS], actor.username)  # a milestone may change the stage
            raise web.HTTPSeeOther(obj.uri[len(urls.base):])
        except UserError as exc:
            errors["form"] = error_message(request, exc)
    return await render_form(request, actor, form, obj=obj, media=media, errors=errors,
                             status=413 if too_large else 400)


async def compose_page(request: web.Request) -> web.Response:
    actor = await _member_actor(request)
    return await render_form(request, actor, MultiDict())


async def compose_submit(request: web.Request) -> web.Response:
    actor = await _member_actor(request)
    return await _save(request, actor, None)


async def edit_page(request: web.Request) -> web.Response:
    actor = await _member_actor(request)
    obj = await _object_or_404(request, actor)
    async with request.app[READERS]() as db:
        fields = await outbox.editable_post_fields(db, obj)
    return await render_form(request, actor, form_from_post(fields), obj=obj,
                             media=fields["media"])


async def edit_submit(request: web.Request) -> web.Response:
    actor = await _member_actor(request)
    return await _save(request, actor, await _object_or_404(request, actor))


async def delete_submit(request: web.Request) -> web.Response:
    actor = await _member_actor(request)
    obj = await _object_or_404(request, actor)
    async with request.app[WRITERS]() as db, db.begin():
        await outbox.delete_post(db, request.app[URLS], await db.get(Actor, actor.id),
                                 await db.get(Object, obj.id))
    raise web.HTTPSeeOther(f"/actors/{actor.username}/compose?done=deleted")


async def pin_submit(request: web.Request) -> web.Response:
    actor = await _member_actor(request)
    obj = await _object_or_404(request, actor)
    pin = (await read_form(request)).get("pin") == "1"
    async with request.app[WRITERS]() as db, db.begin():
        author, row = await db.get(Actor, actor.id), await db.get(Object, obj.id)
        if pin:
            await outbox.pin_post(db, author, row, request.app[URLS])
        else:
            await outbox.unpin_post(db, author, row, request.app[URLS])
    raise web.HTTPSeeOther(f"/actors/{actor.username}/compose?done={'pinned' if pin else 'unpinned'}")


async def _member_actor(request: web.Request) -> Actor:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    return actor


def add_routes(app: web.Application) -> None:
    app.router.add_get("/actors/{username}/compose", compose_page)
    app.router.add_post("/actors/{username}/compose", compose_submit)
    update = "/actors/{username}/updates/{object_id}"
    app.router.add_get(update + "/edit", edit_page)
    app.router.add_post(update + "/edit", edit_submit)
    app.router.add_post(update + "/delete", delete_submit)
    app.router.add_post(update + "/pin", pin_submit)
