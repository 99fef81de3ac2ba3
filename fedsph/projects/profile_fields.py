"""Project profile fields: what each one accepts, shared by the edits (fedsph/projects/profile.py)
and the wire format (fedsph/projects/profile_wire.py), which both build on it.

A profile lives in Actor.profile (a dict keyed by PROFILE_FIELDS). Location safety: when the
precision is not "exact", coordinates are rounded when they are set, so the exact point is never
stored, shown or sent; they are rounded again when the document is built, so nothing stored
earlier can leak either.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import date
from typing import Any

from babel import Locale

from fedsph.core import safe_links, vocab
from fedsph.core.numbers import parse_number
from fedsph.errors import N_, UserError
from fedsph.models import Actor

PROFILE_FIELDS = (
    "description_map", "stage", "stage_history", "approach", "tenure", "financing", "households",
    "inhabitants", "homes_completed", "homes_planned", "start_year", "completion_year",
    "settlement_type", "themes", "partners", "country", "region", "location", "languages", "links",
)
# Fields the command line and set_profile accept besides the profile's own.
TEXT_FIELDS = ("name", "summary", "description")
IMAGE_FIELDS = ("icon", "header")

SINGLE_ENUMS = {"stage": "stage", "settlement_type": "settlement_type", "region": "region"}
LIST_ENUMS = {"approach": "approach", "tenure": "tenure", "financing": "financing",
              "themes": "themes"}
COUNTS = ("homes_completed", "homes_planned")
YEARS = ("start_year", "completion_year")
COUNTS_AS_OF = ("households", "inhabitants")
# Profile key -> wire term for values that travel unchanged.

YEAR_RANGE = (1800, 2100)
MAX_COUNT = 10_000_000
MAX_ITEMS = 50
MAX_TEXT = {"name": 200, "summary": 5_000, "description": 20_000, "short": 300}
DEFAULT_PRECISION = "neighbourhood"
# precision -> (decimals kept, radius in metres): about 1 km, 10 km and 100 km grids.
PRECISION = {"exact": (5, 0), "neighbourhood": (2, 1_500), "city": (1, 15_000),
             "country": (0, 300_000)}

LANGUAGE_RE = re.compile(r"^([a-z]{2,3})(-[a-z]{4})?(-(?:[a-z]{2}|[0-9]{3}))?((?:-[a-z0-9]{5,8})*)$",
                         re.IGNORECASE)
SLUG_RE = re.compile(r"^[a-z0-9_]{1,64}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Babel's territories include groupings and private-use codes that are no country.
_NOT_COUNTRIES = {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}


@functools.cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes. Built on first use, not at import: Babel's English locale data
    costs some 4 MB resident, which an idle server need not carry."""
    return frozenset(code for code in Locale("en").territories
                     if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES)


assert set(PRECISION) == set(vocab.VOCABULARIES["location_precision"])


# -- validation ---------------------------------------------------------------------------------


class ProfileError(UserError):
    """A value that cannot go in a profile; the message says which field and why."""


def validate_field(field: str, raw: Any, strict: bool = True) -> Any:
    """The stored form of one profile field, or None (clear it). ProfileError names the problem.

    strict=False is for documents from other nodes: a well-formed slug from a newer vocabulary is
    kept (it is shown as the slug) rather than refused.
    """
    if field not in PROFILE_FIELDS:
        raise ProfileError(f"unknown field {field!r}; fields: {', '.join(all_fields())}")
    if raw is None or raw == "" or raw == [] or raw == {}:
        return None
    if field in SINGLE_ENUMS:
        return _slug(field, SINGLE_ENUMS[field], raw, strict)
    if field in LIST_ENUMS:
        return _unique([_slug(field, LIST_ENUMS[field], v, strict) for v in _items(field, raw)])
    if field in COUNTS:
        return _count(field, raw)
    if field in YEARS:
        return _year(field, raw)
    if field in COUNTS_AS_OF:
        if not isinstance(raw, dict):
            raw = {"value": raw}
        counted = {"value": _count(field, raw.get("value"))}
        if raw.get("as_of"):
            counted["as_of"] = _date(f"{field} as_of", raw["as_of"])
        return counted
    if field == "country":
        return _country(raw)
    if field == "languages":
        return _unique([language_tag(v) for v in _items(field, raw)])
    if field == "location":
        return _location(raw, strict)
    if field == "description_map":
        return text_map("description", raw)
    if field == "stage_history":
        entries = [stage_entry(v, strict) for v in _items(field, raw)]
        return sorted({e["date"] + e["stage"]: e for e in entries}.values(), key=lambda e: e["date"])
    if field == "partners":
        return [_partner(v, strict) for v in _items(field, raw)]
    return [_link(v, strict) for v in _items(field, raw)]  # links


