"""GET /media/{file}: the stored image renditions, cached for a year (their names never change)."""

from __future__ import annotations

from aiohttp import web

from fedsph.errors import NotFound
from fedsph.projects.media import EXTENSION_TYPES, FILE_NAME, MEDIA_ROUTE, media_dir
from fedsph.web.keys import SETTINGS

CACHE_FOREVER = "public, max-age=31536000, immutable"


async def media_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["file"]
    # Only names we could have written: no dots, slashes or other ways out of the directory.
    match = FILE_NAME.match(name)
    if match is None:
        raise NotFound("no such file")
    path = media_dir(request.app[SETTINGS]) / name
    if not path.is_file():
        raise NotFound("no such file")
    return web.FileResponse(path, headers={
        "Content-Type": EXTENSION_TYPES[match.group(1)],
        "Cache-Control": CACHE_FOREVER,
        "X-Content-Type-Options": "nosniff",
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get(MEDIA_ROUTE, media_file)
