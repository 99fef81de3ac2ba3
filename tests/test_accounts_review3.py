"""Account deletion and the worker (issue 14), what a third review found: a write PostgreSQL ends
to break a deadlock answered 503 (not a 500 with a traceback), the deleted-local-sender check
read under lock (and a sender row gone), the projects a user deletion takes counted under lock,
"deleted" logged once the deletion committed, and a server error on the command line keeping
its traceback. Every refusal checks that nothing was stored."""

from __future__ import annotations

import asyncio
import logging
import types

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph import cli
from fedsph.admin import account_commands
from fedsph.core.db_errors import lock_conflict
from fedsph.errors import ServiceUnavailable
from fedsph.federation import emit
from fedsph.models import Activity, Actor, InboxItem, Membership, Object, User
from fedsph.projects import commands as project_commands
from fedsph.projects import deletion
from fedsph.web.keys import REMOTE
from fedsph.worker import Worker
from tests.support.db import queue_signed_item
from tests.support.members import api, browser, csrf_from, login, make_user, member_token, multipart
from tests.support.nodes import cli_node, use_data_dir

AS = "https://www.w3.org/ns/activitystreams"


def _ended(sqlstate: str) -> DBAPIError:
    """As SQLAlchemy's asyncpg dialect raises it: a plain DBAPIError whose orig has sqlstate."""
    return DBAPIError("SELECT actors.id FROM actors FOR UPDATE", {},
                      types.SimpleNamespace(sqlstate=sqlstate))


async def _count(node, model, *where) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where))


# --- S1. a write ended by PostgreSQL: 503 with Retry-After, a warning without traceback --------

def test_lock_conflict_knows_the_two_sqlstates_and_nothing_else():
    assert lock_conflict(_ended("40P01")) and lock_conflict(_ended("40001"))
    assert not lock_conflict(_ended("23505")) and not lock_conflict(ValueError("40P01"))
    assert not lock_conflict(DBAPIError("SELECT", {}, Exception("no sqlstate")))


def _ended_in_emit(monkeypatch, sqlstate: str) -> None:
    async def ended(db, actor, document):  # where the deletion-vs-writer cycle ends a writer
        raise _ended(sqlstate)
    monkeypatch.setattr(emit, "refuse_tombstone", ended)


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_a_web_post_ended_by_a_deadlock_answers_503(node, monkeypatch, caplog, sqlstate):
    casa = await node.create_actor("casa")
    await make_user(node, "ana", casa)
    async with browser() as ana:
        await login(ana, node, "ana")
        page = f"{node.base}/actors/casa/compose"
        token = await csrf_from(ana, page)
        _ended_in_emit(monkeypatch, sqlstate)
        with caplog.at_level(logging.WARNING):
            async with ana.post(page, data=multipart(token, {"text_en": "tarde",
                                                             "text_es": "tarde"}),
                                allow_redirects=False) as answer:
                assert answer.status == 503, await answer.text()
                assert answer.headers["Retry-After"] == "1"
    conflict = [r for r in caplog.records if "lock conflict" in r.getMessage()]
    assert conflict and all(r.levelno == logging.WARNING and r.exc_info is None
                            for r in conflict)
    assert "unhandled error" not in caplog.text and "Traceback" not in caplog.text
    assert await _count(node, Object) == 0 and await _count(node, Activity) == 0


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_an_api_post_ended_by_a_deadlock_answers_503(node, monkeypatch, caplog, sqlstate):
    token, _ = await member_token(node, "ana", None)
    _ended_in_emit(monkeypatch, sqlstate)
    with caplog.at_level(logging.WARNING):
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {token}"}) as http, \
                http.post(node.base + "/api/v1/statuses", json={"status": "tarde"}) as answer:
            assert answer.status == 503 and answer.headers["Retry-After"] == "1"
            assert (await answer.json())["error"]
            assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "lock conflict on POST /api/v1/statuses" in caplog.text
    assert "unhandled error" not in caplog.text and "Traceback" not in caplog.text
    assert await _count(node, Object) == 0 and await _count(node, Activity) == 0