def all_fields() -> list[str]:
    visible = [f for f in PROFILE_FIELDS if f != "description_map"]
    return [*TEXT_FIELDS, *IMAGE_FIELDS, *visible]


def _items(field: str, raw: Any) -> list:
    items = raw if isinstance(raw, list) else [raw]
    if len(items) > MAX_ITEMS:
        raise ProfileError(N_("%(field)s: at most %(limit)s values"), field=field, limit=MAX_ITEMS)
    return items


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _slug(field: str, vocabulary: str, raw: Any, strict: bool) -> str:
    slug = raw.strip().lower() if isinstance(raw, str) else None
    if slug is not None and (vocab.is_valid(vocabulary, slug) or (not strict and SLUG_RE.match(slug))):
        return slug
    raise ProfileError(N_("%(field)s: %(value)r is not one of %(choices)s"), field=field, value=raw,
                       choices=", ".join(vocab.VOCABULARIES[vocabulary]))


def _count(field: str, raw: Any) -> int:
    number = parse_number(raw.strip()) if isinstance(raw, str) else raw
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= MAX_COUNT:
        raise ProfileError(N_("%(field)s: %(value)r is not a whole number from 0 to %(limit)s"),
                           field=field, value=number if isinstance(number, int) else raw,
                           limit=MAX_COUNT)
    return number


def _year(field: str, raw: Any) -> int:
    year = parse_number(raw.strip()) if isinstance(raw, str) else raw
    if not isinstance(year, int) or isinstance(year, bool) \
            or not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        raise ProfileError(N_("%(field)s: %(value)r is not a year from %(first)s to %(last)s"),
                           field=field, value=year if isinstance(year, int) else raw,
                           first=YEAR_RANGE[0], last=YEAR_RANGE[1])
    return year


def _date(what: str, raw: Any) -> str:
    try:
        if not isinstance(raw, str) or not DATE_RE.match(raw.strip()):
            raise ValueError
        moment = date.fromisoformat(raw.strip())
    except ValueError:
        raise ProfileError(N_("%(field)s: %(value)r is not a date like 2026-01-31"), field=what,
                           value=raw) from None
    if not YEAR_RANGE[0] <= moment.year <= YEAR_RANGE[1]:
        raise ProfileError(N_("%(field)s: %(value)r is not between %(first)s and %(last)s"),
                           field=what, value=raw, first=YEAR_RANGE[0], last=YEAR_RANGE[1])
    return moment.isoformat()


def _country(raw: Any) -> str:
    code = raw.strip().upper() if isinstance(raw, str) else None
    if code not in countries():
        raise ProfileError(N_("country: %(value)r is not an ISO 3166-1 alpha-2 code such as UY, FR or PH"),
                           value=raw)
    return code


def language_tag(raw: Any) -> str:
    """A BCP-47 tag in its usual case (es, pt-BR, zh-Hant-TW); ProfileError otherwise."""
    match = LANGUAGE_RE.match(raw.strip()) if isinstance(raw, str) else None
    if not match:
        raise ProfileError(N_("language: %(value)r is not a language tag such as es, fr or pt-BR"), value=raw)
    language, script, region, variants = match.groups()
    return (language.lower() + (script.title() if script else "")
            + (region.upper() if region else "") + variants.lower())


def bounded_text(what: str, raw: Any, limit: int) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ProfileError(N_("%(field)s: needs some text"), field=what)
    if len(raw) > limit:
        raise ProfileError(N_("%(field)s: at most %(limit)s characters"), field=what, limit=limit)
    return raw.strip()


