"""Review of issue 14's mail code, round 3: an invitation mail being written while its sender is
disabled, and addresses whose domain IDNA 2003 and UTS #46 read differently."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from fedsph.accounts import set_disabled
from fedsph.core.db_errors import database_away
from fedsph.errors import UserError
from fedsph.mail import sender as sender_module
from fedsph.mail.message import ascii_domain, build_message
from fedsph.mail.queue import claim_mails, queue_invite
from fedsph.mail.sender import MailSender, _without_address
from fedsph.models import Actor, Invite, Membership, OutgoingMail, User, utcnow
from tests.support.db import a_lock_is_awaited
from tests.support.mail import ask_for_reset
from tests.support.mail import count_rows as _count
from tests.support.mail import member as _member


@pytest.mark.postgres
async def test_disabling_while_the_invitation_is_written_leaves_no_working_link(
        mail_node, mail_server, monkeypatch):
    """The sender has leased the mail (its row locked) and is about to insert the invite when
    an admin disables the member who sent it. Withdrawing must wait for the sender and then
    delete the invite it made: cancelled mail, no invite left, no deadlock."""
    node = mail_node
    coop = await node.create_actor("coop")
    await _member(node, "admin", None, "admin@coop.example", admin=True)
    ana = await _member(node, "ana", coop, "ana@coop.example")
    await _member(node, "bea", coop, "bea@coop.example")
    async with node.writers() as db, db.begin():
        await queue_invite(db, await db.get(Actor, coop.id), await db.get(User, ana.id),
                           "guest@else.example", "en")
    leased, go = asyncio.Event(), asyncio.Event()
    real = sender_module.create_invite

    async def held(db, project, by):  # between lease_mail and the invite's INSERT
        leased.set()
        await go.wait()
        return await real(db, project, by)

    monkeypatch.setattr(sender_module, "create_invite", held)
    mail_sender = MailSender(node.settings, node.writers)
    async with node.writers() as db, db.begin():
        [(mail_id, lease)] = await claim_mails(db, 16)
    sending = asyncio.create_task(mail_sender.send_one(mail_id, lease))
    await asyncio.wait_for(leased.wait(), 10)

    async def disable() -> None:
        async with node.writers() as db, db.begin():
            await set_disabled(db, await db.get(User, ana.id), True)

    disabling = asyncio.create_task(disable())
    # The withdrawal waits on the sender's lock on the mail (a loaded CI machine once needed
    # more than 5 s to get the disabling transaction that far).
    assert await a_lock_is_awaited(node), "the withdrawal did not wait for the sender"
    go.set()
    await asyncio.wait_for(asyncio.gather(sending, disabling), 20)
    assert await _count(node, Invite) == 0  # the link that may have gone out works nowhere
    assert await _count(node, OutgoingMail, OutgoingMail.status == "cancelled") == 1
    async with node.readers() as db:
        assert (await db.get(User, ana.id)).disabled_at is not None


# -- the domain in its ASCII form (UTS #46, non-transitional: what browsers and registries use)

def test_sharp_s_keeps_its_own_domain():
    """IDNA 2003 maps 'straße.de' to 'strasse.de', someone else's domain: a confirmation or a
    reset link would go to whoever holds that one."""
    assert ascii_domain("ana@straße.de") == "ana@xn--strae-oqa.de"
    assert ascii_domain("ana@bücher.example") == "ana@xn--bcher-kva.example"
    assert ascii_domain("ana@plain.example") == "ana@plain.example"


@pytest.mark.parametrize("domain", ["a\u200db.example", "\u200dab.example", "bad..bücher.example",
                                    "-ü.example", "ü" * 70 + ".example"])
def test_a_domain_with_no_valid_ascii_form_is_refused(domain):
    """A zero-width joiner outside a context that allows it (IDNA 2003 dropped it silently:
    'ab.example', another domain), and other domains with no valid form: refused."""
    with pytest.raises(UserError):
        ascii_domain(f"ana@{domain}")
    with pytest.raises(UserError):
        build_message("node@here.example", f"ana@{domain}", "s", "b", "here.example")


def test_the_to_header_carries_the_ascii_form():
    message = build_message("node@here.example", "ana@straße.de", "s", "b", "here.example")
    assert message["To"] == "ana@xn--strae-oqa.de"
    said = "550 no such user ana@XN--STRAE-OQA.DE and ana@straße.de"
    assert _without_address(said, message["To"]) == "550 no such user <recipient> and <recipient>"
    assert _without_address(said, "ana@straße.de") == (
        "550 no such user <recipient> and <recipient>")




async def test_a_sharp_s_address_is_mailed_to_its_own_domain(mail_node, mail_server):
    """A reset asked for by a member at straße.de goes to xn--strae-oqa.de, envelope and To."""
    node = mail_node
    await _member(node, "ana", None, "ana@straße.de")
    await ask_for_reset(node, "ana")
    await node.run_worker()
    [mail] = mail_server.received
    assert mail.rcpt_tos == ["ana@xn--strae-oqa.de"]
    assert "ana@xn--strae-oqa.de" in str(mail.message["To"])
    assert "strasse" not in str(mail.message).lower()


# -- the database away or busy: the mail waits, it is not failed as a bug --------------------

class _PgError(Exception):
    def __init__(self, state: str):
        super().__init__(f"sqlstate {state}")
        self.sqlstate = state


@pytest.mark.parametrize("state, away", [
    ("40P01", True), ("40001", True), ("08006", True), ("08001", True), ("57P01", True),
    ("57P03", True), ("55P03", True), ("53300", True), ("53100", True), ("25006", True),
    ("57014", False), ("57P04", False), ("40002", False), ("23505", False), ("42P01", False)])
def test_which_database_errors_mean_try_later(state, away):
    assert database_away(DBAPIError("SELECT 1", {}, _PgError(state))) is away


def test_which_errors_without_a_sqlstate_mean_try_later():
    assert database_away(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert database_away(ConnectionRefusedError())
    assert database_away(InterfaceError("SELECT 1", {}, Exception("connection is closed")))
    assert database_away(DBAPIError("SELECT 1", {}, Exception("gone"),
                                    connection_invalidated=True))
    # a statement's own trouble: waiting would only repeat it
    assert not database_away(OperationalError("SELECT 1", {}, Exception("no such table: x")))
    assert not database_away(InterfaceError(
        "SELECT 1", {}, Exception("the number of query arguments cannot exceed 32767")))
    assert not database_away(ValueError("x"))


@pytest.mark.parametrize("state", ["40P01", "57P01", "55P03"])
async def test_a_deadlock_while_sending_leaves_the_mail_waiting(mail_node, mail_server,
                                                                 monkeypatch, state):
    """SQLAlchemy's asyncpg dialect gives a deadlock, a server shutting down or a lock not
    available as a plain DBAPIError: the mail is not failed, but counted as a try with backoff
    (tests/test_mail_review5.py: else it would stay first in every batch)."""
    node = mail_node
    coop = await node.create_actor("coop")
    ana = await _member(node, "ana", coop, "ana@coop.example")
    async with node.writers() as db, db.begin():
        await queue_invite(db, await db.get(Actor, coop.id), await db.get(User, ana.id),
                           "guest@else.example", "en")

    async def busy(db, mail_id, ours):
        raise DBAPIError("UPDATE outgoing_mails", {}, _PgError(state))

    monkeypatch.setattr(sender_module, "lease_mail", busy)
    assert await MailSender(node.settings, node.writers).round() == 0
    async with node.readers() as db:
        mail = await db.scalar(select(OutgoingMail))
    assert (mail.status, mail.attempts, mail.last_error, mail.locked_until) == (
        "pending", 1, f"database error {state}", None)
    assert mail.next_attempt_at > utcnow()
    assert mail_server.received == [] and await _count(node, Invite) == 0


# -- the invitation caps' locks --------------------------------------------------------------

@pytest.mark.postgres
async def test_an_invitation_deadlocked_by_an_admin_says_try_again(mail_node):
    """An admin's transaction holding the member's row and then wanting the project's, while
    an invitation holds the project's and wants the member's: PostgreSQL ends one. The
    invitation answers a plain "try again" and stores nothing; the admin's goes through."""
    node = mail_node
    coop = await node.create_actor("coop")
    ana = await _member(node, "ana", coop, "ana@coop.example")
    admin_has_member = asyncio.Event()

    async def admin() -> None:
        async with node.writers() as db, db.begin():
            # PostgreSQL ends the waiter whose deadlock_timeout runs out first: the admin's
            # must be the longer, so that the invitation (1 s) is the one ended.
            await db.execute(text("SET LOCAL deadlock_timeout = '30s'"))
            await db.execute(select(User.id).where(User.id == ana.id).with_for_update())
            admin_has_member.set()
            # the invitation now holds the project and waits for the member
            assert await a_lock_is_awaited(node, within=10), \
                "the invitation never waited for the member"
            await db.execute(select(Actor.id).where(Actor.id == coop.id).with_for_update())

    async def invite() -> None:
        await admin_has_member.wait()
        async with node.writers() as db, db.begin():
            await queue_invite(db, await db.get(Actor, coop.id), await db.get(User, ana.id),
                               "guest@else.example", "en")

    results = await asyncio.wait_for(
        asyncio.gather(admin(), invite(), return_exceptions=True), 30)
    assert results[0] is None, results
    assert isinstance(results[1], UserError) and "try again" in str(results[1]), results
    assert await _count(node, OutgoingMail) == 0


@pytest.mark.postgres
async def test_an_invitation_being_counted_does_not_block_rows_pointing_at_the_project(
        mail_node):
    """FOR NO KEY UPDATE: while an invitation holds the project's row, a membership (a row
    whose foreign key names the project) is still inserted at once."""
    node = mail_node
    coop = await node.create_actor("coop")
    ana = await _member(node, "ana", coop, "ana@coop.example")
    bea = await _member(node, "bea", None, "bea@coop.example")
    async with node.writers() as db, db.begin():
        await queue_invite(db, await db.get(Actor, coop.id), await db.get(User, ana.id),
                           "guest@else.example", "en")
        async with node.writers() as other, other.begin():  # would wait on FOR UPDATE
            await other.execute(text("SET LOCAL lock_timeout = '2s'"))
            other.add(Membership(user_id=bea.id, project_id=coop.id))
    assert await _count(node, Membership, Membership.user_id == bea.id) == 1
