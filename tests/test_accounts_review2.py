"""Account management (issue 14, item 2), what a second review found: a deletion and a writer
locking each other on PostgreSQL, `admin revoke` leaving nobody to log in, a local actor's
activities handled after its deletion, Gone in a worker handler, a project set that changed
between the question and the deletion, the Delete to remote hubs, and Gone on the command line.
Every attack checks that nothing was stored or changed."""

from __future__ import annotations

import asyncio
import logging
import types

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from fedsph import cli
from fedsph.admin import account_commands, powers
from fedsph.errors import Gone, UserError
from fedsph.federation import emit
from fedsph.handlers import HANDLERS
from fedsph.models import Activity, Actor, Delivery, Follow, HubMembership, InboxItem, User
from fedsph.projects import commands as project_commands
from fedsph.projects import deletion
from fedsph.projects.deletion import delete_actor
from fedsph.web.keys import REMOTE
from fedsph.worker import Worker
from tests.support.db import a_lock_is_awaited, queue_signed_item
from tests.support.members import make_user
from tests.support.nodes import cli_node, use_data_dir, wait_long_before_retries

AS = "https://www.w3.org/ns/activitystreams"


async def _count(node, model, *where) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where))


async def _remote_actor(node, name: str) -> Actor:
    async with node.writers() as db, db.begin():
        actor = Actor(uri=f"https://far.example/users/{name}", local=False, type="Person",
                      username=name, domain="far.example",
                      inbox=f"https://far.example/users/{name}/inbox")
        db.add(actor)
    return actor


# --- S1. a writer holding a row that points at the actor, then asking for the actor's row ------

@pytest.mark.postgres
async def test_a_deletion_a_writer_deadlocks_is_tried_again_and_done(node, caplog):
    casa = await node.create_actor("casa")
    far = await _remote_actor(node, "far")
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=casa.id, followed_id=far.id, state="accepted"))
    caplog.set_level(logging.WARNING, "fedsph.deletion")
    async with node.writers() as writer, writer.begin():
        # This transaction must outlive the deadlock: PostgreSQL ends the waiter whose
        # deadlock_timeout runs out first, so the deletion's (1 s) must be the shorter.
        await writer.execute(text("SET LOCAL deadlock_timeout = '30s'"))
        # An unfollow: the follow row first (as outbox.unfollow deletes it), then the actor's.
        await writer.execute(select(Follow).where(Follow.follower_id == casa.id)
                             .with_for_update())
        deleting = asyncio.create_task(project_commands.project_delete(
            cli_node(node), types.SimpleNamespace(slug="casa", yes=True)))
        # the deletion holds casa's row and waits for the follow row
        assert await a_lock_is_awaited(node), "the deletion never waited for the follow row"
        # The deletion's deadlock_timeout (1 s) ends first: it finds the deadlock and gives way.
        await emit.refuse_tombstone(writer, await writer.get(Actor, casa.id), {"type": "Undo"})
        await writer.execute(text("DELETE FROM follows WHERE follower_id = :id"), {"id": casa.id})
    assert await deleting == 0
    assert "locked each other" in caplog.text
    async with node.readers() as db:
        assert (await db.get(Actor, casa.id)).deleted_at is not None
    assert await _count(node, Follow) == 0


async def test_retried_tries_three_times_on_a_deadlock_and_never_on_other_errors(node):
    def failing(sqlstate):
        calls = []

        async def work(db):
            calls.append(1)
            raise DBAPIError("SELECT", {}, types.SimpleNamespace(sqlstate=sqlstate))
        return calls, work
    calls, work = failing("40P01")
    with pytest.raises(DBAPIError):
        await deletion.retried(node.writers, work)
    assert len(calls) == 3
    calls, work = failing("23505")
    with pytest.raises(DBAPIError):
        await deletion.retried(node.writers, work)
    assert len(calls) == 1


# --- S2. `fedsph admin revoke` counts only the admins who can log in, under lock ----------------

async def test_revoking_the_last_admin_who_can_log_in_is_refused(node, capsys):
    root = await make_user(node, "root", admin=True)
    old = await make_user(node, "old", admin=True)
    async with node.writers() as db, db.begin():
        await db.execute(User.__table__.update().where(User.id == old.id)
                         .values(disabled_at=func.now()))
    args = types.SimpleNamespace(admin_command="revoke", username="root")
    with pytest.raises(UserError, match="only admin who can log in"):
        await powers.admin_set(cli_node(node), args)
    async with node.readers() as db:
        assert (await db.get(User, root.id)).is_admin is True
    # The disabled one may lose the role: root still logs in.
    await powers.admin_set(cli_node(node), types.SimpleNamespace(admin_command="revoke",
                                                                 username="old"))
    async with node.readers() as db:
        assert (await db.get(User, old.id)).is_admin is False


# --- S3, S4. the worker and a deleted local actor --------------------------------------------------

async def _finished(node, item_id: int) -> tuple[str, str | None]:
    async with node.readers() as db:
        item = await db.get(InboxItem, item_id)
        return item.status, item.last_error


