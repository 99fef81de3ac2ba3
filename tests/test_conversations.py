"""Issue 13, item 2: direct messages in the client API, and GET /api/v1/conversations.

A direct post puts a conversation at the top of the list of its author and of each local
account it addresses (one per set of other people), unread for the addressees; a reply by
the other side makes it unread for the author. Paged by the newest post's status id with Link
headers, as Mastodon's. Another account's conversation cannot be read or changed.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlalchemy import event, func, select

from fedsph.api.tokens import issue_token
from fedsph.models import Conversation, Notification, OAuthApp, Object, User, utcnow
from fedsph.projects.conversations import conversation_id_for, remove_direct_post
from tests.fakepeer import AS
from tests.support import testdb
from tests.support.members import api, member_token
from tests.support.nodes import flush


async def _dm(node, token: str, text: str, **extra) -> dict:
    status, body = await api(node, token, "POST", "/api/v1/statuses",
                             json={"status": text, "visibility": "direct", **extra})
    assert status == 200, body
    assert body["visibility"] == "direct"
    return body


async def _conversations(node, token: str, **params) -> list[dict]:
    status, body = await api(node, token, "GET", "/api/v1/conversations", params=params)
    assert status == 200, body
    return body


async def _rows(node) -> list[tuple]:
    async with node.readers() as db:
        return sorted((await db.execute(select(
            Conversation.id, Conversation.actor_id, Conversation.unread,
            Conversation.last_status_id))).all())


async def test_a_dm_between_members_makes_a_conversation_for_each(node):
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    cid_token, _ = await member_token(node, "cid", None)
    dm = await _dm(node, ana_token, "@bea the keys are under the mat")

    [on_bea] = await _conversations(node, bea_token)
    assert on_bea["unread"] is True and on_bea["last_status"]["id"] == dm["id"]
    assert on_bea["last_status"]["visibility"] == "direct"
    assert [a["acct"] for a in on_bea["accounts"]] == ["ana"]
    [on_ana] = await _conversations(node, ana_token)
    assert on_ana["unread"] is False and [a["acct"] for a in on_ana["accounts"]] == ["bea"]
    assert await _conversations(node, cid_token) == []
    async with node.readers() as db:  # a mention notification, as Mastodon gives for a DM
        kinds = list(await db.scalars(select(Notification.type).where(
            Notification.recipient_id == bea.id)))
    assert kinds == ["mention"]

    # Bea replies: the same conversation, now unread for Ana and read for Bea.
    reply = await _dm(node, bea_token, "@ana thanks!", in_reply_to_id=dm["id"])
    [on_ana] = await _conversations(node, ana_token)
    assert on_ana["unread"] is True and on_ana["last_status"]["id"] == reply["id"]
    [on_bea2] = await _conversations(node, bea_token)
    assert on_bea2["id"] == on_bea["id"] and on_bea2["unread"] is False

    status, read = await api(node, ana_token, "POST", f"/api/v1/conversations/{on_ana['id']}/read")
    assert status == 200 and read["unread"] is False and read["id"] == on_ana["id"]
    assert (await _conversations(node, ana_token))[0]["unread"] is False


async def test_another_accounts_conversation_cannot_be_read_or_removed(node):
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    cid_token, _ = await member_token(node, "cid", None)
    await _dm(node, ana_token, "@bea a secret")
    [on_bea] = await _conversations(node, bea_token)
    before = await _rows(node)
    for method, path in (("POST", f"/api/v1/conversations/{on_bea['id']}/read"),
                         ("DELETE", f"/api/v1/conversations/{on_bea['id']}"),
                         ("POST", "/api/v1/conversations/999999/read"),
                         ("DELETE", "/api/v1/conversations/99999999999999999999999")):
        status, body = await api(node, cid_token, method, path)
        assert status == 404 and body == {"error": "Record not found"}, (method, path)
    status, _ = await api(node, cid_token, "GET", f"/api/v1/statuses/{on_bea['last_status']['id']}")
    assert status == 404
    assert await _rows(node) == before
    assert (await _conversations(node, bea_token))[0]["unread"] is True


async def test_removing_a_conversation_keeps_its_posts_and_a_new_dm_brings_it_back(node):
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    dm = await _dm(node, ana_token, "@bea first")
    [on_bea] = await _conversations(node, bea_token)
    status, body = await api(node, bea_token, "DELETE", f"/api/v1/conversations/{on_bea['id']}")
    assert status == 200 and body == {}
    assert await _conversations(node, bea_token) == []
    assert len(await _conversations(node, ana_token)) == 1  # only Bea's list changed
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{dm['id']}")
    assert status == 200
    second = await _dm(node, ana_token, "@bea second")
    [back] = await _conversations(node, bea_token)
    assert back["last_status"]["id"] == second["id"] and back["unread"] is True


async def test_a_deleted_dm_leaves_its_conversation(node):
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    first = await _dm(node, ana_token, "@bea one")
    second = await _dm(node, ana_token, "@bea two")
    status, _ = await api(node, ana_token, "DELETE", f"/api/v1/statuses/{second['id']}")
    assert status == 200
    [on_bea] = await _conversations(node, bea_token)
    assert on_bea["last_status"]["id"] == first["id"]
    status, _ = await api(node, ana_token, "DELETE", f"/api/v1/statuses/{first['id']}")
    assert status == 200
    assert await _conversations(node, bea_token) == []
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Conversation.id))) == 0


async def test_conversations_are_paged_by_their_newest_post(node):
    ana_token, _ = await member_token(node, "ana", None)
    for name in ("bea", "cid", "dan"):
        await member_token(node, name, None)
    posted = [await _dm(node, ana_token, f"@{name} hello") for name in ("bea", "cid", "dan")]
    newest_first = [p["id"] for p in reversed(posted)]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ana_token}"}) as http, \
            http.get(f"{node.base}/api/v1/conversations", params={"limit": "2"}) as answer:
        first = await answer.json()
        link = answer.headers["Link"]
    assert [c["last_status"]["id"] for c in first] == newest_first[:2]
    assert f"max_id={newest_first[1]}" in link and f"min_id={newest_first[0]}" in link
    rest = await _conversations(node, ana_token, limit="2", max_id=newest_first[1])
    assert [c["last_status"]["id"] for c in rest] == newest_first[2:]
    newer = await _conversations(node, ana_token, min_id=newest_first[2])
    assert [c["last_status"]["id"] for c in newer] == newest_first[:2]


async def test_a_read_only_token_cannot_change_conversations(node):
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    await _dm(node, ana_token, "@bea hi")
    [on_bea] = await _conversations(node, bea_token)
    async with node.writers() as db, db.begin():
        user_id = await db.scalar(select(User.id).where(User.actor_id == bea.id))
        app = OAuthApp(client_id="readonly-app", client_secret_hash="-", name="ro",
                       redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes="read")
        db.add(app)
        await db.flush()
        readonly, _ = await issue_token(db, app, user_id, bea.id, ["read"])
    assert len(await _conversations(node, readonly)) == 1
    before = await _rows(node)
    status, _ = await api(node, readonly, "POST", f"/api/v1/conversations/{on_bea['id']}/read")
    assert status == 403
    assert await _rows(node) == before


@pytest.mark.skipif(not testdb.on_postgresql(), reason="SQLite runs one writer at a time")
async def test_two_transactions_making_one_conversation_at_once_share_it(node):
    """PostgreSQL: the second INSERT waits for the first transaction, hits the unique index,
    and finds the committed row instead of failing the post."""
    _, ana = await member_token(node, "ana", None)
    others = [f"{node.base}/actors/bea"]
    first_flushed, release = asyncio.Event(), asyncio.Event()

    async def first():
        async with node.writers() as db, db.begin():
            made = await conversation_id_for(db, ana, others)
            first_flushed.set()
            await release.wait()
            return made

    async def second():
        await first_flushed.wait()
        async with node.writers() as db, db.begin():
            waiting = asyncio.ensure_future(conversation_id_for(db, ana, others))
            await asyncio.sleep(0.3)  # blocked on the first transaction's row
            release.set()
            return await waiting

    made, found = await asyncio.gather(first(), second())
    assert made == found
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Conversation.id))) == 1


async def _from(node, peer, author, to: list[str], kind: str = "Create",
                note: dict | None = None) -> dict:
    note = note or {"id": peer.new_id("notes"), "type": "Note", "attributedTo": author.uri,
                    "content": "<p>between us</p>", "published": "2026-01-02T10:00:00Z"}
    note = {**note, "to": to}
    status, body = await peer.post(author, f"{node.base}/inbox", {
        "@context": AS, "id": peer.new_id(), "type": kind, "actor": author.uri, "object": note})
    assert status == 202, body
    await flush(node)
    return note


async def _status_id(node, uri: str) -> str:
    async with node.readers() as db:
        return str(await db.scalar(select(Object.id).where(Object.uri == uri)))


async def test_a_remote_dm_deleted_falls_back_to_the_previous_one(node, peer):
    """Eva's second DM to Ana, later edited to also name Cid, then deleted by Eva: Ana's
    conversation shows the first again (compared with the people it was made with, not the
    edited post's). A Delete by someone else changes nothing; Eva's Delete of the first ends it."""
    ana_token, ana = await member_token(node, "ana", None)
    _, cid = await member_token(node, "cid", None)
    eva, mallory = peer.add_actor("eva"), peer.add_actor("mallory")
    first = await _from(node, peer, eva, [ana.uri])
    second = await _from(node, peer, eva, [ana.uri])
    await _from(node, peer, eva, [ana.uri, cid.uri], "Update",
                {**second, "content": "<p>and Cid</p>", "updated": "2026-01-03T10:00:00Z"})
    [row] = await _conversations(node, ana_token)
    assert row["last_status"]["id"] == await _status_id(node, second["id"])
    status, _ = await peer.post(mallory, f"{node.base}/inbox", {
        "@context": AS, "id": peer.new_id(), "type": "Delete", "actor": mallory.uri,
        "object": first["id"]})
    assert status == 202
    before = await _rows(node)
    await flush(node)
    assert await _rows(node) == before
    for note, left in ((second, [await _status_id(node, first["id"])]), (first, [])):
        status, _ = await peer.post(eva, f"{node.base}/inbox", {
            "@context": AS, "id": peer.new_id(), "type": "Delete", "actor": eva.uri,
            "object": note["id"]})
        assert status == 202
        await flush(node)
        assert [c["last_status"]["id"] for c in await _conversations(node, ana_token)] == left
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Conversation.id))) == 0


async def test_a_deleted_actor_leaves_the_conversation_with_an_earlier_post(node, peer):
    """Zed's account is deleted, and its posts with it: Ana's conversation with Eva and Zed
    shows Eva's earlier post instead of vanishing (its newest post gone, NULL, not listed)."""
    ana_token, ana = await member_token(node, "ana", None)
    eva, zed = peer.add_actor("eva"), peer.add_actor("zed")
    earlier = await _from(node, peer, eva, [ana.uri, zed.uri])
    await _from(node, peer, zed, [ana.uri, eva.uri])
    [row] = await _conversations(node, ana_token)
    status, _ = await peer.post(zed, f"{node.base}/inbox", {
        "@context": AS, "id": f"{zed.uri}#delete", "type": "Delete", "actor": zed.uri,
        "object": zed.uri})
    assert status == 202
    await flush(node)
    [after] = await _conversations(node, ana_token)
    assert after["id"] == row["id"]
    assert after["last_status"]["id"] == await _status_id(node, earlier["id"])


async def test_since_id_gives_the_conversations_newer_than_a_post(node):
    ana_token, _ = await member_token(node, "ana", None)
    for name in ("bea", "cid", "dan"):
        await member_token(node, name, None)
    posted = [await _dm(node, ana_token, f"@{name} hello") for name in ("bea", "cid", "dan")]
    newer = await _conversations(node, ana_token, since_id=posted[0]["id"])
    assert [c["last_status"]["id"] for c in newer] == [posted[2]["id"], posted[1]["id"]]
    assert await _conversations(node, ana_token, since_id=posted[2]["id"]) == []


async def test_a_deleted_dm_costs_the_same_statements_for_any_number_of_conversations(node):
    """Finding the previous post reads the candidates and their audiences once for all the
    conversations of the deleted post, not once per conversation (nor per candidate)."""
    ana_token, _ = await member_token(node, "ana", None)
    names = ["bea", "cid", "dan", "eli", "fay"]
    for name in names:
        await member_token(node, name, None)
    engine = node.writers.kw["bind"].sync_engine
    counts = []
    for people in (names[:1], names):
        mentions = " ".join(f"@{n}" for n in people)
        earlier = await _dm(node, ana_token, f"{mentions} one")
        newest = await _dm(node, ana_token, f"{mentions} two")
        seen: list[str] = []

        def record(_conn, _cursor, statement, *_args, seen=seen):
            seen.append(statement)

        before = await _rows(node)
        async with node.writers() as db, db.begin():
            obj = await db.get(Object, int(newest["id"]))
            obj.deleted_at = utcnow()
            await db.flush()
            event.listen(engine, "before_cursor_execute", record)
            try:
                await remove_direct_post(db, obj)
            finally:
                event.remove(engine, "before_cursor_execute", record)
        counts.append(len(seen))
        after = {row_id: last for row_id, _, _, last in await _rows(node)}
        moved = [row_id for row_id, _, _, last in before if last == int(newest["id"])]
        assert moved and len(after) == len(before)  # every row falls back, none is lost
        assert all(after[row_id] == int(earlier["id"]) for row_id in moved), (before, after)
    assert counts[0] == counts[1], counts
