"""Project profiles: changes (and the Update they send), on top of the field rules of
fedsph/projects/profile_fields.py.

A profile lives in Actor.profile (a dict keyed by PROFILE_FIELDS); the name and summary and their
translations live in Actor.name/name_map and Actor.summary/summary_map. How a profile looks on the
wire is fedsph/projects/profile_wire.py; the actor document that carries it,
fedsph/projects/actor_document.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.errors import N_
from fedsph.federation import emit
from fedsph.federation.activitystreams import PUBLIC, build_activity
from fedsph.models import Actor
from fedsph.projects.actor_document import build_actor_document
from fedsph.projects.notes import text_to_html
from fedsph.projects.profile_fields import (
    COUNTS_AS_OF,
    DEFAULT_PRECISION,
    IMAGE_FIELDS,
    LIST_ENUMS,
    MAX_TEXT,
    PROFILE_FIELDS,
    TEXT_FIELDS,
    ProfileError,
    all_fields,
    bounded_text,
    http_url,
    language_tag,
    location_precision,
    primary_language,
    public_location,
    stage_entry,
    text_map,
    validate_field,
    validate_profile,
)

# The field rules were split off into profile_fields; callers that change profiles keep importing
# them from here, with the changes.
__all__ = [
    "COUNTS_AS_OF", "DEFAULT_PRECISION", "IMAGE_FIELDS", "LIST_ENUMS", "PROFILE_FIELDS",
    "TEXT_FIELDS", "ProfileError", "all_fields", "apply_changes", "http_url",
    "location_precision", "primary_language", "public_location", "send_actor_update",
    "set_profile", "text_map", "validate_field", "validate_profile",
]


def apply_changes(actor: Actor, changes: dict[str, Any]) -> None:
    """Validate and apply changes; nothing is changed when one of them is refused.

    Keys are profile fields, "name", "summary", "description" (a text in the primary language,
    or a {language: text} dict that replaces every translation), "name:es"-style keys for one
    translation, and "icon"/"header" (image URLs). A value of None clears the field.
    Languages are applied first: they decide which language a bare "name" is in.
    """
    profile = dict(actor.profile or {})
    texts = {"name": (actor.name, dict(actor.name_map or {})),
             "summary": (actor.summary, dict(actor.summary_map or {})),
             "description": (None, dict(profile.get("description_map") or {}))}
    images = {"icon": actor.icon_url, "header": actor.header_url}
    ordered = sorted(changes.items(), key=lambda item: item[0] != "languages")
    for key, raw in ordered:
        field, _, lang = key.partition(":")
        if field in TEXT_FIELDS:
            texts[field] = _change_text(field, lang, raw, *texts[field], primary_language(profile))
        elif field in IMAGE_FIELDS and not lang:
            images[field] = http_url(field, raw) if raw else None
        elif field == "stage" and not lang and (isinstance(raw, dict) or _new_stage(profile, raw)):
            # A change of stage is dated in the history: today (UTC) unless a date is given.
            entry = stage_entry(raw if isinstance(raw, dict) else {
                "stage": validate_field("stage", raw), "date": datetime.now(UTC).date().isoformat()},
                strict=True)
            profile["stage"] = entry["stage"]
            history = [e for e in profile.get("stage_history", []) if e["stage"] != entry["stage"]]
            profile["stage_history"] = validate_field("stage_history", [*history, entry])
        elif field in PROFILE_FIELDS and not lang:
            value = validate_field(field, raw)
            if value is None:
                profile.pop(field, None)
            else:
                profile[field] = value
        else:
            raise ProfileError(f"unknown field {key!r}; fields: {', '.join(all_fields())}")
    name, name_map = texts["name"]
    if not name:
        raise ProfileError(N_("name: a project needs a name"))
    actor.name, actor.name_map = name, name_map or None
    actor.summary, actor.summary_map = texts["summary"][0], texts["summary"][1] or None
    if texts["description"][1]:
        profile["description_map"] = texts["description"][1]
    else:
        profile.pop("description_map", None)
    actor.icon_url, actor.header_url = images["icon"], images["header"]
    actor.profile = profile or None


def _new_stage(profile: dict, raw: Any) -> bool:
    """Whether `raw` sets a stage other than the current one (bad values are refused later)."""
    stage = raw.strip().lower() if isinstance(raw, str) else raw
    return bool(stage) and stage != profile.get("stage")


def _change_text(field: str, lang: str, raw: Any, text: str | None, translations: dict,
                 primary: str) -> tuple[str | None, dict]:
    """(text in the primary language, translations) after one change.

    Summaries are stored as HTML (like every AS2 summary); names and descriptions as plain text.
    """
    as_stored = text_to_html if field == "summary" else (lambda value: value)
    if isinstance(raw, dict):
        translations = {k: as_stored(v) for k, v in text_map(field, raw).items()}
        text = translations.get(primary) or next(iter(translations.values()), None)
        return (text if field != "description" else None), translations
    lang = language_tag(lang) if lang else primary
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        translations.pop(lang, None)
        if lang == primary:
            text = None
    else:
        value = as_stored(bounded_text(f"{field}:{lang}", raw, MAX_TEXT[field]))
        if lang == primary:
            text = value
        # A lone name or summary in the primary language needs no map; once there is a map, it
        # holds the primary text too, so that changing the languages later keeps every text.
        if lang != primary and not translations and text:
            translations[primary] = text
        if lang != primary or translations or field == "description":
            translations[lang] = value
    return (text if field != "description" else None), translations


async def set_profile(db: AsyncSession, urls: URLs, actor: Actor, changes: dict[str, Any]) -> int:
    """Apply changes (see apply_changes) and send Update(actor) to the followers.

    Returns the number of remote inboxes the Update was queued for.
    """
    apply_changes(actor, changes)
    await db.flush()
    return await send_actor_update(db, urls, actor)


async def send_actor_update(db: AsyncSession, urls: URLs, actor: Actor) -> int:
    """Queue Update{actor document} for every follower, as Mastodon does after a profile edit."""
    document = build_actor_document(actor, urls)
    context = document.pop("@context")
    update = build_activity("Update", urls.new_activity(), actor.uri, document,
                            to=[PUBLIC], cc=[actor.followers_url] if actor.followers_url else None)
    update["@context"] = context
    return await emit.send_to_followers(db, actor, update, actor.uri, public=True)  # + proof