def text_map(field: str, raw: Any) -> dict[str, str]:
    """{language: text} for name, summary or description translations."""
    if not isinstance(raw, dict):
        raise ProfileError(N_('%(field)s: give translations as {"es": "…", "en": "…"}'), field=field)
    if len(raw) > MAX_ITEMS:
        raise ProfileError(N_("%(field)s: at most %(limit)s translations"), field=field, limit=MAX_ITEMS)
    return {language_tag(k): bounded_text(f"{field}:{k}", v, MAX_TEXT[field]) for k, v in raw.items()}


def http_url(what: str, raw: Any) -> str:
    """A URL typed in a profile field, checked by the one safe-link rule (fedsph.core.safe_links)."""
    url = safe_links.http_url(raw.strip() if isinstance(raw, str) else None)
    if url is None:
        raise ProfileError(N_("%(field)s: %(value)r is not an http(s) URL"), field=what, value=raw)
    return url


def _number(what: str, raw: Any, limit: float) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not -limit <= value <= limit:  # also refuses NaN
        raise ProfileError(N_("location: %(axis)s %(value)r is not a number from %(low)g to %(high)g"),
                           axis=what, value=raw, low=-limit, high=limit)
    return value


def _location(raw: Any, strict: bool) -> dict:
    if not isinstance(raw, dict):
        raise ProfileError(N_("location: give name, latitude, longitude and precision"))
    precision = raw.get("precision")
    if precision is None and strict:
        precision = DEFAULT_PRECISION
    if precision is not None and precision not in PRECISION:
        if strict:
            raise ProfileError(N_("location: precision %(value)r is not one of %(choices)s"),
                               value=precision, choices=", ".join(PRECISION))
        precision = None
    location = {"latitude": _number("latitude", raw.get("latitude"), 90),
                "longitude": _number("longitude", raw.get("longitude"), 180)}
    if raw.get("name"):
        location["name"] = bounded_text("location name", raw["name"], MAX_TEXT["short"])
    if precision is not None:
        location["precision"] = precision
    return public_location(location)


def location_precision(actor: Actor) -> str:
    """How precisely the project lets itself be located (the default when it set no location)."""
    location = (actor.profile or {}).get("location") if isinstance(actor.profile, dict) else None
    precision = location.get("precision") if isinstance(location, dict) else None
    return precision if precision in PRECISION else DEFAULT_PRECISION


def public_location(location: dict) -> dict:
    """The location as it may be shown or sent: rounded to its precision's grid."""
    precision = location.get("precision") or "exact"
    decimals = PRECISION.get(precision, PRECISION["country"])[0]
    rounded = dict(location)
    for axis in ("latitude", "longitude"):
        value = round(float(location[axis]), decimals)
        rounded[axis] = int(value) if decimals == 0 else value
    return rounded


def stage_entry(raw: Any, strict: bool) -> dict:
    if not isinstance(raw, dict):
        raise ProfileError(N_("stage_history: each entry needs a stage and a date"))
    return {"stage": _slug("stage_history", "stage", raw.get("stage"), strict),
            "date": _date("stage_history date", raw.get("date"))}


def _partner(raw: Any, strict: bool) -> dict:
    if not isinstance(raw, dict):
        raise ProfileError(N_("partners: each partner needs a name and a role"))
    partner = {"name": bounded_text("partner name", raw.get("name"), MAX_TEXT["short"]),
               "role": _slug("partner role", "partner_role", raw.get("role"), strict)}
    if raw.get("url"):
        partner["url"] = http_url("partner url", raw["url"])
    return partner


def _link(raw: Any, strict: bool) -> dict:
    if not isinstance(raw, dict):
        raise ProfileError(N_("links: each link needs a kind and a URL"))
    link = {"kind": _slug("link kind", "link_kind", raw.get("kind"), strict),
            "url": http_url("link", raw.get("url"))}
    if raw.get("title"):
        link["title"] = bounded_text("link title", raw["title"], MAX_TEXT["short"])
    return link


def validate_profile(data: dict, strict: bool = True) -> dict:
    """A whole profile (the JSON file's profile fields); every value checked."""
    profile = {}
    for field, raw in data.items():
        value = validate_field(field, raw, strict)
        if value is not None:
            profile[field] = value
    return profile


def primary_language(profile: dict | None) -> str:
    languages = (profile or {}).get("languages") or []
    return languages[0] if languages else "en"
