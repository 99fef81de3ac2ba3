"""The directory's views as SQL over its index (fedsph/models/directory.py).

A view (directory.Filters) becomes conditions on `hub_directory`; filters, search, counts and
pages all run in the database, so no request loads every member. The semantics are those
spelled out in Python in tests/support/directory_reference.py, kept by construction:

- a list filter matches when any of its values is among the project's (languages: the tag or a
  more specific one, "es" matches "es-UY");
- every search word must be a substring of the project's folded text (directory.fold, applied
  in Python when the index is written and to the query). On SQLite, words of three characters
  or more go through the FTS5 trigram table, shorter ones through instr(); on PostgreSQL every
  word is a LIKE '%word%' that the pg_trgm GIN index serves. Words are bound parameters or
  quoted FTS strings: FTS syntax (NEAR, *, ^, quotes, parentheses) is searched literally.

Projects of blocked accounts or domains are left out when read, so a block or unblock needs no
rewrite of the index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.hub.directory import LIST_FILTERS, Filters, Stats, search_words
from fedsph.hub.directory_index import ENTRY, FACET, FTS_TABLE, STATE
from fedsph.models import Block

SHORT_WORD = 3  # trigrams: shorter words cannot use the FTS index
STREAM_BATCH = 500


def _fts_phrase(word: str) -> str:
    """An FTS5 string literal: the word as text, whatever FTS syntax it contains."""
    return '"' + word.replace('"', '""') + '"'


def _like_pattern(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def not_blocked():
    return ~exists(select(Block.id).where(or_(
        Block.actor_uri == ENTRY.c.uri, Block.domain == ENTRY.c.host,
        ENTRY.c.host.like(literal("%.") + Block.domain))))


def listed(hub_id: int) -> list:
    """What "listed" means, as conditions on the index: a row for the hub (an approved member)
    whose account and domain are not blocked."""
    return [ENTRY.c.hub_id == hub_id, not_blocked()]


def listed_ids(hub_id: int) -> Select:
    """The ids of the hub's listed members: a subquery for pages that gather what members
    publish (events, the links graph) without loading them."""
    return select(ENTRY.c.actor_id).where(*listed(hub_id))


def _search_conditions(words: list[str], sqlite: bool) -> list:
    if not words:
        return []
    if not sqlite:
        return [ENTRY.c.search_text.like(_like_pattern(w), escape="\\") for w in words]
    conditions = [func.instr(ENTRY.c.search_text, w) > 0 for w in words if len(w) < SHORT_WORD]
    long_words = [w for w in words if len(w) >= SHORT_WORD]
    if long_words:
        expression = " AND ".join(_fts_phrase(w) for w in long_words)
        conditions.append(ENTRY.c.actor_id.in_(
            text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts")
            .bindparams(fts=expression).columns(column("rowid", Integer))))
    return conditions


def _facet_members(hub_id: int, facet: str, condition) -> Select:
    return select(FACET.c.actor_id).where(FACET.c.hub_id == hub_id, FACET.c.facet == facet,
                                          condition)


def _language_members(hub_id: int, wanted: tuple[str, ...]) -> Select:
    """Projects speaking any of these tags or a more specific one. A bare tag ("es": all that
    the filter form offers) is the base tag the index keeps as facet "language" (the part
    before the first "-"), one equality the planner can estimate and hash; only a tag with a
    subtag ("pt-br") needs the published tags, itself or "pt-br-...". """
    bases = [w for w in wanted if "-" not in w]
    tags = [w for w in wanted if "-" in w]
    matches = []
    if bases:
        matches.append(and_(FACET.c.facet == "language", FACET.c.value.in_(bases)))
    if tags:
        matches.append(and_(FACET.c.facet == "language_tag", or_(
            FACET.c.value.in_(tags),
            *(FACET.c.value.like(_like_pattern(w)[1:-1] + "-%", escape="\\") for w in tags))))
    return select(FACET.c.actor_id).where(FACET.c.hub_id == hub_id, or_(*matches))


def _filter_conditions(hub_id: int, filters: Filters) -> list:
    conditions = []
    for name, wanted in filters.values.items():
        if not wanted or name not in LIST_FILTERS:
            continue
        if name == "language":
            conditions.append(ENTRY.c.actor_id.in_(_language_members(hub_id, wanted)))
        else:
            conditions.append(ENTRY.c.actor_id.in_(
                _facet_members(hub_id, name, FACET.c.value.in_(wanted))))
    return conditions


def view_conditions(hub_id: int, filters: Filters, sqlite: bool) -> list:
    return [*listed(hub_id), *_filter_conditions(hub_id, filters),
            *_search_conditions(search_words(filters.q), sqlite)]


@dataclass(frozen=True)
class View:
    """One view of one hub's directory, ready to query."""

    hub_id: int
    filters: Filters
    sqlite: bool

    @property
    def where(self) -> list:
        return view_conditions(self.hub_id, self.filters, self.sqlite)

    def ids(self) -> Select:
        return select(ENTRY.c.actor_id).where(*self.where)

    def rows(self, *columns) -> Select:
        return (select(*(columns or ENTRY.c)).where(*self.where)
                .order_by(ENTRY.c.sort_name, ENTRY.c.uri))


