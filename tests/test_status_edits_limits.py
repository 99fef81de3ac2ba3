"""What an edit may not do (review of issue 13's item 5): widen who reads a post and its earlier
versions, fill the history without end, or flip a post's text with undated Updates sent again;
and migration 0016's backfill of last_status_at. Every refused edit leaves the post as it was.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import func, select, text

from fedsph.core.hashtags import retagged
from fedsph.db import alembic_config, make_engine
from fedsph.errors import UserError
from fedsph.models import Actor, Delivery, Media, Notification, Object
from fedsph.projects.edits import MAX_KEPT_VERSIONS, changed
from fedsph.projects.outbox import (
    delete_post,
    edit_post,
    editable_post_fields,
    publish_post,
    publish_text_post,
)
from tests.fakepeer import AS
from tests.support import testdb
from tests.support.db import add_follow, add_remote_follower
from tests.support.edits import anonymous_status, count_edits, old_image, remote_note, send_update
from tests.support.members import api, member_token
from tests.support.nodes import make_settings

PUBLIC = f"{AS}#Public"


async def _post(node, sid) -> Object:
    async with node.readers() as db:
        return await db.get(Object, int(sid))


async def test_a_local_edit_cannot_change_who_sees_the_post(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, project, "Calle Secreta 12",
                                       visibility="followers")
    async with node.readers() as db:
        deliveries = await db.scalar(select(func.count(Delivery.id)))
    for wider in ("public", "unlisted"):
        async with node.writers() as db, db.begin():
            obj = await db.get(Object, post.id)
            fields = await editable_post_fields(db, obj)
            with pytest.raises(UserError, match="who can see"):
                await edit_post(db, node.urls, await db.get(Actor, project.id), obj,
                                **{**fields, "contents": {"": "Calle 12"}, "visibility": wider})
    obj = await _post(node, post.id)
    assert (obj.visibility, obj.updated, obj.source) == ("followers", None, "Calle Secreta 12")
    assert await count_edits(node, post.id) == 0
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Delivery.id))) == deliveries
    assert await anonymous_status(node, f"/api/v1/statuses/{post.id}/history") == 404


async def test_a_received_update_cannot_open_a_followers_only_post(node, peer):
    token, ana = await member_token(node, "ana", None)
    mia = peer.add_actor("mia")
    follower = await add_remote_follower(node, ana, mia)
    await add_follow(node, ana, follower)
    followers = mia.document["followers"]
    note = await remote_note(node, peer, mia, "Calle Secreta 12", to=[followers], cc=[])
    async with node.readers() as db:
        sid = await db.scalar(select(Object.id).where(Object.uri == note["id"]))
    await send_update(node, peer, mia, {**note, "content": "<p>Calle 12</p>", "to": [PUBLIC],
                                    "cc": [followers], "updated": "2026-01-02T12:00:00Z"})
    obj = await _post(node, sid)
    # The edit is taken (as Mastodon takes it), its readers are not.
    assert obj.visibility == "followers" and "Calle 12" in obj.content
    assert await count_edits(node, sid) == 1
    for path in (f"/api/v1/statuses/{sid}", f"/api/v1/statuses/{sid}/history"):
        assert await anonymous_status(node, path) == 404
    status, history = await api(node, token, "GET", f"/api/v1/statuses/{sid}/history")
    assert status == 200 and "Secreta" in history[0]["content"]


async def test_a_received_update_may_narrow_who_reads_a_post(node, peer):
    """Narrowing shows nothing to anyone new, so it is taken: a public post re-addressed to
    followers only is no longer served to strangers (Mastodon keeps it public)."""
    _, ana = await member_token(node, "ana", None)
    mia = peer.add_actor("mia")
    await add_follow(node, ana, await add_remote_follower(node, ana, mia))
    followers = mia.document["followers"]
    note = await remote_note(node, peer, mia, "Asamblea abierta")
    async with node.readers() as db:
        sid = await db.scalar(select(Object.id).where(Object.uri == note["id"]))
    assert await anonymous_status(node, f"/api/v1/statuses/{sid}") == 200
    await send_update(node, peer, mia, {**note, "content": "<p>Asamblea de socias</p>",
                                    "to": [followers], "cc": [],
                                    "updated": "2026-01-02T12:00:00Z"})
    obj = await _post(node, sid)
    assert obj.visibility == "followers" and "socias" in obj.content
    for path in (f"/api/v1/statuses/{sid}", f"/api/v1/statuses/{sid}/history"):
        assert await anonymous_status(node, path) == 404


async def test_undated_updates_sent_again_change_nothing(node, peer):
    _, ana = await member_token(node, "ana", None)
    mia = peer.add_actor("mia")
    await add_follow(node, ana, await add_remote_follower(node, ana, mia))
    note = await remote_note(node, peer, mia, "Texto A")
    async with node.readers() as db:
        sid = await db.scalar(select(Object.id).where(Object.uri == note["id"]))
    for n in range(6):
        await send_update(node, peer, mia, {**note, "content": f"<p>Texto {'BA'[n % 2]}</p>"})
    obj = await _post(node, sid)
    assert "Texto A" in obj.content and obj.updated is None and await count_edits(node, sid) == 0
    # One dated edit is taken; the same date again (a replay with other text) is not.
    edited = {**note, "content": "<p>Texto C</p>", "updated": "2026-01-02T12:00:00Z"}
    await send_update(node, peer, mia, edited)
    await send_update(node, peer, mia, {**edited, "content": "<p>Texto D</p>"})
    obj = await _post(node, sid)
    assert "Texto C" in obj.content and await count_edits(node, sid) == 1


async def test_the_history_keeps_the_original_and_the_latest_versions(node, peer):
    token, ana = await member_token(node, "ana", None)
    mia = peer.add_actor("mia")
    await add_follow(node, ana, await add_remote_follower(node, ana, mia))
    note = await remote_note(node, peer, mia, "Versión 0")
    async with node.readers() as db:
        sid = await db.scalar(select(Object.id).where(Object.uri == note["id"]))
    for n in range(1, MAX_KEPT_VERSIONS + 6):
        await send_update(node, peer, mia, {**note, "content": f"<p>Versión {n}</p>",
                                        "updated": f"2026-01-03T10:{n:02d}:00Z"})
    assert await count_edits(node, sid) == MAX_KEPT_VERSIONS
    _, history = await api(node, token, "GET", f"/api/v1/statuses/{sid}/history")
    last = MAX_KEPT_VERSIONS + 5
    # The original, then the latest ones in order, the current one last.
    assert [h["content"] for h in history] == [
        "<p>Versión 0</p>", *(f"<p>Versión {n}</p>" for n in range(last - MAX_KEPT_VERSIONS + 1,
                                                                   last + 1))]


async def test_local_edits_each_keep_a_version_and_alt_text_counts(node):
    token, _ = await member_token(node, "ana", None)
    _, posted = await api(node, token, "POST", "/api/v1/statuses", json={"status": "Igual"})
    await api(node, token, "PUT", f"/api/v1/statuses/{posted['id']}", json={"status": "Igual"})
    assert await count_edits(node, posted["id"]) == 1  # as on Mastodon, every local edit counts
    # A remote version whose only change is an image's description is a version too.
    image = {"type": "Image", "url": "https://p.example/a.jpg", "name": "Un techo"}
    before = {"content": "x", "summary": None, "attachments": [image]}
    assert changed(before, {**before, "attachments": [{**image, "name": "Un techo rojo"}]})


async def test_the_history_shows_a_local_posts_images_with_their_own_ids(node):
    token, ana = await member_token(node, "ana", None)
    first, second = await old_image(node, ana), await old_image(node, ana)
    _, posted = await api(node, token, "POST", "/api/v1/statuses", json={
        "status": "Techo", "media_ids": [str(first.id)]})
    _, edited = await api(node, token, "PUT", f"/api/v1/statuses/{posted['id']}",
                          json={"status": "Otra foto", "media_ids": [str(second.id)]})
    _, history = await api(node, token, "GET", f"/api/v1/statuses/{posted['id']}/history")
    # The ids the status itself gives its images (Media.id), not ones made from the post's.
    assert [[m["id"] for m in h["media_attachments"]] for h in history] == [
        [str(first.id)], [str(second.id)]] == [
        [m["id"] for m in s["media_attachments"]] for s in (posted, edited)]
    assert history[0]["media_attachments"][0]["description"] == "A roof"
    async with node.readers() as db:
        assert (await db.get(Media, first.id)).object_id is None


async def test_migration_0016_caps_future_dates_and_goes_back(tmp_path):
    settings = make_settings(tmp_path, database_url=testdb.empty_database_url(tmp_path))
    url = settings.effective_database_url
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0015_boost_status_ids")
    engine = make_engine(settings)
    try:
        async with engine.begin() as conn:
            for name in ("eva", "teo", "sol"):
                await conn.execute(text(
                    "INSERT INTO actors (uri, local, type, username, domain, manually_approves, "
                    "hold_replies, created_at) VALUES (:uri, false, 'Person', :name, "
                    "'p.example', false, false, '2026-01-01')"),
                    {"uri": f"https://p.example/u/{name}", "name": name})
            for n, (actor, published) in enumerate(((1, datetime(2999, 1, 1)),
                                                    (1, datetime(2026, 1, 1)),
                                                    (2, datetime(2025, 5, 5)))):
                await conn.execute(text(
                    "INSERT INTO objects (uri, type, actor_id, local, visibility, published, "
                    "hidden, approved) VALUES (:uri, 'Note', :actor, false, 'public', :published, "
                    "false, true)"),
                    {"uri": f"https://p.example/n/{n}", "actor": actor, "published": published})
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0016_status_edits")
        async with engine.connect() as conn:
            dates = dict((await conn.execute(text(
                "SELECT username, last_status_at FROM actors"))).all())
        assert "2026" <= str(dates["eva"])[:4] < "2999"  # now, not the claimed 2999
        assert str(dates["teo"]).startswith("2025-05-05") and dates["sol"] is None
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0015_boost_status_ids")
        async with engine.connect() as conn:
            with pytest.raises(Exception):  # noqa: B017 - the column is gone, whatever the driver says
                await conn.execute(text("SELECT last_status_at FROM actors"))
    finally:
        await engine.dispose()


async def test_an_edit_tags_only_the_hashtags_it_adds(node):
    """A post written on the web form before its texts' #words were tags: an edit from an app
    adds only the #words it types anew, in any language's text, and takes off those it drops."""
    token, ana = await member_token(node, "ana", None)
    async with node.writers() as db, db.begin():
        old = await publish_post(db, node.urls, await db.get(Actor, ana.id),
                                 contents={"es": "Minga #huerta #barrio", "en": "Work day #garden"},
                                 hashtags=["Barrio", "Vivienda"])
    status, edited = await api(node, token, "PUT", f"/api/v1/statuses/{old.id}", json={
        "status": "Minga el domingo #huerta #Nuevo", "language": "es"})
    assert status == 200, edited
    obj = await _post(node, old.id)
    # #huerta stays no tag, #barrio's tag went with its word, #garden (English text) no tag.
    assert [t["name"] for t in obj.tags if t["type"] == "Hashtag"] == ["#Vivienda", "#Nuevo"]
    assert retagged(["a", "b"], ["#a #b", "#c"], ["#a", "#c #d"]) == ["a", "d"]


async def test_a_deleted_posts_notifications_go_but_follows_stay(node):
    """Follows are about an account: one that names the post's URI (a server that lets people
    follow a thread) is not deleted with the post's favourites and mentions."""
    project = await node.create_actor("coop")
    _, ana = await member_token(node, "ana", None)
    async with node.writers() as db, db.begin():
        post = await publish_text_post(db, node.urls, project, "Se borrará")
        for n, kind in enumerate(("follow", "follow_request", "favourite", "mention")):
            db.add(Notification(recipient_id=project.id, type=kind, from_actor_id=ana.id,
                                object_uri=post.uri, activity_uri=f"{node.base}/a/{n}"))
    async with node.writers() as db, db.begin():
        await delete_post(db, node.urls, await db.get(Actor, project.id),
                          await db.get(Object, post.id))
    async with node.readers() as db:
        kinds = set(await db.scalars(select(Notification.type)))
    assert kinds == {"follow", "follow_request"}
