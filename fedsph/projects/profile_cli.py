"""`fedsph project set`'s values: the command line's words and the --file JSON as changes for
fedsph.projects.profile.apply_changes (which validates them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fedsph.projects.profile import (
    COUNTS_AS_OF,
    DEFAULT_PRECISION,
    IMAGE_FIELDS,
    LIST_ENUMS,
    PROFILE_FIELDS,
    TEXT_FIELDS,
    ProfileError,
    all_fields,
)


def parse_cli(field: str, values: list[str]) -> dict[str, Any]:
    """`fedsph project set SLUG FIELD VALUE...` as changes for apply_changes.

    No values clears the field.
    """
    base, _, lang = field.partition(":")
    if base in TEXT_FIELDS or (base in IMAGE_FIELDS and not lang):
        return {field: " ".join(values).strip() or None}
    if lang or base not in PROFILE_FIELDS or base == "description_map":
        raise ProfileError(f"unknown field {field!r}; fields: {', '.join(all_fields())}")
    if not values:
        return {base: None}
    if base in LIST_ENUMS or base == "languages":
        return {base: values}
    if base == "stage":
        _arity(base, values, 1, 2, "STAGE [DATE]")
        return {base: {"stage": values[0], "date": values[1]} if len(values) == 2 else values[0]}
    if base in COUNTS_AS_OF:
        _arity(base, values, 1, 2, "NUMBER [AS_OF_DATE]")
        as_of = values[1] if len(values) == 2 else datetime.now(UTC).date().isoformat()
        return {base: {"value": values[0], "as_of": as_of}}
    if base == "location":
        _arity(base, values, 3, 4, "NAME LATITUDE LONGITUDE [PRECISION]")
        place = {"name": values[0], "latitude": values[1], "longitude": values[2]}
        return {base: {**place, "precision": values[3] if len(values) == 4 else DEFAULT_PRECISION}}
    if base == "stage_history":
        return {base: [_split(base, v, ("stage", "date"), 2) for v in values]}
    if base == "partners":
        return {base: [_split(base, v, ("name", "role", "url"), 2) for v in values]}
    if base == "links":
        return {base: [_split(base, v, ("kind", "url", "title"), 2) for v in values]}
    _arity(base, values, 1, 1, "VALUE")
    return {base: values[0]}


def _arity(field: str, values: list[str], least: int, most: int, usage: str) -> None:
    if not least <= len(values) <= most:
        raise ProfileError(f"{field} takes {usage}")


def _split(field: str, value: str, keys: tuple[str, ...], required: int) -> dict:
    parts = [part.strip() for part in value.split("|", len(keys) - 1)]
    if len(parts) < required:
        raise ProfileError(f"{field}: write each value as {'|'.join(k.upper() for k in keys)}"
                         f" (the last {len(keys) - required} optional), not {value!r}")
    return dict(zip(keys, parts, strict=False))


def load_file(path: str) -> dict[str, Any]:
    """Read and parse the JSON file of `project set --file`."""
    try:
        with open(path, encoding="utf-8") as source:
            data = json.load(source)
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path} is not valid JSON: {exc}") from None
    return parse_file(data)


def parse_file(data: Any) -> dict[str, Any]:
    """The JSON file of `project set --file` as changes: a whole profile.

    Profile fields missing from the file are cleared; name and summary are left as they are
    unless given; "description" (text or {language: text}) replaces the description.
    """
    if not isinstance(data, dict):
        raise ProfileError("the profile file must hold a JSON object")
    unknown = set(data) - {*TEXT_FIELDS, *IMAGE_FIELDS, *PROFILE_FIELDS} - {"description_map"}
    if unknown:
        raise ProfileError(f"unknown field(s) {', '.join(sorted(unknown))}; "
                         f"fields: {', '.join(all_fields())}")
    changes: dict[str, Any] = {field: data.get(field) for field in PROFILE_FIELDS
                               if field != "description_map"}
    changes["description"] = data.get("description", data.get("description_map"))
    for field in ("name", "summary", *IMAGE_FIELDS):
        if field in data:
            changes[field] = data[field]
    return changes
