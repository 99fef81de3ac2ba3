"""Pruning images nobody uses, so that a node on a small SD card does not fill up.

An image is uploaded before the post that carries it exists: a web form that then failed, or a
Mastodon app's POST /api/v2/media never followed by a status, leaves a Media row with no object
and its files. An edited or deleted post lets its images go the same way. Once such an image
is older than the cutoff it is deleted, unless its URL is still in use somewhere: a project's
icon or header (profile images are Media rows with no object, see fedsph/web/profile_edit.py),
a profile link, or a post's attachments.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.config import Settings
from fedsph.models import Actor, Media, Object, StatusEdit, utcnow
from fedsph.projects.media import MEDIA_ROUTE, delete_files

log = logging.getLogger("fedsph.media_prune")

DEFAULT_HOURS = 24
BATCH = 500  # ids per DELETE, well under SQLite's limit on bound parameters
# The key in a URL of one of our files: /media/KEY-WIDTH.EXT (keys may hold "-" themselves).
_KEY_IN_URL = re.compile(re.escape(MEDIA_ROUTE.split("{")[0])
                         + r"([A-Za-z0-9_-]{16,64})-[0-9]{1,5}\.(?:webp|jpg)")


@dataclass(frozen=True)
class Pruned:
    count: int
    bytes: int


def keys_in(texts: Iterable[str | None]) -> set[str]:
    """The media keys named by our file URLs anywhere in these texts."""
    return {match.group(1) for text in texts if text for match in _KEY_IN_URL.finditer(text)}


def media_bytes(media: Media) -> int:
    """What a media item's files weigh (labels that share one file count it once)."""
    files = {info.get("file"): info.get("bytes") or 0 for info in (media.renditions or {}).values()}
    return sum(files.values())


def prunable(candidates: Iterable[Media], used_keys: set[str], cutoff: datetime) -> list[Media]:
    """Images attached to nothing, created before the cutoff, whose key nothing uses."""
    return [m for m in candidates if m.object_id is None and m.created_at < cutoff
            and m.key not in used_keys]


async def used_keys(db: AsyncSession) -> set[str]:
    """Keys of images still in use outside Media.object_id: profile images, links, attachments."""
    texts: list[str | None] = []
    for icon, header, profile in await db.execute(
            select(Actor.icon_url, Actor.header_url, Actor.profile).where(Actor.local.is_(True))):
        texts += [icon, header, str(profile or "")]
    # A post's attachments name its images; a deleted one's are cleared (projects.tombstone).
    for attachments in await db.scalars(select(Object.attachments).where(
            Object.local.is_(True), Object.attachments.is_not(None))):
        texts.append(str(attachments))
    # So do the earlier versions of our edited posts (their edit history shows them).
    for attachments in await db.scalars(select(StatusEdit.attachments).join(
            Object, Object.id == StatusEdit.object_id).where(
            Object.local.is_(True), StatusEdit.attachments.is_not(None))):
        texts.append(str(attachments))
    return keys_in(texts)


async def prune_media(writers: async_sessionmaker[AsyncSession], settings: Settings,
                      older_than: timedelta = timedelta(hours=DEFAULT_HOURS)) -> Pruned:
    """Delete unused images older than `older_than`, rows first, then their files."""
    cutoff = utcnow() - older_than
    removed: list[Media] = []
    async with writers() as db, db.begin():
        candidates = await db.scalars(select(Media).where(Media.object_id.is_(None),
                                                          Media.created_at < cutoff))
        chosen = {m.id: m for m in prunable(candidates, await used_keys(db), cutoff)}
        ids = list(chosen)
        for start in range(0, len(ids), BATCH):
            # object_id is checked again: an image attached meanwhile (an app posting a status
            # with an old upload) is kept, and only what was really deleted loses its files.
            gone = await db.scalars(delete(Media).where(
                Media.id.in_(ids[start:start + BATCH]), Media.object_id.is_(None))
                .returning(Media.id).execution_options(synchronize_session=False))
            removed += [chosen[media_id] for media_id in gone]
    # After the commit: a rolled-back transaction must not leave rows whose files are gone.
    for media in removed:
        try:
            delete_files(settings, media)
        except OSError as exc:
            log.warning("could not delete the files of image %s: %s", media.key, exc)
    return Pruned(len(removed), sum(media_bytes(m) for m in removed))
