"""Pruning unused uploads: `fedsph media prune` and the worker's hourly pass."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from fedsph import worker as worker_module
from fedsph.config import load_settings
from fedsph.db import make_engine, make_sessionmaker
from fedsph.models import Actor, Media, Object, utcnow
from fedsph.projects.media import largest_url, media_dir, save_upload
from fedsph.projects.media_prune import keys_in, prune_media
from fedsph.projects.outbox import delete_post, publish_post
from fedsph.projects.profile import set_profile
from tests.support.images import exif_jpeg

OLD = timedelta(hours=30)


async def add_image(sessions, settings, actor: Actor, *, age: timedelta = OLD) -> Media:
    """An uploaded image attached to nothing, `age` old."""
    async with sessions() as db, db.begin():
        media = await save_upload(db, settings, actor, exif_jpeg(1600, 1200), "A roof", "CC0",
                                  None)
        await db.execute(update(Media).where(Media.id == media.id)
                         .values(created_at=utcnow() - age))
    return media


def files_of(settings, media: Media) -> list:
    return [media_dir(settings) / info["file"] for info in media.renditions.values()]


async def remaining_ids(node) -> set[int]:
    async with node.writers() as db:
        return set(await db.scalars(select(Media.id)))


async def test_only_old_unused_images_are_pruned_with_their_files(node):
    settings = node.settings
    project = await node.create_actor("coop")
    old, recent = (await add_image(node.writers, settings, project),
                   await add_image(node.writers, settings, project, age=timedelta(hours=2)))
    attached, icon, header = [await add_image(node.writers, settings, project) for _ in range(3)]
    let_go = await add_image(node.writers, settings, project)
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        await publish_post(db, node.urls, actor, contents={"es": "Techo"},
                             media=[await db.get(Media, attached.id)])
        await set_profile(db, node.urls, actor, {"icon": largest_url(icon, node.urls),
                                                 "header": largest_url(header, node.urls)})
        deleted = await publish_post(db, node.urls, actor, contents={"es": "Borrar"},
                                       media=[await db.get(Media, let_go.id)])
    async with node.writers() as db, db.begin():
        await delete_post(db, node.urls, await db.get(Actor, project.id),
                          await db.get(Object, deleted.id))
    size = sum(path.stat().st_size for m in (old, let_go) for path in set(files_of(settings, m)))

    pruned = await prune_media(node.writers, settings)

    # The old upload and the image of the deleted update go; the rest stays.
    assert (pruned.count, pruned.bytes) == (2, size)
    assert await remaining_ids(node) == {recent.id, attached.id, icon.id, header.id}
    assert not any(path.exists() for m in (old, let_go) for path in files_of(settings, m))
    for kept in (recent, attached, icon, header):
        assert all(path.exists() for path in files_of(settings, kept))
    assert (await prune_media(node.writers, settings)).count == 0
    # With a cutoff of zero hours the recent upload goes too.
    assert (await prune_media(node.writers, settings, timedelta(0))).count == 1


def test_keys_are_found_in_our_file_urls_only():
    key = "Ab-c_d" * 4
    assert keys_in([f"https://coop.example/media/{key}-1280.webp", None, "nothing",
                    f"<img src='/media/{key}-320.jpg'>", "https://x.example/media/short-1.webp"]) \
        == {key}


async def test_the_worker_prunes_at_most_once_an_hour_and_logs_failures(node, monkeypatch, caplog):
    project = await node.create_actor("coop")
    first = await add_image(node.writers, node.settings, project)
    worker = node.worker()
    await worker._prune_now_and_then()
    assert first.id not in await remaining_ids(node)
    second = await add_image(node.writers, node.settings, project)
    await worker._prune_now_and_then()  # within the hour: nothing happens
    assert second.id in await remaining_ids(node)

    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(worker_module, "prune_media", broken)
    worker.next_prune = 0.0
    with caplog.at_level(logging.ERROR, logger="fedsph.worker"):
        await worker._prune_now_and_then()  # logged, not raised
    assert "pruning unused images failed" in caplog.text


@pytest.fixture
def fedsph(fedsph):
    """The shared in-process `fedsph` (tests/conftest.py), on a migrated node with a project."""
    fedsph("migrate")
    fedsph("project", "create", "coop", "--name", "Coop")
    return fedsph


def test_cli_media_prune(fedsph):
    settings = load_settings()

    async def upload_old() -> Media:
        engine = make_engine(settings)
        try:
            sessions = make_sessionmaker(engine, writer=True)
            async with sessions() as db:
                actor = await db.scalar(select(Actor).where(Actor.username == "coop"))
            return await add_image(sessions, settings, actor, age=timedelta(hours=5))
        finally:
            await engine.dispose()

    media = asyncio.run(upload_old())
    size = sum(path.stat().st_size for path in set(files_of(settings, media)))
    assert fedsph("media", "prune") == (0, "removed 0 unused image(s), 0 bytes\n")
    assert fedsph("media", "prune", "--older-than", "4") == (
        0, f"removed 1 unused image(s), {size} bytes\n")
    assert not any(path.exists() for path in files_of(settings, media))
    for bad in ("soon", "-1", "nan"):
        code, out = fedsph("media", "prune", "--older-than", bad)
        assert code == 1 and out.count("\n") == 1 and "--older-than takes a number" in out
