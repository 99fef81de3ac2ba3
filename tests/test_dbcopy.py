"""`fedsph db copy --to postgresql+asyncpg://…`: a SQLite node moves to PostgreSQL whole, and
the copy refuses a target that is not empty (changing nothing) or a source not migrated."""

from __future__ import annotations

import base64
import sqlite3

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.admin.dbcopy import CopyRefused, copy_database
from fedsph.federation.crypto import rsa_sign, rsa_verify
from fedsph.models import (
    Actor,
    Base,
    Delivery,
    InboxItem,
    Media,
    Object,
    Reaction,
    StatusCounter,
)
from fedsph.projects.media import save_upload
from fedsph.projects.outbox_reactions import announce_object, unannounce_object
from tests.support.db import add_remote_follower
from tests.support.images import jpeg
from tests.support.nodes import make_settings, start_node
from tests.support.pages import make_project, publish

FOLLOWER = {"id": "https://peer.example/users/ana", "type": "Person", "preferredUsername": "ana",
            "inbox": "https://peer.example/users/ana/inbox",
            "publicKey": {"id": "https://peer.example/users/ana#main-key",
                          "owner": "https://peer.example/users/ana",
                          "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"}}


async def _get(url: str, accept: str = "application/activity+json") -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Accept": accept}) as resp:
        return resp.status, await resp.text()


def sqlite_settings_for(tmp_path):
    """A node on SQLite, whatever engine the run gives other tests: the copy's source."""
    return make_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'fedsph.sqlite3'}")


async def _counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {table.name: await conn.scalar(select(func.count()).select_from(table))
                    for table in Base.metadata.sorted_tables}
    finally:
        await engine.dispose()


async def _fill(node) -> dict:
    """Projects, a post with a photo, a remote follower, deliveries and an inbox item; returns
    what the node showed before the move."""
    project = await make_project(node, "coop")
    await make_project(node, "barrio")
    await add_remote_follower(node, project, FOLLOWER)
    async with node.writers() as db, db.begin():
        owner = await db.get(Actor, project.id)
        photo = await save_upload(db, node.settings, owner, jpeg(), "Obra", "CC-BY-4.0", None)
    post = await publish(node, project, contents={"es": "<p>Primera piedra</p>"}, media=[photo])
    async with node.writers() as db, db.begin():
        # A boost: its status id comes after the post's, from the posts' sequence once moved.
        await announce_object(db, node.urls, await db.scalar(
            select(Actor).where(Actor.username == "barrio")), await db.get(Object, post.id))
    async with node.writers() as db, db.begin():
        # And the newest status, another boost, undone: its id must not be given again.
        coop = await db.get(Actor, project.id)
        await announce_object(db, node.urls, coop, await db.get(Object, post.id))
    async with node.writers() as db, db.begin():
        await unannounce_object(db, node.urls, await db.get(Actor, project.id),
                                await db.get(Object, post.id))
        db.add(InboxItem(activity_uri="https://peer.example/activities/1", type="Like",
                         actor_uri=FOLLOWER["id"], body=orjson.dumps({"type": "Like"})))
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Delivery.id))) >= 1
        assert await db.scalar(select(func.count(Media.id))) == 1
    before = {path: await _get(node.base + path) for path in ("/actors/coop", "/actors/barrio",
                                                            post.uri.removeprefix(node.base))}
    before["page"] = await _get(node.base + "/actors/coop", accept="text/html")
    return before