async def test_another_database_error_is_still_a_500_with_its_traceback(node, monkeypatch,
                                                                        caplog):
    token, _ = await member_token(node, "ana", None)
    _ended_in_emit(monkeypatch, "23505")
    status, body = await api(node, token, "POST", "/api/v1/statuses", json={"status": "tarde"})
    assert status == 500 and body == {"error": "Internal server error"}
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records)
    assert await _count(node, Object) == 0


async def test_retried_also_runs_again_after_a_serialization_failure(node):
    calls = []

    async def work(db):
        calls.append(1)
        if len(calls) == 1:
            raise _ended("40001")
        return "done"
    assert await deletion.retried(node.writers, work) == "done" and len(calls) == 2


# --- S2. the deleted-local-sender check, under lock; a sender row gone ------------------------

async def _run_item(node, item_id: int) -> InboxItem:
    await Worker(node.settings, node.writers, node.app[REMOTE]).run_once()
    async with node.readers() as db:
        return await db.get(InboxItem, item_id)


async def test_a_local_sender_is_read_for_key_share_before_its_deletion_is_checked(
        node, monkeypatch):
    casa, tierra = await node.create_actor("casa"), await node.create_actor("tierra")
    item_id = await queue_signed_item(node, casa, {"@context": AS, "id": f"{casa.uri}#follows/1",
                                                   "type": "Follow", "actor": casa.uri,
                                                   "object": tierra.uri})
    locks = []
    real_scalar = AsyncSession.scalar

    async def watching(self, statement, *args, **kwargs):
        if getattr(statement, "_for_update_arg", None) is not None:
            locks.append((statement._for_update_arg.read, statement._for_update_arg.key_share,
                          str(statement.whereclause)))
        return await real_scalar(self, statement, *args, **kwargs)
    monkeypatch.setattr(AsyncSession, "scalar", watching)
    async with node.writers() as db, db.begin():
        await deletion.delete_actor(db, node.urls, await db.get(Actor, casa.id))
    item = await _run_item(node, item_id)
    assert (item.status, item.last_error) == ("ignored", "the sender was deleted")
    assert (True, True, "actors.id = :id_1") in locks


async def test_a_sender_row_gone_is_ignored_not_a_crash(node, monkeypatch, caplog):
    casa = await node.create_actor("casa")
    item_id = await queue_signed_item(node, casa, {"@context": AS, "id": f"{casa.uri}#likes/1",
                                                   "type": "Like", "actor": casa.uri,
                                                   "object": f"{casa.uri}/x"})
    worker = Worker(node.settings, node.writers, node.app[REMOTE])
    dispatch = worker._dispatch
    real_get = AsyncSession.get

    async def row_gone(self, model, ident, *args, **kwargs):  # as if deleted meanwhile
        return None if model is Actor and ident == casa.id else \
            await real_get(self, model, ident, *args, **kwargs)

    async def dispatching(db, item, activity, sender, proven):
        monkeypatch.setattr(AsyncSession, "get", row_gone)
        try:
            return await dispatch(db, item, activity, sender, proven)
        finally:
            monkeypatch.setattr(AsyncSession, "get", real_get)
    monkeypatch.setattr(worker, "_dispatch", dispatching)
    before = await _count(node, Activity)
    await worker.run_once()
    async with node.readers() as db:
        item = await db.get(InboxItem, item_id)
    assert (item.status, item.last_error) == ("ignored", "the sender's actor is gone")
    assert "handler failed" not in caplog.text and "AttributeError" not in caplog.text
    assert await _count(node, Activity) == before


# --- S3. the projects going with a user: counted under lock ------------------------------------

