"""The project profile form: every field of fedsph/projects/profile.py, translations per language.

Each field is checked on its own so that every problem is shown next to its field, with what the
member typed left in place. Saving goes through profile.set_profile, which sends Update(actor).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web
from multidict import MultiDict

from fedsph.core import vocab
from fedsph.errors import UserError
from fedsph.i18n import N_
from fedsph.models import Actor
from fedsph.projects import profile
from fedsph.projects.media import MediaError, largest_url, save_upload
from fedsph.projects.notes import html_to_text
from fedsph.web.auth_middleware import local_actor_or_404, require_member
from fedsph.web.compose import form_languages, read_multipart
from fedsph.web.documents import forget_actor
from fedsph.web.keys import DOCUMENTS, SETTINGS, URLS, WRITERS
from fedsph.web.render import error_message, html_response

TEXTS = ("name", "summary", "description")
CHECKBOX_FIELDS = ("approach", "tenure", "financing", "themes")
NUMBER_FIELDS = ("homes_completed", "homes_planned", "start_year", "completion_year")
SELECT_FIELDS = {"settlement_type": "settlement_type", "region": "region"}
EXTRA_ROWS = 2  # empty partner and link rows offered below the filled ones
IMAGE_INPUTS = frozenset({"icon_file", "header_file"})


def _rows(form: MultiDict, prefix: str, keys: tuple[str, ...]) -> list[dict]:
    """Numbered rows (partner_name_0, partner_role_0, …) as dicts; empty rows dropped."""
    numbers = sorted({int(m.group(1)) for k in form
                      if (m := re.fullmatch(rf"{prefix}_[a-z]+_([0-9]{{1,2}})", k))})
    rows = []
    for n in numbers:
        row = {key: form.get(f"{prefix}_{key}_{n}", "").strip() for key in keys}
        if any(row.values()):
            rows.append({k: v for k, v in row.items() if v})
    return rows


def _history(text: str) -> list[dict]:
    """Lines such as `2021-03-01 building` (date, then stage slug)."""
    entries = []
    for line in text.splitlines():
        if line.strip():
            when, _, stage = line.strip().partition(" ")
            entries.append({"date": when, "stage": stage.strip()})
    return entries


def _texts(form: MultiDict, field: str) -> dict[str, str]:
    return {key.split("_", 1)[1]: value.strip() for key, value in form.items()
            if key.startswith(field + "_") and value.strip()}


def changes_from_form(form: MultiDict, actor: Actor) -> tuple[dict, dict[str, str | UserError]]:
    """(changes for profile.set_profile, errors by form field: N_ texts or the exceptions)."""
    current = actor.profile or {}
    changes: dict = {}
    errors: dict[str, str | UserError] = {}

    def check(field: str, raw, error_key: str | None = None):
        try:
            changes[field] = profile.validate_field(field, raw)
        except UserError as exc:
            errors[error_key or field] = exc

    check("languages", [t for t in re.split(r"[\s,]+", form.get("languages", "")) if t])
    for field in TEXTS:
        texts = _texts(form, field)
        try:
            changes[field] = profile.text_map(field, texts) if texts else {}
        except UserError as exc:
            errors[field] = exc
    if "name" not in errors and not changes.get("name"):
        errors["name"] = N_("A project needs a name.")
    check("stage_history", _history(form.get("stage_history", "")))
    stage = form.get("stage") or None
    if stage != current.get("stage"):
        if stage:
            when = form.get("stage_date", "").strip() or datetime.now(UTC).date().isoformat()
            try:  # validated as a history entry: the slug and the date both
                profile.validate_field("stage_history", [{"stage": stage, "date": when}])
                changes["stage"] = {"stage": stage, "date": when}
            except UserError as exc:
                errors["stage"] = exc
        else:
            changes["stage"] = None
    for field in CHECKBOX_FIELDS:
        check(field, form.getall(field, []))
    for field in ("households", "inhabitants"):
        value = form.get(f"{field}_value", "").strip()
        check(field, {"value": value, "as_of": form.get(f"{field}_as_of", "").strip()}
              if value else None)
    for field in (*NUMBER_FIELDS, *SELECT_FIELDS, "country"):
        check(field, form.get(field, "").strip() or None)
    location = {"name": form.get("location_name", "").strip(),
                "latitude": form.get("location_lat", "").strip(),
                "longitude": form.get("location_lon", "").strip()}
    check("location", {**location, "precision": form.get("location_precision") or None}
          if any(location.values()) else None)
    check("partners", _rows(form, "partner", ("name", "role", "url")))
    check("links", _rows(form, "link", ("kind", "url", "title")))
    for image in ("icon", "header"):
        url = form.get(f"{image}_url", "").strip()
        try:
            changes[image] = profile.http_url(image, url) if url else None
        except UserError as exc:
            errors[image] = exc
    return changes, errors


def form_from_actor(actor: Actor) -> MultiDict:
    """The form's initial values from the stored profile."""
    current = actor.profile or {}
    primary = profile.primary_language(current)
    form = MultiDict(languages=", ".join(current.get("languages") or []))
    for lang, text in (actor.name_map or {primary: actor.name or ""}).items():
        form.add(f"name_{lang}", text)
    summaries = actor.summary_map or ({primary: actor.summary} if actor.summary else {})
    for lang, text in summaries.items():
        form.add(f"summary_{lang}", html_to_text(text))
    for lang, text in (current.get("description_map") or {}).items():
        form.add(f"description_{lang}", text)
    form.add("stage", current.get("stage") or "")
    form.add("stage_history", "\n".join(f"{e['date']} {e['stage']}"
                                        for e in current.get("stage_history") or []))
    for field in CHECKBOX_FIELDS:
        for slug in current.get(field) or []:
            form.add(field, slug)
    for field in ("households", "inhabitants"):
        counted = current.get(field) or {}
        form.add(f"{field}_value", str(counted.get("value", "")))
        form.add(f"{field}_as_of", counted.get("as_of", ""))
    for field in (*NUMBER_FIELDS, *SELECT_FIELDS, "country"):
        value = current.get(field)
        form.add(field, "" if value is None else str(value))
    location = current.get("location") or {}
    form.add("location_name", location.get("name", ""))
    form.add("location_lat", str(location.get("latitude", "")))
    form.add("location_lon", str(location.get("longitude", "")))
    form.add("location_precision", location.get("precision", profile.DEFAULT_PRECISION))
    for prefix, rows in (("partner", current.get("partners")), ("link", current.get("links"))):
        for n, row in enumerate(rows or []):
            for key, value in row.items():
                form.add(f"{prefix}_{key}_{n}", value)
    form.add("icon_url", actor.icon_url or "")
    form.add("header_url", actor.header_url or "")
    return form


