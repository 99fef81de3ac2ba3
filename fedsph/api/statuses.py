"""Statuses from apps: post, read, edit, delete, and a status's thread (context).

A status is an Object; its id is Object.id. A boost's reblog wrapper has an id of its own from
the same space (Reaction.status_id, fedsph.models.status_ids; fedsph.api.reblogs). Posting and
editing go through fedsph.projects.outbox (publish_post, edit_post, delete_post), the same path
as the web compose form, so a status from an app federates exactly like an update written on
the site.
"""

from __future__ import annotations

from aiohttp import web
from cachetools import TTLCache
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api import status_entities
from fedsph.api import text as status_text
from fedsph.api.accounts import account_entity
from fedsph.api.entities import acct, profile_url
from fedsph.api.errors import ApiError, api_json, not_found
from fedsph.api.instance import MAX_CHARACTERS, MAX_MEDIA
from fedsph.api.params import get_by_id, list_param, read_params
from fedsph.api.tokens import Caller, optional_caller, require_account
from fedsph.core.hashtags import retagged
from fedsph.core.numbers import parse_id
from fedsph.errors import UserError
from fedsph.federation.visibility import may_see
from fedsph.models import Actor, Follow, Media, Object, Reaction
from fedsph.projects import outbox
from fedsph.projects.group_announce import announce_member_post
from fedsph.projects.media import has_alt
from fedsph.projects.notes import source_texts
from fedsph.projects.queries import not_withheld
from fedsph.web.keys import READERS, SETTINGS, URLS, WRITERS

# Idempotency-Key: the same key from the same token within an hour gives back the same status,
# so an app retrying after a lost answer does not post twice. In memory: a restart forgets them.
IDEMPOTENCY_TTL_SECONDS = 3600
IDEMPOTENCY = web.AppKey("api_idempotency", TTLCache)
MAX_THREAD_DEPTH = 40
MAX_DESCENDANTS = 200


def setup(app: web.Application) -> None:
    app[IDEMPOTENCY] = TTLCache(maxsize=10_000, ttl=IDEMPOTENCY_TTL_SECONDS)


def _invalid(message: str) -> ApiError:
    return ApiError(422, f"Validation failed: {message}")


async def _can_see(db: AsyncSession, obj: Object, me: Actor | None) -> bool:
    """Deleted, hidden and held comments are gone; the rest as fedsph.federation.visibility decides."""
    if obj.deleted_at is not None:
        return False
    if me is not None and obj.actor_id == me.id:
        return True
    if obj.hidden or not obj.approved:
        return False
    return await may_see(db, obj, me)


async def boost_by_status_id(db: AsyncSession, raw: str) -> Reaction | None:
    """The boost whose reblog wrapper has the status id `raw` (fedsph.models.status_ids)."""
    number = parse_id(raw)
    if number is None:
        return None
    return await db.scalar(select(Reaction).where(Reaction.status_id == number,
                                                  Reaction.type == "Announce"))


async def visible_object(db: AsyncSession, raw: str, me: Actor | None) -> Object:
    """The post `raw` names and `me` may see; a boost's id names the post it boosted, so that
    favouriting, boosting or opening the thread of a reblog acts on the post, as on Mastodon."""
    obj = await get_by_id(db, Object, raw)
    if obj is None:
        boost = await boost_by_status_id(db, raw)
        if boost is not None and (not boost.followers_only
                                  or await follows_booster(db, me, boost.actor_id)):
            obj = await db.scalar(select(Object).where(Object.uri == boost.object_uri))
    if obj is None or not await _can_see(db, obj, me):
        raise not_found()
    return obj


async def follows_booster(db: AsyncSession, me: Actor | None, booster_id: int) -> bool:
    """`me` is the booster, or one of its accepted followers: who may see a boost addressed to
    the booster's followers only (Reaction.followers_only)."""
    if me is None:
        return False
    return me.id == booster_id or await db.scalar(select(Follow.id).where(
        Follow.follower_id == me.id, Follow.followed_id == booster_id,
        Follow.state == "accepted")) is not None


async def _own_object(db: AsyncSession, raw: str, me: Actor) -> Object:
    obj = await get_by_id(db, Object, raw)
    if obj is None or obj.deleted_at is not None or not obj.local or obj.actor_id != me.id:
        raise not_found()
    return obj