@pytest.mark.postgres
async def test_a_sqlite_node_moves_to_postgresql_whole(tmp_path, pg_database_url):
    sqlite_settings = sqlite_settings_for(tmp_path)
    node = await start_node(sqlite_settings)
    try:
        before = await _fill(node)
    finally:
        await node.runner.cleanup()
    expected = await _counts(sqlite_settings.effective_database_url)
    with sqlite3.connect(sqlite_settings.effective_database_url.split("///", 1)[1]) as raw:
        [(undone,)] = raw.execute("SELECT n FROM status_counter").fetchall()
        [(boosted,)] = raw.execute("SELECT max(status_id) FROM reactions").fetchall()
    assert undone > boosted
    # A SQLite-only table, as an FTS5 index's shadow tables are: skipped, and said so.
    with sqlite3.connect(sqlite_settings.effective_database_url.split("///", 1)[1]) as raw:
        raw.execute("CREATE TABLE directory_search_data (id INTEGER PRIMARY KEY, block BLOB)")
        raw.execute("INSERT INTO directory_search_data (block) VALUES (x'00')")

    lines = await copy_database(sqlite_settings, pg_database_url)
    assert any("copied 1 row(s) of media" in line for line in lines)
    assert any(line.startswith("skipped") and "directory_search_data" in line for line in lines)
    assert "verified the row counts" in "\n".join(lines)
    assert await _counts(pg_database_url) == expected

    moved = await start_node(make_settings(tmp_path, port=sqlite_settings.port,
                                           database_url=pg_database_url))
    try:
        for path, (status, body) in before.items():
            if path == "page":
                assert (await _get(moved.base + "/actors/coop", accept="text/html")) == (status, body)
            else:
                assert await _get(moved.base + path) == (status, body)
        # The key peers have cached still checks what the moved node signs.
        public_pem = orjson.loads(before["/actors/coop"][1])["publicKey"]["publicKeyPem"]
        async with moved.readers() as db:
            coop = await db.scalar(select(Actor).where(Actor.username == "coop"))
        signature = rsa_sign(coop.private_key_pem, b"moved")
        assert rsa_verify(public_pem, signature, b"moved"), base64.b64encode(signature)
        # The sequences were moved past the copied ids: new rows do not collide.
        post = await publish(moved, coop, contents={"es": "<p>Después de la mudanza</p>"})
        async with moved.readers() as db:
            assert post.id == await db.scalar(select(func.max(Object.id)))
            assert post.id > await db.scalar(select(func.max(Reaction.status_id)))
            assert post.id > undone == await db.scalar(select(StatusCounter.n))
    finally:
        await moved.runner.cleanup()

    # A second copy into the now non-empty target is refused, and changes nothing.
    counts = await _counts(pg_database_url)
    with pytest.raises(CopyRefused, match="not empty"):
        await copy_database(sqlite_settings, pg_database_url)
    assert await _counts(pg_database_url) == counts


@pytest.mark.postgres
async def test_a_source_not_migrated_is_refused(tmp_path, pg_database_url):
    with pytest.raises(CopyRefused, match="run `fedsph migrate` first"):
        await copy_database(sqlite_settings_for(tmp_path), pg_database_url)
    engine = create_async_engine(pg_database_url)
    try:
        async with engine.connect() as conn:
            assert not await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync))
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_row_postgresql_refuses_is_named_and_nothing_is_kept(tmp_path, pg_database_url):
    # SQLite keeps a NUL in a remote actor's name; PostgreSQL refuses it. The copy must say
    # which row, and keep nothing.
    settings = sqlite_settings_for(tmp_path)
    node = await start_node(settings)
    try:
        await make_project(node, "coop")
    finally:
        await node.runner.cleanup()
    with sqlite3.connect(settings.effective_database_url.split("///", 1)[1]) as raw:
        raw.execute("UPDATE actors SET name = 'Co' || char(0) || 'op' WHERE username = 'coop'")
        actor_id = raw.execute("SELECT id FROM actors WHERE username = 'coop'").fetchone()[0]
    with pytest.raises(CopyRefused, match=rf"actors with id={actor_id}.*Nothing was kept"):
        await copy_database(settings, pg_database_url)
    counts = await _counts(pg_database_url)
    assert counts["actors"] == counts["objects"] == 0


@pytest.mark.sqlite
def test_the_target_may_come_from_the_environment(fedsph, monkeypatch):
    # A URL with a password on the command line is visible to every local user.
    fedsph("migrate")
    code, out = fedsph("db", "copy")
    assert code == 1 and "FEDSPH_COPY_TO_DATABASE_URL" in out
    monkeypatch.setenv("FEDSPH_COPY_TO_DATABASE_URL", "sqlite+aiosqlite:////tmp/x.sqlite3")
    code, out = fedsph("db", "copy")
    assert code == 1 and "postgresql+asyncpg://" in out  # it was read, and refused as before


@pytest.mark.sqlite
def test_the_command_refuses_a_target_that_is_not_postgresql(fedsph):
    fedsph("migrate")
    code, out = fedsph("db", "copy", "--to", "sqlite+aiosqlite:////tmp/x.sqlite3")
    assert code == 1 and "postgresql+asyncpg://" in out