def is_sqlite(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "sqlite"


async def plan_each_view(db: AsyncSession) -> None:
    """On PostgreSQL, plan this transaction's statements for their values. asyncpg prepares
    each statement once per connection, and after five runs PostgreSQL may keep one generic
    plan that knows no value: for a search with two filters that plan expected one row where
    there were hundreds, and the count took 7-8 ms instead of 2-3 ms (issue 12, item 3;
    bench/README.md section 5). Planning a directory statement costs 0.3-2 ms."""
    if not is_sqlite(db):
        await db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


# The index's generation: moved in the same transaction as any change the directory shows.
GENERATION = select(STATE.c.generation).where(STATE.c.id == 1)


async def generation(db: AsyncSession) -> int:
    return await db.scalar(GENERATION) or 0


async def count(db: AsyncSession, view: View) -> int:
    return await db.scalar(select(func.count()).select_from(ENTRY).where(*view.where)) or 0


# What a card of the directory shows: sorting the matches carries these, not the exports' text
# (a third of the time of a broad view's page). The count stays a statement of its own: a window
# count(*) OVER () in the page's statement made SQLite sort every match, not keep the top 51
# (7x slower for a view of half the members).
CARD_COLUMNS = ("name", "name_map", "uri", "local", "country", "stage", "lists")


def _card_columns() -> list:
    return [ENTRY.c[name] for name in CARD_COLUMNS]


async def page(db: AsyncSession, view: View, number: int, size: int) -> list:
    """One page of the view's projects by name (the columns a card shows); one extra row tells
    whether there is a next."""
    result = await db.execute(view.rows(*_card_columns())
                              .offset((number - 1) * size).limit(size + 1))
    return list(result)


async def member_facets(db: AsyncSession, hub_id: int) -> tuple[int, dict[str, list]]:
    """All members (not one view: the filter form shows what the hub has): their number and,
    per filter, each value with the number of projects that have it."""
    total = await db.scalar(select(func.count()).select_from(ENTRY).where(*listed(hub_id))) or 0
    rows = await db.execute(
        select(FACET.c.facet, FACET.c.value, func.count())
        .where(FACET.c.hub_id == hub_id, FACET.c.facet != "language_tag",
               FACET.c.actor_id.in_(listed_ids(hub_id)))
        .group_by(FACET.c.facet, FACET.c.value).order_by(FACET.c.facet, FACET.c.value))
    found: dict[str, list] = {name: [] for name in LIST_FILTERS}
    for facet, value, n in rows:
        if facet in found:
            found[facet].append((value, n))
    return total, found


def _ranked(rows) -> list[tuple[str, int]]:
    return sorted(((value, n) for value, n in rows if value is not None),
                  key=lambda item: (-item[1], item[0]))


async def stream_column(db: AsyncSession, view: View, name: str) -> AsyncIterator[list]:
    """One column of the view's rows (an export's precomputed piece), in batches read as they
    are sent: exports of any size in bounded memory."""
    result = await db.stream(view.rows(ENTRY.c[name]).execution_options(yield_per=STREAM_BATCH))
    async for batch in result.scalars().partitions(STREAM_BATCH):
        yield list(batch)


async def stats(db: AsyncSession, view: View) -> Stats:
    """The view's counts (directory.Stats), in one statement: the view's matches are found once
    (four statements found them four times), then the totals and each count are read from them
    (country=FR at 10,000 members: 8.6 -> 4.1 ms on SQLite; on PostgreSQL, with the count the
    page made besides, 12.8 -> 5.7 ms). Both engines compute a CTE read more than once only
    once, without being told."""
    matches = (select(ENTRY.c.actor_id, ENTRY.c.stage, ENTRY.c.country,
                      ENTRY.c.homes_completed, ENTRY.c.homes_planned)
               .where(*view.where).cte("matches"))
    nothing = literal(0)
    parts = [
        select(literal("total"), literal(None, String), func.count(),
               func.coalesce(func.sum(matches.c.homes_completed), 0),
               func.coalesce(func.sum(matches.c.homes_planned), 0)).select_from(matches),
        select(literal("stage"), matches.c.stage, func.count(), nothing, nothing)
        .group_by(matches.c.stage),
        select(literal("country"), matches.c.country, func.count(), nothing, nothing)
        .group_by(matches.c.country),
        select(literal("approach"), FACET.c.value, func.count(), nothing, nothing)
        .join(matches, matches.c.actor_id == FACET.c.actor_id)
        .where(FACET.c.hub_id == view.hub_id, FACET.c.facet == "approach")
        .group_by(FACET.c.value)]
    found: dict[str, list] = {"stage": [], "country": [], "approach": []}
    projects = completed = planned = 0
    for kind, value, n, kept, hoped in await db.execute(union_all(*parts)):
        if kind == "total":
            projects, completed, planned = n, kept, hoped
        else:
            found[kind].append((value, n))
    return Stats(projects, _ranked(found["stage"]), _ranked(found["approach"]),
                 _ranked(found["country"]), int(completed), int(planned))
