"""Helpers of the edit history tests (tests/test_status_edits*.py): counting a post's stored
versions, sending a remote post and its Updates from a fake peer, an old upload."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from sqlalchemy import func, select, update

from fedsph.models import Media, StatusEdit, utcnow
from fedsph.projects.media import save_upload
from tests.fakepeer import AS
from tests.support.images import exif_jpeg
from tests.support.nodes import flush

PUBLIC = f"{AS}#Public"


async def count_edits(node, status_id) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count(StatusEdit.id)).where(
            StatusEdit.object_id == int(status_id)))


async def anonymous_status(node, path: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(node.base + path) as response:
        return response.status


async def remote_note(node, peer, author, text: str, **extra) -> dict:
    note = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": author.uri,
            "content": f"<p>{text}</p>", "published": "2026-01-02T10:00:00Z",
            "to": [PUBLIC], "cc": [author.document["followers"]], **extra}
    status, body = await peer.post(author, f"{node.base}/inbox", {
        "@context": AS, "id": peer.new_id(), "type": "Create", "actor": author.uri,
        "object": note, "to": note["to"], "cc": note["cc"]})
    assert status == 202, body
    await flush(node)
    return note


async def send_update(node, peer, sender, note: dict) -> None:
    status, body = await peer.post(sender, f"{node.base}/inbox", {
        "@context": AS, "id": peer.new_id(), "type": "Update", "actor": sender.uri,
        "object": note, "to": note["to"], "cc": note["cc"]})
    assert status == 202, body
    await flush(node)


async def old_image(node, project) -> Media:
    """An upload old enough to be pruned once nothing uses it."""
    async with node.writers() as db, db.begin():
        media = await save_upload(db, node.settings, project, exif_jpeg(640, 480), "A roof",
                                  "CC0", None)
        await db.execute(update(Media).where(Media.id == media.id)
                         .values(created_at=utcnow() - timedelta(hours=30)))
    return media
