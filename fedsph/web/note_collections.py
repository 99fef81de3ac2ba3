"""A local post's `replies`, `likes` and `shares` collections (ActivityPub §5.6-5.8).

Mastodon serves `replies` as a Collection whose first page is embedded
(app/serializers/activitypub/note_serializer.rb, replies_collection), and follows it to fetch a
thread; GoToSocial and Pleroma count `likes` and `shares`. They are kept small: `replies` has
its total and pages of the replies' ids (public and unlisted replies only, as on Mastodon), and
`likes` and `shares` their totals only, as Mastodon gives them. Each answers exactly as its post
does: public and unlisted for all, followers-only and direct only to a signed fetch from a
server the post was sent to (fedsph.web.signed_fetch.may_fetch), 404 otherwise, 410 once the
post is deleted.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from fedsph.core.urls import OBJECT
from fedsph.errors import Gone
from fedsph.federation.activitystreams import AS_CONTEXT
from fedsph.federation.visibility import VISIBLE_TO_ALL
from fedsph.models import Object, Reaction
from fedsph.projects.queries import shown_to_visitors
from fedsph.web.keys import READERS
from fedsph.web.params import page_number
from fedsph.web.render import ap_response
from fedsph.web.signed_fetch import fetchable_local_object

REPLIES_PAGE = 20
_REACTIONS = {"likes": "Like", "shares": "Announce"}


async def _post(request: web.Request) -> Object:
    """The local post the collection belongs to, if this request may see it."""
    obj, _ = await fetchable_local_object(request)
    if obj.deleted_at is not None:
        raise Gone("this update was deleted")
    return obj


def _answer(obj: Object, document: dict) -> web.Response:
    # Like the post itself: a followers-only or direct post's collections are never cached.
    private = obj.visibility not in VISIBLE_TO_ALL
    return ap_response({"@context": AS_CONTEXT, **document},
                       headers={"Cache-Control": "private, no-store"} if private else None)


async def replies_view(request: web.Request) -> web.Response:
    """The replies' ids, oldest first: the Collection with its first page, or ?page=N."""
    obj = await _post(request)
    collection = obj.uri + "/replies"
    page = page_number(request, default=None)
    replies = (Object.in_reply_to == obj.uri) & shown_to_visitors()
    async with request.app[READERS]() as db:
        total = await db.scalar(select(func.count(Object.id)).where(replies)) or 0
        number = page or 1
        ids = list(await db.scalars(select(Object.uri).where(replies)
                                    .order_by(Object.published, Object.id)
                                    .offset((number - 1) * REPLIES_PAGE).limit(REPLIES_PAGE)))
    page_document = {"id": f"{collection}?page={number}", "type": "CollectionPage",
                     "partOf": collection, "items": ids}
    if number * REPLIES_PAGE < total:
        page_document["next"] = f"{collection}?page={number + 1}"
    if page is not None:
        return _answer(obj, page_document)
    return _answer(obj, {"id": collection, "type": "Collection", "totalItems": total,
                         "first": page_document})


async def _reactions_view(request: web.Request, name: str) -> web.Response:
    obj = await _post(request)
    async with request.app[READERS]() as db:
        total = await db.scalar(select(func.count(Reaction.id)).where(
            Reaction.object_uri == obj.uri, Reaction.type == _REACTIONS[name])) or 0
    return _answer(obj, {"id": f"{obj.uri}/{name}", "type": "Collection", "totalItems": total})


async def likes_view(request: web.Request) -> web.Response:
    return await _reactions_view(request, "likes")


async def shares_view(request: web.Request) -> web.Response:
    return await _reactions_view(request, "shares")


def add_routes(app: web.Application) -> None:
    app.router.add_get(OBJECT + "/replies", replies_view)
    app.router.add_get(OBJECT + "/likes", likes_view)
    app.router.add_get(OBJECT + "/shares", shares_view)
