"""Request parameters as Mastodon takes them: query, form (URL-encoded or multipart) or JSON."""

from __future__ import annotations

import orjson
from aiohttp import web
from multidict import MultiDict
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api.errors import ApiError
from fedsph.core.numbers import parse_id, parse_number

TRUE_WORDS = {"1", "true", "on", "yes"}


async def read_params(request: web.Request) -> MultiDict:
    """Query parameters overlaid with the body's fields; JSON lists become repeated keys."""
    params: MultiDict = MultiDict(request.query)
    if request.method in ("GET", "HEAD", "OPTIONS") or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "The request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object")
        for key, value in body.items():
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    params.add(key, item if isinstance(item, str) else _scalar(item))
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in (await request.post()).items():
            if isinstance(value, str):
                params.add(key, value)
    return params


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flag(params: MultiDict, name: str) -> bool:
    """Booleans come as 0/1, true/false (forms) or JSON true/false."""
    return str(params.get(name, "")).strip().lower() in TRUE_WORDS


def list_param(params: MultiDict, name: str) -> list[str]:
    """`id[]=1&id[]=2`, `id=1` or a JSON list: Mastodon accepts each."""
    return [*params.getall(f"{name}[]", []), *params.getall(name, [])]


async def get_by_id(db: AsyncSession, model: type, raw: object):
    """The `model` row whose id `raw` (from a path or parameter) names; None when there is
    none or `raw` is no row id (checked by fedsph.core.numbers, never str.isdigit)."""
    row_id = parse_id(raw)
    return await db.get(model, row_id) if row_id is not None else None


def number_param(params: MultiDict, name: str) -> int | None:
    """A whole-number parameter (0 <= n < 2**63): None when absent or empty, else a 400."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    number = parse_number(raw)
    if number is None:
        raise ApiError(400, f"{name} must be a whole number")
    return number
