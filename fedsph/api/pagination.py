"""Mastodon's list pagination: max_id/since_id/min_id/limit in, a `Link` header out.

Lists run newest first by a row id. `max_id` pages towards older rows, `since_id` keeps only rows
newer than it (still newest first), `min_id` returns the rows just after it (oldest of those first
in the query, newest first in the answer). The answer's Link header gives the next (older) page as
`?max_id=<last id>` and the previous (newer) page as `?min_id=<first id>`, other parameters kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api.params import number_param
from fedsph.web.keys import URLS

CURSORS = ("max_id", "since_id", "min_id")


@dataclass(frozen=True)
class Page:
    max_id: int | None
    since_id: int | None
    min_id: int | None
    limit: int


def page_params(params: MultiDict, default: int = 40, maximum: int = 80) -> Page:
    """The cursors and limit of a request; a missing or zero limit is `default`, a large one
    capped; a cursor or limit that is no whole number is a 400 (fedsph.api.params)."""
    limit = number_param(params, "limit") or default
    return Page(number_param(params, "max_id"), number_param(params, "since_id"),
                number_param(params, "min_id"), max(1, min(limit, maximum)))


async def fetch_page(db: AsyncSession, query: Select, column, page: Page) -> list:
    """Rows of `query` (its first selected item should be `column`) for `page`, newest first."""
    if page.max_id is not None:
        query = query.where(column < page.max_id)
    if page.since_id is not None:
        query = query.where(column > page.since_id)
    if page.min_id is not None:
        query = query.where(column > page.min_id).order_by(column.asc())
    else:
        query = query.order_by(column.desc())
    rows = list((await db.execute(query.limit(page.limit))).all())
    return rows[::-1] if page.min_id is not None else rows


async def fetch_merged_page(db: AsyncSession, branches: list[tuple[Select, object]],
                            page: Page) -> list:
    """One page over several queries whose ids share one space (posts and boosts in home):
    each `(query, column)` gives at most a page of its own, the merge keeps the page's rows.
    Two short indexed queries rather than a UNION, whose ORDER BY and LIMIT the engines would
    apply only after reading every row of both."""
    rows = [row for query, column in branches for row in await fetch_page(db, query, column, page)]
    rows.sort(key=lambda row: row[0], reverse=True)
    # With min_id the page is the rows just after it: the oldest ones of the merge.
    return rows[-page.limit:] if page.min_id is not None else rows[:page.limit]


def link_header(request: web.Request, ids: list[int]) -> dict[str, str]:
    """`{"Link": ...}` for a page whose rows have these ids (newest first); {} when empty."""
    if not ids:
        return {}
    kept = [(k, v) for k, v in request.query.items() if k not in CURSORS]
    url = request.app[URLS].base + request.path

    def link(cursor: str, value: int, rel: str) -> str:
        return f'<{url}?{urlencode([*kept, (cursor, str(value))])}>; rel="{rel}"'

    return {"Link": f"{link('max_id', ids[-1], 'next')}, {link('min_id', ids[0], 'prev')}"}
