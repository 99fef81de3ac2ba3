"""A status's source and its edit history: GET /api/v1/statuses/:id/source and /history.

Mastodon's web UI reads the source before it opens a post for editing, and shows the history
behind "Edited". The versions are kept by fedsph.projects.edits.

Who may read them: the history as the status itself (no token needed for a public one; a
followers-only or direct post's history is no more visible than the post). The source, only its
author: Mastodon gives the source of any status its caller may see (it has the typed text of
its own posts only and the HTML of the rest), fedsph answers 404 for anyone else's, as for a
status that is not there, so what an author typed before formatting stays theirs.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import or_, select

from fedsph.api import status_entities
from fedsph.api.accounts import account_entity
from fedsph.api.entities import iso, stored_html
from fedsph.api.errors import ApiError, api_json, not_found
from fedsph.api.params import get_by_id
from fedsph.api.statuses import visible_object
from fedsph.api.tokens import covers, optional_caller, require_account
from fedsph.models import Actor, Media, Object
from fedsph.projects.edits import versions
from fedsph.projects.media import largest_url
from fedsph.projects.notes import source_texts
from fedsph.web.keys import READERS, URLS


async def status_source(request: web.Request) -> web.Response:
    """StatusSource: {id, text, spoiler_text}, the text as its author typed it."""
    caller = await require_account(request, "read:statuses")
    async with request.app[READERS]() as db:
        obj = await get_by_id(db, Object, request.match_info["id"])
        if (obj is None or obj.deleted_at is not None or not obj.local
                or obj.actor_id != caller.actor.id):
            raise not_found()
        text = next(iter(source_texts(obj).values()), "")
    return api_json({"id": str(obj.id), "text": text,
                     "spoiler_text": status_entities.spoiler_text(obj)})


async def _local_media(db, urls, obj: Object) -> dict[str, Media]:
    """The uploads a local post's versions can name, by URL: its images now and those an edit
    let go (kept, unattached, until the post is deleted: fedsph.projects.media_prune)."""
    rows = await db.scalars(select(Media).where(Media.owner_id == obj.actor_id, or_(
        Media.object_id == obj.id, Media.object_id.is_(None))))
    return {largest_url(m, urls): m for m in rows}


def _attachments(obj: Object, version: dict, uploads: dict[str, Media], urls) -> list[dict]:
    """A version's media as the status shows them: an upload of ours with its own id (and the
    description the version had), another server's from its AS2 document."""
    shown = []
    for position, document in enumerate(version["attachments"] or []):
        if not isinstance(document, dict):
            continue
        upload = uploads.get(document.get("url")) if obj.local else None
        if upload is None:
            shown.append(status_entities.remote_attachment(obj, position, document))
        else:
            shown.append({**status_entities.media_attachment(upload, urls),
                          "description": document.get("name") or None})
    return shown


async def status_history(request: web.Request) -> web.Response:
    """[StatusEdit], the original first and the current version last."""
    caller = await optional_caller(request)
    if caller is not None and not covers(caller.scopes, "read:statuses"):
        raise ApiError(403, "This action is outside the authorized scopes")
    me = caller.actor if caller else None
    urls = request.app[URLS]
    async with request.app[READERS]() as db:
        obj = await visible_object(db, request.match_info["id"], me)
        account = await account_entity(request, db, await db.get(Actor, obj.actor_id))
        uploads = await _local_media(db, urls, obj) if obj.local else {}
        edits = [{
            "content": stored_html(version["content"]),
            "spoiler_text": status_entities.spoiler_text_of(version["summary"]),
            "sensitive": version["sensitive"],
            "created_at": iso(version["created_at"]),
            "account": account,
            "poll": None,
            "media_attachments": _attachments(obj, version, uploads, urls),
            "emojis": [],
        } for version in await versions(db, obj)]
    return api_json(edits)
