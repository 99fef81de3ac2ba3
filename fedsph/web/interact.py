"""Remote follow, arriving side: another server sends one of our members here to follow something.

Our WebFinger answers carry an OStatus subscribe template pointing at /authorize_interaction,
as Mastodon's do, so the remote-follow form of another fedsph node (or of any server that uses
the template) brings the member to a page of ours where they choose which of their accounts
follows; the follow itself is the manage page's, prefilled.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from aiohttp import web

from fedsph.errors import BadRequest
from fedsph.i18n import N_
from fedsph.projects import queries
from fedsph.web.keys import READERS, USER
from fedsph.web.render import html_response

SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"


def subscribe_template(base: str) -> str:
    return base + "/authorize_interaction?uri={uri}"


async def authorize_interaction(request: web.Request) -> web.Response:
    target = request.query.get("uri", "").strip().removeprefix("acct:")
    if not target or len(target) > 2048:
        raise BadRequest(N_("Nothing to follow was given."))
    user = request.get(USER)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
    async with request.app[READERS]() as db:
        actors = await queries.actors_of_user(db, user)
    choices = [(actor, f"/actors/{actor.username}/manage?{urlencode({'follow': target})}#follow")
               for actor in actors]
    if len(choices) == 1:
        raise web.HTTPSeeOther(choices[0][1])
    return html_response(request, "interact.html", target=target, choices=choices)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/authorize_interaction", authorize_interaction)
