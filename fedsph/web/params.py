"""The `page` query parameter of web pages and collections (the rule: fedsph.core.numbers)."""

from __future__ import annotations

from aiohttp import web

from fedsph.core.numbers import parse_page
from fedsph.errors import BadRequest


def page_number(request: web.Request, default: int | None = 1,
                message: str = "page must be a positive number") -> int | None:
    """The `page` query parameter: `default` when absent, a 400 when it is not a page number."""
    raw = request.query.get("page")
    if raw is None:
        return default
    page = parse_page(raw)
    if page is None:
        raise BadRequest(message)
    return page