def _row_count(form: MultiDict, prefix: str) -> int:
    # Two ASCII digits at most, as _rows reads: a posted "partner_name_99999999" must not make
    # the page render a hundred million empty rows.
    numbers = [int(m.group(1)) for k in form
               if (m := re.fullmatch(rf"{prefix}_[a-z]+_([0-9]{{1,2}})", k))]
    return (max(numbers) + 1 if numbers else 0) + EXTRA_ROWS


def _text_languages(actor: Actor, form: MultiDict) -> list[str]:
    posted = [k.split("_", 1)[1] for k in form if k.split("_", 1)[0] in TEXTS and "_" in k]
    return list(dict.fromkeys([*form_languages(actor), *posted]))


def render(request: web.Request, actor: Actor, form: MultiDict, errors=None, status=200,
           saved=False) -> web.Response:
    return html_response(
        request, "profile_edit.html", status=status, actor=actor, form=form,
        errors=errors or {}, saved=saved, languages=_text_languages(actor, form),
        vocab_choices=vocab.VOCABULARIES.get, checkbox_fields=CHECKBOX_FIELDS,
        partner_rows=range(_row_count(form, "partner")), link_rows=range(_row_count(form, "link")))


async def edit_page(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    return render(request, actor, form_from_actor(actor), saved=request.query.get("done") == "saved")


async def edit_submit(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    settings, urls = request.app[SETTINGS], request.app[URLS]
    form, uploads, errors = await read_multipart(request, settings.max_upload_bytes, IMAGE_INPUTS)
    changes, field_errors = changes_from_form(form, actor)
    errors.update({field: error_message(request, error) if isinstance(error, UserError) else error
                   for field, error in field_errors.items()})
    for upload in uploads if not errors else ():
        image = upload.name.removesuffix("_file")
        try:
            async with request.app[WRITERS]() as db, db.begin():
                media = await save_upload(db, settings, actor, upload.data,
                                          f"{actor.name or actor.username} ({image})",
                                          "CC-BY-4.0", None)
            changes[image] = largest_url(media, urls)
        except MediaError as exc:
            errors[upload.name] = error_message(request, exc)
    if not errors:
        try:
            async with request.app[WRITERS]() as db, db.begin():
                await profile.set_profile(db, urls, await db.get(Actor, actor.id), changes)
            forget_actor(request.app[DOCUMENTS], actor.username)
            raise web.HTTPSeeOther(f"/actors/{actor.username}/edit?done=saved")
        except UserError as exc:
            errors["form"] = error_message(request, exc)
    return render(request, actor, form, errors, status=400)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/actors/{username}/edit", edit_page)
    app.router.add_post("/actors/{username}/edit", edit_submit)