async def test_what_a_local_actor_queued_before_its_deletion_is_ignored(node):
    casa, tierra = await node.create_actor("casa"), await node.create_actor("tierra")
    follow = {"@context": AS, "id": f"{casa.uri}#follows/1", "type": "Follow",
              "actor": casa.uri, "object": tierra.uri}
    item_id = await queue_signed_item(node, casa, follow)
    async with node.writers() as db, db.begin():
        await delete_actor(db, node.urls, await db.get(Actor, casa.id))
    before = await _count(node, Activity)
    await Worker(node.settings, node.writers, node.app[REMOTE]).run_once()
    assert await _finished(node, item_id) == ("ignored", "the sender was deleted")
    assert await _count(node, Follow) == 0
    assert await _count(node, Activity) == before, "no Accept from tierra to a tombstone"


async def test_gone_in_a_handler_ends_the_item_as_ignored_not_failed(node, monkeypatch, caplog):
    casa = await node.create_actor("casa")
    far = await _remote_actor(node, "far")
    async with node.writers() as db, db.begin():
        await delete_actor(db, node.urls, await db.get(Actor, casa.id))

    async def answers_for_the_tombstone(ctx, activity, actor):
        await emit.record_activity(ctx.db, await ctx.db.get(Actor, casa.id),
                                   {"id": f"{casa.uri}#accepts/1", "type": "Accept"}, None)
        return "done"
    monkeypatch.setitem(HANDLERS, "Follow", answers_for_the_tombstone)
    item_id = await queue_signed_item(node, far, {
        "@context": AS, "id": "https://far.example/f/1", "type": "Follow", "actor": far.uri,
        "object": casa.uri})
    before = await _count(node, Activity)
    await Worker(node.settings, node.writers, node.app[REMOTE]).run_once()
    status, error = await _finished(node, item_id)
    assert (status, error) == ("ignored", "actor deleted: This account was deleted.")
    assert "handler failed" not in caplog.text
    assert await _count(node, Activity) == before


async def test_a_handler_ended_by_a_deadlock_is_tried_again_not_failed(node, monkeypatch,
                                                                        caplog):
    wait_long_before_retries(node)  # the try is looked at before it is due again
    casa = await node.create_actor("casa")
    far = await _remote_actor(node, "far")

    async def deadlocked(ctx, activity, actor):  # as PostgreSQL ends the victim of a deadlock
        raise DBAPIError("SELECT", {}, types.SimpleNamespace(sqlstate="40P01"))
    monkeypatch.setitem(HANDLERS, "Follow", deadlocked)
    item_id = await queue_signed_item(node, far, {
        "@context": AS, "id": "https://far.example/f/2", "type": "Follow", "actor": far.uri,
        "object": casa.uri})
    await Worker(node.settings, node.writers, node.app[REMOTE]).run_once()
    async with node.readers() as db:
        item = await db.get(InboxItem, item_id)
    assert (item.status, item.attempts) == ("pending", 1)
    assert item.last_error.startswith("deadlock") and "handler failed" not in caplog.text
    assert await _count(node, Follow) == 0


# --- nits ---------------------------------------------------------------------------------------

async def test_a_user_delete_is_refused_when_the_projects_changed_since_the_question(
        node, monkeypatch):
    casa, tierra = await node.create_actor("casa"), await node.create_actor("tierra")
    ana = await make_user(node, "ana", casa)
    async with node.writers() as db, db.begin():
        db.add(account_commands.Membership(user_id=ana.id, project_id=tierra.id))
    monkeypatch.setattr(account_commands, "_confirmed", lambda username, projects: True)
    original = account_commands.projects_going_with
    calls = []

    async def left_since(db, user, with_projects):  # when asked, tierra had another member
        calls.append(1)
        found = await original(db, user, with_projects)
        return [p for p in found if p.username != "tierra"] if len(calls) == 1 else found
    monkeypatch.setattr(account_commands, "projects_going_with", left_since)
    before = await _count(node, Actor, Actor.deleted_at.is_(None))
    with pytest.raises(UserError, match="changed"):
        await account_commands.user_delete(cli_node(node), types.SimpleNamespace(
            username="ana", with_projects=True, yes=False))
    assert await _count(node, Actor, Actor.deleted_at.is_(None)) == before
    assert await _count(node, User) == 1


async def test_the_delete_reaches_remote_hubs_the_project_belonged_to(node):
    casa = await node.create_actor("casa")
    hub = await _remote_actor(node, "hub")
    pending = await _remote_actor(node, "pending")
    async with node.writers() as db, db.begin():
        db.add(HubMembership(hub_id=hub.id, project_id=casa.id, state="approved"))
        db.add(HubMembership(hub_id=pending.id, project_id=casa.id, state="pending"))
    async with node.writers() as db, db.begin():
        gone = await delete_actor(db, node.urls, await db.get(Actor, casa.id))
    assert gone.queued == 1
    async with node.readers() as db:
        assert list(await db.scalars(select(Delivery.inbox))) == [hub.inbox]


async def test_gone_on_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    async def gone(node, args):
        raise Gone("This account was deleted.")
    use_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setitem(cli.COMMANDS, "admin list", gone)
    assert await asyncio.to_thread(cli.main, ["migrate"]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["admin", "list"]) == 1
    assert capsys.readouterr().err == "fedsph: This account was deleted.\n"
