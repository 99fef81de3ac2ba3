"""Edit history: the earlier versions of a post, kept when an edit replaces them.

Mastodon shows a post's versions (GET /api/v1/statuses/:id/history): the first is the original,
the last the current one. The current version is the Object itself, so only the versions an
edit replaced are stored (StatusEdit), for our posts (fedsph.projects.outbox.edit_post) and
for other servers' (an Update{Note}, fedsph.handlers.posts). As on Mastodon, every local edit
makes a version, and a received Update only when it changes what readers see: the text, the
content warning or the attachments (app/services/activitypub/process_status_update_service.rb,
`significant_changes?`); one that changes nothing of it (a poll count, a refetch) adds none. A deleted post's versions go
with it (fedsph.projects.tombstone).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.federation.activitystreams import parse_iso
from fedsph.models import Object, StatusEdit

# Earlier versions kept per post: the original and the latest 19. Each can be as large as a
# post, and anyone whose post we hold can send Updates, so the middle ones are let go.
MAX_KEPT_VERSIONS = 20


def current_version(obj: Object) -> dict:
    """What a version of `obj` is made of, as it stands now."""
    return {"content": obj.content, "summary": obj.summary, "sensitive": bool(obj.summary),
            "attachments": list(obj.attachments) if obj.attachments else None,
            "created_at": obj.updated or obj.published}


def _attachments_seen(attachments: list | None) -> list:
    """What readers see of the attachments: each one's URL and its description (alt text).
    The URL as Mastodon writes it (`url`), or a Link's `href` (Lemmy, PeerTube)."""
    return [(str(a.get("url") or a.get("href")), a.get("name")) if isinstance(a, dict)
            else (a, None) for a in attachments or []]


def changed(before: dict, after: dict) -> bool:
    """Whether readers see another post: its text, content warning or attachments (or their
    descriptions, which Mastodon counts too) differ."""
    return (before["content"] != after["content"] or before["summary"] != after["summary"]
            or _attachments_seen(before["attachments"]) != _attachments_seen(after["attachments"]))


def is_an_edit(held: Object, document: dict) -> bool:
    """Whether a received Update of a post may change it. As on Mastodon
    (ProcessStatusUpdateService: an explicit update needs `updated`, later than the edit held if
    the post was edited), one without `updated`, or not later than the last edit we hold,
    changes nothing: the same undated Updates sent again and again neither flip a post's text
    nor fill its history. (One dated before the post itself is refused as older than held.)"""
    edited = parse_iso(document.get("updated"))
    document_held = held.document if isinstance(held.document, dict) else {}
    held_edit = parse_iso(document_held.get("updated")) or held.updated
    return edited is not None and (held_edit is None or edited > held_edit)


async def keep_version(db: AsyncSession, obj: Object, before: dict, *, always: bool = False) -> bool:
    """After an edit of `obj`: store the version it replaced (`before`, from current_version
    taken before the edit) when readers see a change, or `always` (a local edit: Mastodon
    records every one). Beyond MAX_KEPT_VERSIONS, the oldest after the original goes."""
    if not always and not changed(before, current_version(obj)):
        return False
    kept = list(await db.scalars(select(StatusEdit.id).where(StatusEdit.object_id == obj.id)
                                 .order_by(StatusEdit.id)))
    if len(kept) >= MAX_KEPT_VERSIONS:
        await db.execute(delete(StatusEdit).where(
            StatusEdit.id.in_(kept[1:len(kept) - MAX_KEPT_VERSIONS + 2])))
    db.add(StatusEdit(object_id=obj.id, **before))
    return True


async def versions(db: AsyncSession, obj: Object) -> list[dict]:
    """Every version of `obj`, oldest first; the last is the current one (so a post never
    edited has one). Each: content, summary, sensitive, attachments, created_at. In the order
    they were stored: a remote version's date is its server's claim."""
    rows = await db.scalars(select(StatusEdit).where(StatusEdit.object_id == obj.id)
                            .order_by(StatusEdit.id))
    earlier = [{"content": r.content, "summary": r.summary, "sensitive": r.sensitive,
                "attachments": r.attachments, "created_at": r.created_at} for r in rows]
    return [*earlier, current_version(obj)]
