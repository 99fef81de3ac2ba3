"""GET {actor}/feed.atom: a project's latest public posts for feed readers."""

from __future__ import annotations

from aiohttp import web

from fedsph.core.urls import ACTOR
from fedsph.errors import NotFound
from fedsph.federation.actors import get_local_actor
from fedsph.projects import queries
from fedsph.projects.feeds import ATOM_CONTENT_TYPE, build_atom
from fedsph.web.keys import READERS

ACTOR_FEED = ACTOR + "/feed.atom"


def feed_url(actor_uri: str) -> str:
    """Where an actor's Atom feed lives (pages link it with <link rel="alternate">)."""
    return actor_uri + "/feed.atom"


async def atom_view(request: web.Request) -> web.Response:
    async with request.app[READERS]() as db:
        actor = await get_local_actor(db, request.match_info["username"])
        if actor is None or actor.type == "Application":
            raise NotFound("no such actor here")
        posts = await queries.public_posts(db, actor)
    body = build_atom(actor, posts, feed_url(actor.uri))
    return web.Response(body=body, headers={"Content-Type": ATOM_CONTENT_TYPE,
                                            "Cache-Control": "public, max-age=300"})


def add_routes(app: web.Application) -> None:
    app.router.add_get(ACTOR_FEED, atom_view)
