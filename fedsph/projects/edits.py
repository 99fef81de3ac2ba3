"""Edit history: the earlier versions of a post, kept when an edit replaces them.

Mastodon shows a post's versions (GET /api/v1/statuses/:id/history): the first is the original,
the last the current one. The current version is the Object itself, so only the versions an
edit replaced are stored (StatusEdit), for our posts (fedsph.projects.outbox.edit_post) and
for other servers' (an Update{Note}, fedsph.handlers.posts). As on Mastodon, only a change of
what readers see makes a version: the text, the content warning or the attachments
(app/services/activitypub/process_status_update_service.rb, `significant_changes?`); an Update
that changes nothing of it (a poll count, a refetch) adds none. A deleted post's versions go
with it (fedsph.projects.tombstone).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.models import Object, StatusEdit


def current_version(obj: Object) -> dict:
    """What a version of `obj` is made of, as it stands now."""
    return {"content": obj.content, "summary": obj.summary, "sensitive": bool(obj.summary),
            "attachments": list(obj.attachments) if obj.attachments else None,
            "created_at": obj.updated or obj.published}


def _attachment_urls(attachments: list | None) -> list:
    return [a.get("url") if isinstance(a, dict) else a for a in attachments or []]


def changed(before: dict, after: dict) -> bool:
    """Whether readers see another post: its text, content warning or attachments differ."""
    return (before["content"] != after["content"] or before["summary"] != after["summary"]
            or _attachment_urls(before["attachments"]) != _attachment_urls(after["attachments"]))


def keep_version(db: AsyncSession, obj: Object, before: dict) -> bool:
    """After an edit of `obj`: store the version it replaced (`before`, from current_version
    taken before the edit) when readers see a change."""
    if not changed(before, current_version(obj)):
        return False
    db.add(StatusEdit(object_id=obj.id, **before))
    return True


async def versions(db: AsyncSession, obj: Object) -> list[dict]:
    """Every version of `obj`, oldest first; the last is the current one (so a post never
    edited has one). Each: content, summary, sensitive, attachments, created_at."""
    rows = await db.scalars(select(StatusEdit).where(StatusEdit.object_id == obj.id)
                            .order_by(StatusEdit.created_at, StatusEdit.id))
    earlier = [{"content": r.content, "summary": r.summary, "sensitive": r.sensitive,
                "attachments": r.attachments, "created_at": r.created_at} for r in rows]
    return [*earlier, current_version(obj)]
