"""GET /ns: the fedsph JSON-LD context, for processors that want it as a document of its own.

Actor documents embed the same terms inline, so federation never depends on this URL.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from fedsph.projects.profile_wire import context_document

CONTEXT_PATH = "/ns"
_BODY = orjson.dumps(context_document())


async def context_view(request: web.Request) -> web.Response:
    return web.Response(body=_BODY, headers={
        "Content-Type": "application/ld+json",
        # JSON-LD processors in browsers fetch contexts cross-origin.
        "Access-Control-Allow-Origin": "*",
        "Cache-Control": "public, max-age=86400",
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get(CONTEXT_PATH, context_view)
