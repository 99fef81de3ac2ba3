"""The directory's reference semantics in plain Python: which projects a view shows, their
counts and the filter form's values, computed over the members' stored profiles. The pages
query an index instead (fedsph/hub/directory_query.py); tests check both agree."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.federation.activitystreams import as_list
from fedsph.hub.directory import LIST_FILTERS, Filters, Stats, fold, search_words, searchable_text
from fedsph.hub.membership import approved_projects
from fedsph.models import Actor


async def member_projects(db: AsyncSession, hub: Actor) -> list[Actor]:
    """The hub's approved member projects, every one loaded."""
    return list(await db.scalars(approved_projects(db, hub)))


def _profile(actor: Actor) -> dict:
    return actor.profile if isinstance(actor.profile, dict) else {}


def _language_matches(wanted: str, tags) -> bool:
    """"es" matches a project speaking "es-UY"; "pt-br" matches only pt-BR."""
    for tag in as_list(tags):
        if isinstance(tag, str) and (tag.lower() == wanted or tag.lower().startswith(wanted + "-")):
            return True
    return False


def matches(actor: Actor, filters: Filters) -> bool:
    profile = _profile(actor)
    for name, wanted in filters.values.items():
        if not wanted:
            continue
        have = profile.get(LIST_FILTERS[name])
        if name == "language":
            if not any(_language_matches(w, have) for w in wanted):
                return False
        elif not set(wanted) & {v for v in as_list(have) if isinstance(v, str)}:
            return False
    words = search_words(filters.q)
    if words:
        text = searchable_text(actor)
        return all(word in text for word in words)
    return True


def select_projects(actors: list[Actor], filters: Filters) -> list[Actor]:
    """The projects a view shows, by name (ignoring accents and case)."""
    chosen = [a for a in actors if matches(a, filters)]
    return sorted(chosen, key=lambda a: (fold(a.name or a.username), a.uri))


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _ranked(counter: Counter) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def stats(actors: list[Actor]) -> Stats:
    """Counts over a view: projects per stage, approach (a project may have several) and
    country, and the homes its projects completed and plan."""
    stage, approach, country = Counter(), Counter(), Counter()
    completed = planned = 0
    for actor in actors:
        profile = _profile(actor)
        if isinstance(profile.get("stage"), str):
            stage[profile["stage"]] += 1
        approach.update({a for a in as_list(profile.get("approach")) if isinstance(a, str)})
        if isinstance(profile.get("country"), str):
            country[profile["country"]] += 1
        completed += _count(profile.get("homes_completed"))
        planned += _count(profile.get("homes_planned"))
    return Stats(len(actors), _ranked(stage), _ranked(approach), _ranked(country),
                 completed, planned)


def facets(actors: list[Actor]) -> dict[str, list[tuple[str, int]]]:
    """For the filter form: each filter's values present among the members, with counts."""
    found: dict[str, Counter] = {name: Counter() for name in LIST_FILTERS}
    for actor in actors:
        profile = _profile(actor)
        for name, key in LIST_FILTERS.items():
            values = {v for v in as_list(profile.get(key)) if isinstance(v, str)}
            if name == "language":
                values = {v.split("-")[0].lower() for v in values}
            found[name].update(values)
    return {name: sorted(counter.items()) for name, counter in found.items()}
