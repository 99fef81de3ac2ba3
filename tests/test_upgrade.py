"""Upgrading a node: a database at EVERY earlier schema revision, holding representative data,
is brought to the newest with `fedsph migrate`; the data is intact, and a real node serves it.

The revisions are read from the migrations' script directory, so one added later is tested
without touching this file. The rows are written with SQL against the schema as it was at that
revision (tests/support/old_schema.py). Every revision gets the row checks; a real `fedsph serve`
is started for a sample (the oldest, one in the middle and the one before the newest), as each
start costs seconds on a small machine and the serving code is the same for all.
"""

from __future__ import annotations

import asyncio
import io
import os
import urllib.request

import orjson
import pytest
import requests
from alembic import command
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mastodon import Mastodon
from PIL import Image
from sqlalchemy import MetaData, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.accounts import SESSION_COOKIE
from fedsph.db import alembic_config, head_revision
from fedsph.models import Base
from tests.fakepeer import free_port
from tests.processes import NodeProcess
from tests.support import testdb
from tests.support.old_schema import (
    MEDIA_FILE,
    MIGRATED,
    NOTE_ID,
    SESSION,
    TOKEN,
    representative_rows,
    same,
    write_rows,
)

SCRIPTS = ScriptDirectory.from_config(alembic_config("sqlite://"))
CHAIN = [script.revision for script in reversed(list(SCRIPTS.walk_revisions()))]
EARLIER = CHAIN[:-1]
# FEDSPH_UPGRADE_SERVE_ALL=1 serves every revision (about 40% more CPU time, over a minute more
# of waiting on a busy 2-core machine): worth it after changing a migration.
SERVED = (set(EARLIER) if os.environ.get("FEDSPH_UPGRADE_SERVE_ALL")
          else {EARLIER[0], EARLIER[len(EARLIER) // 2], EARLIER[-1]})


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return public.decode(), private.decode()


def test_every_earlier_revision_is_covered():
    assert EARLIER[0] == "0001" and head_revision() not in EARLIER
    assert len(EARLIER) >= 17 and len(SERVED) >= 3


@pytest.mark.parametrize("revision", EARLIER)
def test_a_node_at_an_old_revision_upgrades_with_its_data(revision, tmp_path, keys):
    node = NodeProcess(tmp_path / "node", port=free_port())
    node.data_dir.mkdir()
    url = testdb.empty_database_url(node.data_dir)
    command.upgrade(alembic_config(url), revision)
    written = asyncio.run(write_rows(url, representative_rows(node.base, node.domain, *keys)))
    # Later tables (client tokens, login sessions, events, hubs) come with later revisions.
    assert {"actors", "objects", "activities", "follows", "deliveries", "inbox_items"} <= set(written)
    photo = _webp()
    (node.data_dir / "media").mkdir()
    (node.data_dir / "media" / MEDIA_FILE).write_bytes(photo)

    result = node.cli("migrate")
    assert "Traceback" not in result.stderr, result.stderr
    asyncio.run(_check_rows(url, written, revision))
    asyncio.run(_check_data_migrations(url, node.base, revision))
    if revision in SERVED:
        _check_served(node, keys[0], photo, set(written))


def _runs(migration: str, revision: str) -> bool:
    """Whether `fedsph migrate` from `revision` ran `migration`."""
    return CHAIN.index(revision) < CHAIN.index(migration)


def test_the_data_migrations_checked_are_in_the_chain():
    assert {migration for migration, *_ in MIGRATED} | {"0010_proof_keys", "0016_status_edits"} \
        <= set(CHAIN)


async def _check_data_migrations(url: str, base: str, revision: str) -> None:
    """What the data migrations a node went through made of its rows (MIGRATED and below)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if _runs("0007", revision):  # the direct post's addressee is recorded
                audience = (await conn.execute(text(
                    "SELECT actor_uri FROM object_audience WHERE object_id = 12"))).scalars().all()
                assert audience == [f"{base}/actors/ana"], (revision, audience)
            if _runs("0010_proof_keys", revision):  # every local actor has its own proof key
                keys = (await conn.execute(text(
                    "SELECT proof_key_pem FROM actors WHERE local ORDER BY id"))).scalars().all()
                assert len(keys) == 2 and all(keys) and keys[0] != keys[1], revision
            if _runs("0016_status_edits", revision):  # the date of each account's newest post
                dates = dict((await conn.execute(text(
                    "SELECT a.id, a.last_status_at = (SELECT max(published) FROM objects o "
                    "WHERE o.actor_id = a.id AND o.type <> 'Event') FROM actors a "
                    "WHERE a.id IN (1, 3)"))).all())
                assert dates == {1: True, 3: True}, (revision, dates)
    finally:
        await engine.dispose()


def _webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (180, 90, 40)).save(out, "WEBP")
    return out.getvalue()


async def _check_rows(url: str, written: dict, revision: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() \
                == head_revision()
            metadata = MetaData()
            await conn.run_sync(metadata.reflect)
            assert set(Base.metadata.tables) <= set(metadata.tables)
            expected = {(table, row_id, column): value for migration, table, row_id, column, value
                        in MIGRATED if _runs(migration, revision)}
            for name, rows in written.items():
                table = metadata.tables[name]
                assert (await conn.execute(select(table))).all().__len__() == len(rows), name
                for row in rows:
                    key = "id" if "id" in row else "object_id"
                    stored = (await conn.execute(
                        select(table).where(table.c[key] == row[key]))).mappings().one()
                    for column, value in row.items():
                        # A column dropped since has no value to compare.
                        if column in stored:
                            value = expected.get((name, row[key], column), value)
                            assert same(value, stored[column]), (revision, name, column, stored[column])
            boost = (await conn.execute(text(
                "SELECT status_id FROM reactions WHERE type = 'Announce'"))).scalar()
            highest_post = (await conn.execute(text("SELECT max(id) FROM objects"))).scalar()
            assert boost is not None and boost > highest_post  # numbered by 0015 or kept
    finally:
        await engine.dispose()


def _check_served(node: NodeProcess, public_pem: str, photo: bytes, tables: set[str]) -> None:
    node.start()
    try:
        status, body = node.get("/actors/coop")
        actor = orjson.loads(body)
        assert status == 200 and actor["id"] == f"{node.base}/actors/coop"
        assert actor["publicKey"]["publicKeyPem"].strip() == public_pem.strip()
        assert actor["name"] == "Cooperativa Ñandé"

        status, body = node.get("/actors/coop/outbox?page=1")
        assert status == 200
        items = orjson.loads(body)["orderedItems"]
        assert f"{node.base}/objects/{NOTE_ID}" in {item["object"]["id"] for item in items}

        status, body = node.get(f"/objects/{NOTE_ID}")
        assert status == 200 and "Techamos hoy" in orjson.loads(body)["content"]
        status, body = node.get(f"/objects/event{NOTE_ID[5:]}")
        assert status == 200 and orjson.loads(body)["name"] == "Asamblea de vecinos"
        for relation in ("followers", "following"):  # rosa follows coop, and coop follows rosa
            status, body = node.get(f"/actors/coop/{relation}")
            assert status == 200 and orjson.loads(body)["totalItems"] == 1, relation

        with urllib.request.urlopen(f"{node.base}/media/{MEDIA_FILE}", timeout=10) as response:
            assert response.read() == photo

        _check_old_logins(node, tables)
        assert "Traceback" not in node.server_log()
    finally:
        node.stop()


def _check_old_logins(node: NodeProcess, tables: set[str]) -> None:
    if "oauth_tokens" in tables:  # the token a phone app was given before the upgrade works
        api = Mastodon(access_token=TOKEN, api_base_url=node.base, version_check_mode="none")
        account = api.account_verify_credentials()
        assert account["username"] == "coop"
        note = next(s for s in api.account_statuses(account["id"]) if s["uri"].endswith(NOTE_ID))
        assert note["media_attachments"][0]["url"].endswith(MEDIA_FILE)
    if "login_sessions" in tables:  # and so does the browser's login
        page = requests.get(node.base + "/", cookies={SESSION_COOKIE: SESSION}, timeout=10)
        assert page.status_code == 200 and 'action="/logout"' in page.text
