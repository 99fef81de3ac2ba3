"""The hub's directory: which member projects a view shows, and what visitors can search.

A view is a Filters value read from the URL's query (so any view can be shared as a link). The
search folding and the facts shown about a project are pure functions over its stored profile.
The pages and exports query an index derived with these functions (directory_index.py writes
it, directory_query.py reads it in SQL), so a hub of 10,000 members is never loaded into
Python; tests/support/directory_reference.py spells the same semantics out in Python over
loaded members, and tests check that both agree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.errors import N_, UserError
from fedsph.federation.activitystreams import as_list
from fedsph.models import Actor, Object
from fedsph.projects.profile import public_location
from fedsph.projects.queries import shown_to_visitors

# URL parameter -> profile field; each may be repeated (any of the values matches).
LIST_FILTERS = {"region": "region", "country": "country", "stage": "stage",
                "approach": "approach", "tenure": "tenure", "theme": "themes",
                "language": "languages"}
MAX_VALUES = 50
MAX_QUERY = 200
_SLUG = re.compile(r"^[a-z0-9_]{1,64}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TAGS = re.compile(r"<[^>]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FilterError(UserError):
    """A query parameter that is no valid filter; the message says which and why."""


# -- search -------------------------------------------------------------------------------------

def fold(text: str) -> str:
    """Text as search compares it: no accents, no case ("Ñandé" -> "nande")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def searchable_text(actor: Actor) -> str:
    """Everything `q` looks in, folded: names and summaries in every language, descriptions."""
    profile = actor.profile if isinstance(actor.profile, dict) else {}
    parts = [actor.name, actor.username, actor.summary]
    for mapping in (actor.name_map, actor.summary_map, profile.get("description_map")):
        if isinstance(mapping, dict):
            parts.extend(mapping.values())
    text = " ".join(p for p in parts if isinstance(p, str))
    return fold(_TAGS.sub(" ", text))


def search_words(q: str) -> list[str]:
    return fold(q).split()


# -- filters --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """One view of the directory. Values within a filter are alternatives; filters combine."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    q: str = ""

    def __bool__(self) -> bool:
        return bool(self.q.strip()) or any(self.values.values())

    def selected(self, name: str) -> tuple[str, ...]:
        return self.values.get(name, ())

    def query_items(self) -> list[tuple[str, str]]:
        """The view as URL parameters, in a stable order (for links to pages and exports)."""
        items = [(name, value) for name in LIST_FILTERS for value in self.selected(name)]
        return items + ([("q", self.q)] if self.q.strip() else [])


def _clean(name: str, value: str) -> str:
    value = value.strip()
    if name == "country":
        if not _COUNTRY.match(value):
            raise FilterError(N_("country: %(value)r is not a two-letter country code such as UY"),
                              value=value)
        return value.upper()
    if name == "language":
        if not _LANGUAGE.match(value):
            raise FilterError(N_("language: %(value)r is not a language tag such as es or pt-BR"),
                              value=value)
        return value.lower()
    # Slugs from other nodes' newer vocabularies are kept: a shared link may name one.
    if not _SLUG.match(value):
        raise FilterError(N_("%(field)s: %(value)r is not a vocabulary value such as "
                             "'self_build' (lower-case letters, digits and _)"),
                          field=name, value=value)
    return value


def parse_filters(query: Mapping) -> Filters:
    """Filters from a URL query (a MultiDict: repeated names give several values).

    Empty values are ignored (an untouched select box sends one); anything else malformed
    raises FilterError.
    """
    getall = query.getall if hasattr(query, "getall") else (lambda k, d=(): as_list(query.get(k)))
    values = {}
    for name in LIST_FILTERS:
        raw = [v for v in getall(name, []) if isinstance(v, str) and v.strip()]
        if len(raw) > MAX_VALUES:
            raise FilterError(N_("%(field)s: at most %(limit)s values"), field=name, limit=MAX_VALUES)
        cleaned = tuple(dict.fromkeys(_clean(name, v) for v in raw))
        if cleaned:
            values[name] = cleaned
    q = query.get("q") or ""
    if not isinstance(q, str) or len(q) > MAX_QUERY:
        raise FilterError(N_("q: at most %(limit)s characters"), limit=MAX_QUERY)
    if _CONTROL.search(q):
        # No one types them; FTS5 and PostgreSQL refuse a NUL (a 500 before this check).
        raise FilterError(N_("q: the search text contains control characters"))
    return Filters(values, q.strip())


# -- facts shown about each project ----------------------------------------------------------------

def public_point(actor: Actor) -> tuple[float, float, str] | None:
    """(latitude, longitude, precision) as the project published it, rounded again to its
    precision so nothing stored can show more than that; None without coordinates."""
    profile = actor.profile if isinstance(actor.profile, dict) else {}
    location = profile.get("location")
    if not isinstance(location, dict):
        return None
    lat, lon = location.get("latitude"), location.get("longitude")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    rounded = public_location({**location, "precision": location.get("precision") or "exact"})
    return rounded["latitude"], rounded["longitude"], location.get("precision") or "exact"


@dataclass
class Stats:
    projects: int
    by_stage: list[tuple[str, int]]
    by_approach: list[tuple[str, int]]
    by_country: list[tuple[str, int]]
    homes_completed: int
    homes_planned: int


# -- queries ---------------------------------------------------------------------------------------

async def member_posts(db: AsyncSession, actor_ids: list[int] | Select, page: int = 1,
                         per_page: int = 20) -> list[tuple[Object, Actor]]:
    """Public top-level posts of these projects (ids, or a select of them: one view of the
    directory), newest first; one extra to tell a next page."""
    if isinstance(actor_ids, list) and not actor_ids:
        return []
    rows = await db.execute(
        select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
        .where(Object.actor_id.in_(actor_ids), shown_to_visitors(),
               Object.visibility == "public", Object.in_reply_to.is_(None))
        .order_by(Object.published.desc(), Object.id.desc())
        .offset((page - 1) * per_page).limit(per_page + 1))
    return [(obj, actor) for obj, actor in rows]
