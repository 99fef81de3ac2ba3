"""E-mail, second review: anonymous link pages never take the write lock, "forgot password"
lookups go through one bounded queue, invitation caps hold under parallel requests (on
PostgreSQL too), a disabled or deleted member's invitation mails are never sent, an apostrophe
in an address works, and the nits (failed notices wait their hour, confirmation cap, same-address
check, prune keeps the week of invitations, redaction, IDNA envelope)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import update

from fedsph.accounts import set_disabled
from fedsph.config import one_address
from fedsph.errors import UserError
from fedsph.mail import queue, sender
from fedsph.mail.message import build_message, plain_address
from fedsph.mail.queue import INVITES_A_DAY, MEMBER_INVITES_A_DAY, prune_mail, queue_invite
from fedsph.models import Actor, Invite, MailNotice, Membership, OutgoingMail, User, utcnow
from fedsph.projects.deletion import delete_user
from fedsph.web import mail_pages
from fedsph.web.keys import WRITERS
from fedsph.web.mail_pages import FORGOT_LOOKUPS, ForgotLookups
from tests.support.mail import ask_for_reset
from tests.support.mail import count_rows as _count
from tests.support.mail import member as _member
from tests.support.members import browser, login, post_form


@pytest.mark.filterwarnings("ignore:Changing state:DeprecationWarning")
async def test_anonymous_link_pages_never_open_a_writer(mail_node):
    """On SQLite a writer's session is BEGIN IMMEDIATE: anybody's GET must not take it."""
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    real, opened = node.app[WRITERS], []

    def counting():
        opened.append(1)
        return real()

    node.app[WRITERS] = counting
    try:
        async with browser() as client:
            for path in ("/password/reset/nothing", "/email/confirm/nothing",
                         "/mail/unsubscribe/nothing"):
                async with client.get(f"{node.base}{path}") as page:
                    assert page.status in (404, 410)
            for path in ("/password/reset/nothing", "/mail/unsubscribe/1.hub.bad"):
                response = await post_form(client, f"{node.base}{path}",
                                           {"password": "a brand new one!",
                                            "password2": "a brand new one!"},
                                           page=f"{node.base}/login")
                assert response.status in (404, 410)
            for name in ("nobody", "nobody@else.example"):  # unknown: looked up on a reader
                response = await post_form(client, f"{node.base}/password/forgot",
                                           {"login": name})
                assert response.status == 200
        await node.app[FORGOT_LOOKUPS].settled()
    finally:
        node.app[WRITERS] = real
    assert opened == []
    assert await _count(node, OutgoingMail) == 0


async def test_forgot_lookups_are_bounded_and_end_with_the_server(mail_node, monkeypatch,
                                                                  caplog):
    node = mail_node
    release, real = asyncio.Event(), mail_pages.find_account

    async def held(db, login_name):
        await release.wait()
        return await real(db, login_name)

    monkeypatch.setattr(mail_pages, "find_account", held)
    lookups = ForgotLookups(node.app)
    offered = [lookups.offer(f"x{n}") for n in range(mail_pages.FORGOT_WAITING + 40)]
    assert offered.count(True) == mail_pages.FORGOT_WAITING  # the rest dropped, not kept
    monkeypatch.setattr(mail_pages, "FORGOT_DRAIN", 0.2)
    with caplog.at_level(logging.WARNING, logger="fedsph.login"):
        await lookups.close()  # held: the wait runs out, the task ends
    assert any("dropped at shutdown" in r.getMessage() for r in caplog.records)
    assert lookups.task.done()
    assert lookups.offer("late") is False  # nothing starts after shutdown began
    assert await _count(node, OutgoingMail) == 0


async def test_parallel_invitations_stay_at_the_cap(mail_node):
    """Count then insert under READ COMMITTED would let parallel requests all pass on
    PostgreSQL: the project and member rows are locked first."""
    node = mail_node
    coop = await node.create_actor("coop")
    ana = await _member(node, "ana", coop, "ana@coop.example")

    async def one(n: int) -> bool:
        try:
            async with node.writers() as db, db.begin():
                await queue_invite(db, await db.get(Actor, coop.id), await db.get(User, ana.id),
                                   f"guest{n}@else.example", "en")
            return True
        except UserError:
            return False

    results = await asyncio.gather(*(one(n) for n in range(30)))
    assert results.count(True) == MEMBER_INVITES_A_DAY
    assert await _count(node, OutgoingMail) == MEMBER_INVITES_A_DAY
    assert MEMBER_INVITES_A_DAY < INVITES_A_DAY


async def _invite_mail(node, coop, ana) -> None:
    async with node.writers() as db, db.begin():
        await queue_invite(db, await db.get(Actor, coop.id), await db.get(User, ana.id),
                           "guest@else.example", "en")


@pytest.mark.parametrize("how", ["disabled", "deleted", "left the project"])
async def test_a_gone_members_invitation_mail_is_never_sent(mail_node, mail_server, how):
    node = mail_node
    coop = await node.create_actor("coop")
    await _member(node, "admin", None, "admin@coop.example", admin=True)
    ana = await _member(node, "ana", coop, "ana@coop.example")
    await _member(node, "bea", coop, "bea@coop.example")  # the project stays
    await _invite_mail(node, coop, ana)
    async with node.writers() as db, db.begin():
        if how == "disabled":
            await set_disabled(db, await db.get(User, ana.id), True)
        elif how == "deleted":
            await delete_user(db, node.urls, await db.get(User, ana.id))
        else:
            await db.execute(Membership.__table__.delete().where(
                Membership.user_id == ana.id))
    await node.run_worker()
    assert mail_server.received == []
    assert await _count(node, Invite) == 0  # no working link minted
    assert await _count(node, OutgoingMail, OutgoingMail.status == "cancelled") == 1


async def test_an_apostrophe_in_an_address_works(mail_node, mail_server):
    assert one_address("o'brien@example.ie") == "o'brien@example.ie"
    with pytest.raises(UserError) as refused:
        plain_address("a@b.example, c@d.example")
    assert "b.example" not in str(refused.value)  # addresses are never logged
    node = mail_node
    await _member(node, "ana", None, "o'brien@example.ie")
    await ask_for_reset(node, "ana")
    await node.run_worker()
    [mail] = mail_server.received
    assert mail.rcpt_tos == ["o'brien@example.ie"]


async def test_a_non_ascii_domain_goes_in_its_ascii_form(mail_node, mail_server):
    node = mail_node
    await _member(node, "ana", None, "ana@bücher.example")
    await ask_for_reset(node, "ana")
    await node.run_worker()
    [mail] = mail_server.received
    assert mail.rcpt_tos == ["ana@xn--bcher-kva.example"]


def test_a_servers_reply_never_keeps_the_address():
    said = "550 <ANA@Xn--Bcher-Kva.Example> unknown; ana@BÜCHER.example too"
    assert sender._without_address(said, "ana@bücher.example") == \
        "550 <<recipient>> unknown; <recipient> too"
    message = build_message("noreply@coop.example", "ana@bücher.example", "s", "b", "coop")
    assert sender._without_address(f"x {message['To']} y", message["To"]) == "x <recipient> y"


async def test_a_failed_notice_waits_its_hour(mail_node, mail_server, monkeypatch):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")
    async with node.writers() as db, db.begin():
        db.add(OutgoingMail(kind="notice", user_id=ana.id, to_address="ana@coop.example",
                            topic="hub", attempts=sender.SHORT_LIVED["notice"] - 1))

    async def refused(settings, message):
        raise sender.MailRefused("550 no")

    monkeypatch.setattr(sender, "send_message", refused)
    monkeypatch.setattr(sender.MailSender, "_write",
                        lambda self, db, mail: _written(self, mail))
    await node.run_worker()
    async with node.readers() as db:
        notice = await db.get(MailNotice, (ana.id, "hub"))
    assert notice is not None and notice.last_mailed_at is not None
    assert notice.seen_up_to == 0  # nothing counts as told


async def _written(self, mail):
    return sender.Written(self._message(mail.to_address, "s", "b"))


async def test_confirm_again_is_capped_a_day(mail_node):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example", confirmed=False)
    async with node.writers() as db, db.begin():
        for n in range(queue.CONFIRMS_A_DAY):
            db.add(OutgoingMail(kind="confirm", user_id=ana.id, to_address="ana@coop.example",
                                status="sent", created_at=utcnow() - timedelta(hours=n + 1)))
    before = await _count(node, OutgoingMail)
    async with browser() as client:
        await login(client, node, "ana")
        response = await post_form(client, f"{node.base}/email/confirm-again", {},
                                   page=f"{node.base}/")
        assert response.status == 200
    assert await _count(node, OutgoingMail) == before


async def test_same_address_check_counts_only_mailed_invitations(mail_node):
    node = mail_node
    coop = await node.create_actor("coop")
    ana = await _member(node, "ana", coop, "ana@coop.example")
    async with node.writers() as db, db.begin():
        db.add(OutgoingMail(kind="invite", to_address="guest@else.example",
                            project_id=coop.id, sent_by=ana.id, status="failed"))
    await _invite_mail(node, coop, ana)  # a failed one does not say "was mailed"
    with pytest.raises(UserError, match="last 7 days"):
        await _invite_mail(node, coop, ana)
    assert await _count(node, OutgoingMail) == 2


async def test_prune_keeps_the_week_of_invitations(mail_node):
    node = mail_node
    coop = await node.create_actor("coop")
    old = utcnow() - timedelta(days=3)
    async with node.writers() as db, db.begin():
        db.add(OutgoingMail(kind="invite", to_address="guest@else.example", project_id=coop.id,
                            status="sent", created_at=old, finished_at=old))
        db.add(OutgoingMail(kind="reset", to_address="x@else.example", status="sent",
                            created_at=old, finished_at=old))
    async with node.writers() as db, db.begin():
        assert await prune_mail(db, timedelta(days=0)) == 1  # FEDSPH_INBOX_RETENTION_DAYS=0
    assert await _count(node, OutgoingMail, OutgoingMail.kind == "invite") == 1
    async with node.writers() as db, db.begin():
        await db.execute(update(OutgoingMail).values(created_at=utcnow() - timedelta(days=8)))
        assert await prune_mail(db, timedelta(days=0)) == 1