async def test_the_projects_are_locked_before_they_are_counted_in_the_deleting_transaction(
        node, monkeypatch):
    casa, tierra = await node.create_actor("casa"), await node.create_actor("tierra")
    ana = await make_user(node, "ana", casa)
    async with node.writers() as db, db.begin():
        db.add(Membership(user_id=ana.id, project_id=tierra.id))
    order = []
    lock, going = deletion.lock_projects_of, account_commands.projects_going_with

    async def locking(db, user):
        order.append("lock")
        await lock(db, user)

    async def counting(db, user, with_projects):
        order.append("count")
        return await going(db, user, with_projects)
    monkeypatch.setattr(account_commands, "lock_projects_of", locking)
    monkeypatch.setattr(account_commands, "projects_going_with", counting)
    monkeypatch.setattr(account_commands, "_confirmed", lambda username, projects: True)
    await account_commands.user_delete(cli_node(node), types.SimpleNamespace(
        username="ana", with_projects=True, yes=True))
    # the question (no lock, no transaction), then in the deleting one: the lock, then the count
    assert order == ["count", "lock", "count"]
    assert await _count(node, Actor, Actor.deleted_at.is_not(None)) == 3
    assert await _count(node, User) == 0


@pytest.mark.postgres
async def test_a_member_added_while_the_user_is_deleted_waits_for_the_deletion(node):
    """On PostgreSQL: lock_projects_of holds the project's row, so adding a member (a row
    pointing at it: FOR KEY SHARE) waits until the deletion commits, then finds a tombstone
    (its key is still there: the insert goes through, to a deleted project, counted after)."""
    casa = await node.create_actor("casa")
    ana = await make_user(node, "ana", casa)
    bea = await make_user(node, "bea")
    locked, added = asyncio.Event(), []

    async def adding():
        await locked.wait()
        async with node.writers() as db, db.begin():
            db.add(Membership(user_id=bea.id, project_id=casa.id))
        added.append(asyncio.get_running_loop().time())

    async def deleting(db):
        user = await db.get(User, ana.id)
        await deletion.lock_projects_of(db, user)
        locked.set()
        await asyncio.sleep(0.5)  # the other writer tries now, and must wait
        alone = await deletion.sole_projects(db, user)
        assert [p.username for p in alone] == ["casa"]  # nobody joined meanwhile
        done = await deletion.delete_user(db, node.urls, user, with_projects=True)
        added_before = bool(added)
        return done, added_before
    task = asyncio.create_task(adding())
    (done, added_before), _ = await deletion.retried(node.writers, deleting), await task
    assert not added_before and [d.username for d in done] == ["casa", "ana"]


# --- nits -------------------------------------------------------------------------------------

async def test_deleted_is_logged_after_the_commit_once(node, monkeypatch, caplog):
    casa = await node.create_actor("casa")
    calls = []
    real = deletion.delete_actor

    async def first_ended(db, urls, actor):  # the first try ends as a deadlock victim would
        done = await real(db, urls, actor)
        calls.append(1)
        if len(calls) == 1:
            raise _ended("40P01")
        return done
    monkeypatch.setattr(deletion, "delete_actor", first_ended)
    with caplog.at_level(logging.INFO, logger="fedsph.deletion"):
        await project_commands.project_delete(cli_node(node), types.SimpleNamespace(
            slug="casa", yes=True))
    deleted = [r for r in caplog.records if r.getMessage().startswith("deleted ")]
    assert len(calls) == 2 and len(deleted) == 1
    assert f"{casa.uri}#delete" in deleted[0].getMessage()


async def test_a_server_error_on_the_command_line_keeps_its_traceback(tmp_path, monkeypatch):
    async def unavailable(node, args):
        raise ServiceUnavailable("the database is away")
    use_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setitem(cli.COMMANDS, "admin list", unavailable)
    assert await asyncio.to_thread(cli.main, ["migrate"]) == 0
    with pytest.raises(ServiceUnavailable):
        await asyncio.to_thread(cli.main, ["admin", "list"])
