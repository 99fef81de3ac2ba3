"""HTML pages for people: the node home, a project or member page, and an update page."""

from __future__ import annotations

from aiohttp import web

from fedsph import queries
from fedsph.models import Actor, Object
from fedsph.web.keys import SESSIONS, SETTINGS
from fedsph.web.render import html_response


async def home(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        projects = await queries.local_projects(db)
        feed = await queries.node_feed(db)
    return html_response(request, "home.html", projects=projects, feed=feed,
                         domain=request.app[SETTINGS].domain)


async def actor_page(request: web.Request, actor: Actor) -> web.Response:
    async with request.app[SESSIONS]() as db:
        posts = await queries.actor_posts(db, actor)
        followers = await queries.relation_actors(db, actor, followers=True, page=1)
        following = await queries.relation_actors(db, actor, followers=False, page=1)
        counts = (await queries.relation_count(db, actor, True),
                  await queries.relation_count(db, actor, False))
    return html_response(request, "actor.html", actor=actor, posts=posts, followers=followers,
                         following=following, counts=counts,
                         handle=f"{actor.username}@{request.app[SETTINGS].domain}")


async def object_page(request: web.Request, obj: Object, actor: Actor) -> web.Response:
    async with request.app[SESSIONS]() as db:
        replies = await queries.replies_to(db, obj.uri)
        reactions = await queries.reaction_counts(db, obj.uri)
    return html_response(request, "object.html", obj=obj, actor=actor, replies=replies,
                         reactions=reactions)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