async def status_entity(request: web.Request, db: AsyncSession, obj: Object,
                        me: Actor | None) -> dict:
    author = await db.get(Actor, obj.actor_id)
    urls = request.app[URLS]
    if obj.local:
        rows = await db.scalars(select(Media).where(Media.object_id == obj.id)
                                .order_by(Media.position))
        media = [status_entities.media_attachment(m, urls) for m in rows]
    else:
        media = [status_entities.remote_attachment(obj, i, a)
                 for i, a in enumerate(obj.attachments or []) if isinstance(a, dict)]
    reactions = dict((await db.execute(select(Reaction.type, func.count(Reaction.id)).where(
        Reaction.object_uri == obj.uri).group_by(Reaction.type))).all())
    mine = set(await db.scalars(select(Reaction.type).where(
        Reaction.object_uri == obj.uri, Reaction.actor_id == me.id))) if me else set()
    replies = await db.scalar(select(func.count(Object.id)).where(
        Object.in_reply_to == obj.uri, not_withheld())) or 0
    parent = (await db.execute(select(Object.id, Object.actor_id).where(
        Object.uri == obj.in_reply_to))).first() if obj.in_reply_to else None
    entity = status_entities.status(
        obj, await account_entity(request, db, author), media, replies=replies,
        favourites=reactions.get("Like", 0), reblogs=reactions.get("Announce", 0),
        favourited="Like" in mine, reblogged="Announce" in mine,
        in_reply_to_id=str(parent.id) if parent else None,
        in_reply_to_account_id=str(parent.actor_id) if parent else None)
    entity["mentions"] = await _mention_entities(db, obj)
    return entity


async def _mention_entities(db: AsyncSession, obj: Object) -> list[dict]:
    """The stored actors the status's Mention tags name, as Mastodon's Status.mentions."""
    hrefs = [t["href"] for t in obj.tags or [] if t.get("type") == "Mention" and t.get("href")]
    if not hrefs:
        return []
    actors = {a.uri: a for a in await db.scalars(select(Actor).where(Actor.uri.in_(hrefs)))}
    return [{"id": str(a.id), "username": a.username, "acct": acct(a), "url": profile_url(a)}
            for a in (actors.get(h) for h in hrefs) if a is not None]


async def _mentioned(db: AsyncSession, text: str, local_domain: str) -> list[Actor]:
    """Stored actors the text @mentions; unknown ones stay plain text (nothing is fetched here)."""
    found = []
    for username, domain in status_text.mentions(text, local_domain):
        actor = await db.scalar(select(Actor).where(
            func.lower(Actor.username) == username.lower(),
            func.lower(Actor.domain) == domain.lower(), Actor.type != "Application"))
        if actor is not None and actor not in found:
            found.append(actor)
    return found


async def _answer(request: web.Request, object_id: int, me: Actor) -> web.Response:
    async with request.app[READERS]() as db:
        obj = await db.get(Object, object_id)
        return api_json(await status_entity(request, db, obj, me))


def _text(params) -> str:
    text = str(params.get("status") or "")
    if not text.strip():
        raise _invalid("Text can't be blank")
    if len(text) > MAX_CHARACTERS:
        raise _invalid(f"Text is too long (at most {MAX_CHARACTERS} characters)")
    return text


async def _media(db: AsyncSession, params, me: Actor) -> list[Media] | None:
    """The media_ids sent, in order, all owned by the acting account; None when none were sent."""
    ids = list_param(params, "media_ids")
    if not ids:
        return None
    if len(ids) > MAX_MEDIA:
        raise _invalid(f"a post carries at most {MAX_MEDIA} images")
    rows = []
    for raw in ids:
        media = await get_by_id(db, Media, raw)
        if media is None or media.owner_id != me.id:
            raise _invalid(f"no image with id {raw}")
        rows.append(media)
    undescribed = [str(m.id) for m in rows if not has_alt(m)]
    if undescribed:
        raise _invalid("every image needs a description (alt text) for people who cannot see "
                       f"it; describe image {', '.join(undescribed)} (PUT /api/v1/media/:id) "
                       "before posting")
    return rows


def _visibility(params) -> str:
    wanted = params.get("visibility") or "public"
    if wanted not in status_entities.VISIBILITY_FROM_API:
        raise _invalid(f"unknown visibility {wanted!r}")
    return status_entities.VISIBILITY_FROM_API[wanted]


