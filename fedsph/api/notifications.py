"""Notifications for apps (list, one, dismiss, clear) and timeline read markers.

Notifications are fedsph.models.Notification rows of the acting account, paged by their id;
dismissing sets dismissed_at, so the site's notification page agrees with the apps.
Markers (where the member stopped reading home and notifications) are fedsph.models.Marker
rows, one per account and timeline, so they survive restarts and are shared by all its apps.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.api.accounts import account_entity
from fedsph.api.entities import iso
from fedsph.api.errors import ApiError, api_json, not_found
from fedsph.api.pagination import fetch_page, link_header, page_params
from fedsph.api.params import get_by_id, list_param, read_params
from fedsph.api.statuses import status_entity
from fedsph.api.tokens import require_account
from fedsph.models import Actor, Marker, Notification, Object, utcnow
from fedsph.web.keys import READERS, WRITERS

WITH_STATUS = ("mention", "favourite", "reblog")
MARKER_TIMELINES = ("home", "notifications")
MAX_MARKER_ID = 64


async def notification_entity(request: web.Request, db: AsyncSession,
                              notification: Notification, sender: Actor, me: Actor) -> dict:
    """Mastodon's Notification; `status` when the post it is about is stored and not deleted."""
    status = None
    if notification.type in WITH_STATUS and notification.object_uri:
        obj = await db.scalar(select(Object).where(Object.uri == notification.object_uri,
                                                   Object.deleted_at.is_(None)))
        if obj is not None:
            status = await status_entity(request, db, obj, me)
    return {"id": str(notification.id), "type": notification.type,
            "created_at": iso(notification.created_at),
            "account": await account_entity(request, db, sender),
            **({"status": status} if status else {})}  # optional, never null


async def list_notifications(request: web.Request) -> web.Response:
    """`types[]` keeps only those types, `exclude_types[]` drops them."""
    caller = await require_account(request, "read:notifications")
    query = (select(Notification.id, Notification, Actor)
             .join(Actor, Actor.id == Notification.from_actor_id)
             .where(Notification.recipient_id == caller.actor.id,
                    Notification.dismissed_at.is_(None)))
    if types := list_param(request.query, "types"):
        query = query.where(Notification.type.in_(types))
    if excluded := list_param(request.query, "exclude_types"):
        query = query.where(Notification.type.not_in(excluded))
    async with request.app[READERS]() as db:
        rows = await fetch_page(db, query, Notification.id, page_params(request.query, 15, 30))
        answer = [await notification_entity(request, db, n, sender, caller.actor)
                  for _, n, sender in rows]
    return api_json(answer, headers=link_header(request, [row_id for row_id, _, _ in rows]))


async def _mine(db: AsyncSession, raw: str, me: Actor) -> Notification:
    notification = await get_by_id(db, Notification, raw)
    if notification is None or notification.recipient_id != me.id \
            or notification.dismissed_at is not None:
        raise not_found()
    return notification


async def get_notification(request: web.Request) -> web.Response:
    caller = await require_account(request, "read:notifications")
    async with request.app[READERS]() as db:
        notification = await _mine(db, request.match_info["id"], caller.actor)
        sender = await db.get(Actor, notification.from_actor_id)
        return api_json(await notification_entity(request, db, notification, sender,
                                                  caller.actor))


async def dismiss(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:notifications")
    async with request.app[WRITERS]() as db, db.begin():
        notification = await _mine(db, request.match_info["id"], caller.actor)
        notification.dismissed_at = utcnow()
    return api_json({})


async def clear(request: web.Request) -> web.Response:
    caller = await require_account(request, "write:notifications")
    async with request.app[WRITERS]() as db, db.begin():
        await db.execute(update(Notification).where(
            Notification.recipient_id == caller.actor.id, Notification.dismissed_at.is_(None)
        ).values(dismissed_at=utcnow()))
    return api_json({})


def marker_entity(marker: Marker) -> dict:
    return {"last_read_id": marker.last_read_id, "version": marker.version,
            "updated_at": iso(marker.updated_at)}


async def get_markers(request: web.Request) -> web.Response:
    """`timeline[]=home&timeline[]=notifications`; markers never set are left out."""
    caller = await require_account(request, "read:statuses")
    wanted = list_param(request.query, "timeline") or list(MARKER_TIMELINES)
    async with request.app[READERS]() as db:
        saved = {m.timeline: m for m in await db.scalars(select(Marker).where(
            Marker.actor_id == caller.actor.id, Marker.timeline.in_(wanted)))}
    return api_json({name: marker_entity(saved[name]) for name in wanted if name in saved})


def _last_read_ids(params, body) -> dict[str, str]:
    """{timeline: last_read_id} from `home[last_read_id]=…` form fields or a JSON object."""
    found = {}
    for name in MARKER_TIMELINES:
        nested = body.get(name) if isinstance(body, dict) else None
        value = nested.get("last_read_id") if isinstance(nested, dict) else None
        if value is None:
            value = params.get(f"{name}[last_read_id]")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int) \
                or not str(value).strip() or len(str(value)) > MAX_MARKER_ID:
            raise ApiError(422, f"Validation failed: {name}[last_read_id] must be a status or "
                                "notification id")
        found[name] = str(value).strip()
    return found


async def _save_marker(db: AsyncSession, actor_id: int, timeline: str, last_read: str) -> Marker:
    """Insert or update the account's marker; every save counts one more version."""
    marker = await db.scalar(select(Marker).where(Marker.actor_id == actor_id,
                                                  Marker.timeline == timeline))
    if marker is None:
        try:
            async with db.begin_nested():
                marker = Marker(actor_id=actor_id, timeline=timeline, last_read_id=last_read,
                                version=1, updated_at=utcnow())
                db.add(marker)
            return marker
        except IntegrityError:  # another app of the same account saved it just now
            marker = await db.scalar(select(Marker).where(Marker.actor_id == actor_id,
                                                          Marker.timeline == timeline))
    marker.last_read_id, marker.version = last_read, marker.version + 1
    marker.updated_at = utcnow()
    return marker


async def set_markers(request: web.Request) -> web.Response:
    """`home[last_read_id]=…` and/or `notifications[last_read_id]=…` (form or JSON object)."""
    caller = await require_account(request, "write:statuses")
    params = await read_params(request)
    body = await request.json() if request.content_type == "application/json" else {}
    wanted = _last_read_ids(params, body)
    async with request.app[WRITERS]() as db, db.begin():
        saved = [await _save_marker(db, caller.actor.id, name, last_read)
                 for name, last_read in wanted.items()]
        return api_json({m.timeline: marker_entity(m) for m in saved})
