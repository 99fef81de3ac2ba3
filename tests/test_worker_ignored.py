"""An item its handler ignores keeps nothing of what the handler wrote, but the sender's row
fetched for it is kept (stored in the handler's transaction, and again in the one that marks
the item ignored: fedsph/worker.py), on SQLite and PostgreSQL; a handled one keeps both, in one
transaction. An item of a type with no handler keeps its sender's row too."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from fedsph.handlers import HANDLERS, Ignored
from fedsph.models import Actor, Block, InboxItem
from fedsph.web.keys import REMOTE
from fedsph.worker import Worker
from tests.support.slowpeer import HoldingPeer

AS = "https://www.w3.org/ns/activitystreams"


def _written_then(outcome: str):
    async def handler(ctx, activity, actor):
        assert actor.uri == activity["actor"]  # the sender's row, in this transaction
        ctx.db.add(Block(domain=f"{outcome}.example"))
        await ctx.db.flush()
        if outcome == "ignored":
            raise Ignored("not for us after all")
        return "done"
    return handler


async def _run(db_node, monkeypatch, outcome: str):
    peer = await HoldingPeer().start()
    try:
        project = await db_node.create_actor("coop")
        ana = peer.add_actor("ana")
        if outcome == "unhandled":
            monkeypatch.delitem(HANDLERS, "Follow")
        else:
            monkeypatch.setitem(HANDLERS, "Follow", _written_then(outcome))
        activity = {"@context": AS, "id": peer.new_id(), "type": "Follow", "actor": ana.uri,
                    "object": project.uri}
        async with db_node.writers() as db, db.begin():  # as the inbox stores it
            item = InboxItem(activity_uri=activity["id"], type="Follow", actor_uri=ana.uri,
                             body=orjson.dumps(activity), signed_by_actor=True)
            db.add(item)
            await db.flush()
            item_id = item.id
        worker = Worker(db_node.settings, db_node.writers, db_node.app[REMOTE])
        assert (await worker.run_once()).processed == 1
        async with db_node.readers() as db:
            item = await db.get(InboxItem, item_id)
            blocks = await db.scalar(select(func.count(Block.id)))
            sender = await db.scalar(select(Actor.id).where(Actor.uri == ana.uri))
        return item, blocks, sender
    finally:
        await peer.stop()


async def test_an_ignored_item_keeps_none_of_its_writes_but_its_new_sender(db_node, monkeypatch):
    item, blocks, sender = await _run(db_node, monkeypatch, "ignored")
    assert (item.status, item.last_error, item.locked_until) == ("ignored", "not for us after all",
                                                                 None)
    assert blocks == 0
    assert sender is not None  # else each next ignored activity would fetch it again


async def test_an_item_with_no_handler_keeps_its_new_sender(db_node, monkeypatch):
    item, blocks, sender = await _run(db_node, monkeypatch, "unhandled")
    assert (item.status, item.last_error) == ("ignored", "no handler for Follow")
    assert blocks == 0
    assert sender is not None


async def test_a_handled_item_keeps_its_writes_and_its_new_sender(db_node, monkeypatch):
    item, blocks, sender = await _run(db_node, monkeypatch, "done")
    assert (item.status, item.last_error) == ("done", None)
    assert blocks == 1
    assert sender is not None