async def create_status(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:statuses")
    cache = request.app[IDEMPOTENCY]
    key = request.headers.get("Idempotency-Key")
    cache_key = (caller.token.token_hash, key) if key else None
    if cache_key in cache:
        return await _answer(request, cache[cache_key], caller.actor)
    params = await read_params(request)
    if any(name.startswith("poll") for name in params):
        raise _invalid("polls are not supported here")
    text, visibility = _text(params), _visibility(params)
    async with request.app[WRITERS]() as db, db.begin():
        author = await db.get(Actor, caller.actor.id)
        media = await _media(db, params, author) or []
        in_reply_to = None
        if params.get("in_reply_to_id"):
            in_reply_to = (await visible_object(db, str(params["in_reply_to_id"]), author)).uri
        try:
            obj = await outbox.publish_post(
                db, request.app[URLS], author, contents={params.get("language") or "": text},
                summary=params.get("spoiler_text") or None, media=media, visibility=visibility,
                in_reply_to=in_reply_to, hashtags=status_text.hashtags(text),
                mentions=await _mentioned(db, text, request.app[SETTINGS].domain))
        except UserError as exc:
            raise _invalid(str(exc)) from None
        await announce_member_post(db, request.app[URLS], author, obj)
    if cache_key:
        cache[cache_key] = obj.id
    return await _answer(request, obj.id, caller.actor)


async def get_status(request: web.Request) -> web.Response:
    caller = await optional_caller(request)  # public statuses need no token
    me = caller.actor if caller else None
    async with request.app[READERS]() as db:
        obj = await visible_object(db, request.match_info["id"], me)
        return api_json(await status_entity(request, db, obj, me))


async def edit_status(request: web.Request) -> web.Response:
    """Replace the text (and language, content warning, images when sent) of one's own status."""
    caller = await require_account(request, "write:statuses")
    params = await read_params(request)
    text = _text(params)
    async with request.app[WRITERS]() as db, db.begin():
        author = await db.get(Actor, caller.actor.id)
        obj = await _own_object(db, request.match_info["id"], author)
        fields = await outbox.editable_post_fields(db, obj)
        old_primary = next(iter(fields["contents"]), "")
        language = params.get("language", old_primary) or ""
        # Translations written on the site stay; the primary text is what the app edits.
        contents = {language: text, **{lang: t for lang, t in fields["contents"].items()
                                       if lang not in (old_primary, language)}}
        # Hashtags follow the texts; ones given apart from them (the web form's) stay.
        fields["hashtags"] = retagged(fields["hashtags"], fields["contents"].values(),
                                      contents.values())
        fields["contents"] = contents
        if "spoiler_text" in params:
            fields["summary"] = params["spoiler_text"] or None
        media = await _media(db, params, author)
        if media is not None:
            fields["media"] = media
        try:
            await outbox.edit_post(db, request.app[URLS], author, obj, **fields)
        except UserError as exc:
            raise _invalid(str(exc)) from None
    return await _answer(request, obj.id, caller.actor)


async def delete_status(request: web.Request) -> web.Response:
    """Delete one's own status; the answer carries its source `text` (for "delete and redraft")."""
    caller = await require_account(request, "write:statuses")
    async with request.app[READERS]() as db:
        obj = await _own_object(db, request.match_info["id"], caller.actor)
        entity = await status_entity(request, db, obj, caller.actor)
        entity["text"] = next(iter(source_texts(obj).values()), "")
    async with request.app[WRITERS]() as db, db.begin():
        await outbox.delete_post(db, request.app[URLS], await db.get(Actor, caller.actor.id),
                                 await db.get(Object, obj.id))
    return api_json(entity)


async def _ancestors(db: AsyncSession, obj: Object, me: Actor | None) -> list[Object]:
    chain, seen, current = [], {obj.uri}, obj
    while current.in_reply_to and current.in_reply_to not in seen and len(chain) < MAX_THREAD_DEPTH:
        seen.add(current.in_reply_to)
        parent = await db.scalar(select(Object).where(Object.uri == current.in_reply_to))
        if parent is None or not await _can_see(db, parent, me):
            break
        chain.append(parent)
        current = parent
    return chain[::-1]


async def _descendants(db: AsyncSession, obj: Object, me: Actor | None) -> list[Object]:
    found, seen, frontier = [], {obj.uri}, [obj.uri]
    for _ in range(MAX_THREAD_DEPTH):
        if not frontier or len(found) >= MAX_DESCENDANTS:
            break
        # Capped in the query: a stranger can send any number of replies to a status.
        rows = await db.scalars(select(Object).where(Object.in_reply_to.in_(frontier))
                                .order_by(Object.published, Object.id)
                                .limit(MAX_DESCENDANTS - len(found)))
        frontier = []
        for row in rows:
            if row.uri in seen or not await _can_see(db, row, me):
                continue
            seen.add(row.uri)
            found.append(row)
            frontier.append(row.uri)
    return found[:MAX_DESCENDANTS]


async def context(request: web.Request) -> web.Response:
    """The stored thread around a status: ancestors oldest first, then the replies level by level."""
    caller: Caller | None = await optional_caller(request)
    me = caller.actor if caller else None
    async with request.app[READERS]() as db:
        obj = await visible_object(db, request.match_info["id"], me)
        ancestors = await _ancestors(db, obj, me)
        descendants = await _descendants(db, obj, me)
        return api_json({
            "ancestors": [await status_entity(request, db, o, me) for o in ancestors],
            "descendants": [await status_entity(request, db, o, me) for o in descendants],
        })
