"""Nothing the inbox accepted is lost: a real `fedsph serve` is killed with SIGKILL in the middle
of a burst of signed Creates from 32 concurrent senders, restarted, and every activity that got
a 202 is processed exactly once (one inbox row, done; one stored post). On SQLite and PostgreSQL.

The server runs with its worker (as `fedsph serve` does by default), so the kill also lands
while items are being handled: a handled item's post and its "done" are one transaction, and
an item the dead worker had claimed is claimed again once its lease runs out (5 minutes: the
test runs the clock forward by expiring the leases in the database, as
tests/support/db.expire_leases does in-process).
"""

import asyncio
from datetime import timedelta

import aiohttp
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.models import InboxItem, Object, utcnow
from tests.processes import NodeProcess

SENDERS = 32
PER_SENDER = 12
KILL_AFTER = 120  # accepted requests before the SIGKILL
AS = "https://www.w3.org/ns/activitystreams"


def create(peer, actor, project_uri: str, sender: int, n: int) -> dict:
    note = f"{actor.uri}/notes/{sender}-{n}"
    return {"@context": AS, "id": note + "/activity", "type": "Create", "actor": actor.uri,
            "to": [project_uri], "cc": [f"{AS}#Public"],
            "object": {"id": note, "type": "Note", "attributedTo": actor.uri,
                       "to": [project_uri], "cc": [f"{AS}#Public"],
                       "content": f"<p>{sender}-{n}</p>", "published": "2026-01-01T00:00:00Z"}}


async def burst(node: NodeProcess, peer, actor, activities: list[list[dict]],
                kill_after: int | None) -> tuple[set[str], set[str]]:
    """(accepted ids, ids not accepted): each sender posts its own activities in order and
    stops at its first failure; the node is killed once `kill_after` were accepted."""
    accepted, refused = set(), set()
    inbox = f"{node.base}/inbox"

    async def sender(mine: list[dict]):
        for index, activity in enumerate(mine):
            try:
                status, _ = await peer.post(actor, inbox, activity)
            except (TimeoutError, aiohttp.ClientError):
                status = 0
            if status != 202:
                refused.update(a["id"] for a in mine[index:])
                return
            accepted.add(activity["id"])
            if kill_after is not None and len(accepted) >= kill_after:
                node.kill()

    await asyncio.gather(*(sender(mine) for mine in activities))
    return accepted, refused


async def counts(url: str) -> tuple[dict[str, list[tuple[str, int]]], dict[str, int], int]:
    """(activity id -> (status, attempts) of its inbox rows, post id -> rows, pending rows)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(InboxItem.activity_uri, InboxItem.status,
                                             InboxItem.attempts))).all()
            posts = (await conn.execute(select(Object.uri, func.count()).group_by(Object.uri))).all()
    finally:
        await engine.dispose()
    items: dict[str, list[tuple[str, int]]] = {}
    for uri, status, attempts in rows:
        items.setdefault(uri, []).append((status, attempts))
    pending = sum(status == "pending" for _, status, _ in rows)
    return items, dict(posts), pending


async def expire_leases(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(InboxItem).where(InboxItem.locked_until.is_not(None))
                               .values(locked_until=utcnow() - timedelta(seconds=1)))
    finally:
        await engine.dispose()


async def test_accepted_activities_survive_kill_9_and_are_processed_once(tmp_path, database_url,
                                                                          peer):
    node = NodeProcess(tmp_path / "node", FEDSPH_DATABASE_URL=database_url)
    node.data_dir.mkdir(parents=True)
    await asyncio.to_thread(node.cli, "migrate")
    await asyncio.to_thread(node.cli, "project", "create", "coop", "--name", "Coop")
    project_uri = f"{node.base}/actors/coop"
    actor = peer.add_actor("alice")
    activities = [[create(peer, actor, project_uri, sender, n) for n in range(PER_SENDER)]
                  for sender in range(SENDERS)]
    await asyncio.to_thread(node.start)
    try:
        accepted, refused = await burst(node, peer, actor, activities, KILL_AFTER)
        assert node.server.poll() is not None, "the node was not killed mid-burst"
        assert len(accepted) >= KILL_AFTER and refused, (len(accepted), len(refused))

        await expire_leases(database_url)  # the dead worker's 5-minute leases have run out
        await asyncio.to_thread(node.start)
        # The senders try again what was not accepted (Mastodon retries for days).
        retry = [[a for a in mine if a["id"] in refused] for mine in activities]
        accepted_late, refused_late = await burst(node, peer, actor, retry, None)
        assert not refused_late

        async def processed():
            return (await counts(database_url))[2] == 0

        for _ in range(600):
            if await processed():
                break
            await asyncio.sleep(0.5)
        items, posts, pending = await counts(database_url)
    finally:
        await asyncio.to_thread(node.stop)
    assert pending == 0, node.server_log()[-3000:]
    every = {a["id"] for mine in activities for a in mine}
    assert accepted | accepted_late == every
    for activity_id in every:
        # One row, handled once: a handler that ran twice would have counted two attempts (the
        # row's status and attempts are written in the handler's own transaction).
        assert items.get(activity_id) == [("done", 1)], (activity_id, items.get(activity_id))
        assert posts.get(activity_id.removesuffix("/activity")) == 1, activity_id
    assert len(items) == len(every)
