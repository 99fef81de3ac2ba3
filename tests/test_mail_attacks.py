"""E-mail under attack or at fault (issue 14, item 3, the review's findings): a mailed reset link
tied to the address it went to, a "forgot password" answer that does not wait for the lookup,
invitation mail capped, one mail never sent twice by two workers nor after it was cancelled, a
bug in one mail that stops nothing, the confirmation sent again, no secret in the error log,
a resent invitation voiding the older link, one reset link used by two requests at once, and
the smaller points (one-click unsubscribe, no mail client loaded without SMTP, housekeeping
without SMTP, one waiting notice per member and topic). Attacks check that nothing changed."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from datetime import timedelta

import pytest
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError

from fedsph.api.errors import api_middleware
from fedsph.config import load_settings
from fedsph.mail import links, sender
from fedsph.mail.message import build_message
from fedsph.mail.queue import INVITES_A_DAY, MEMBER_INVITES_A_DAY, claim_mails, queue_notice
from fedsph.mail.sender import MailSender
from fedsph.models import (
    Actor,
    Follow,
    Hub,
    HubMembership,
    Invite,
    MailToken,
    OutgoingMail,
    User,
    utcnow,
)
from fedsph.web import mail_pages
from fedsph.web.mail_pages import FORGOT_LOOKUPS
from fedsph.web.middleware import errors
from tests.support.mail import ask_for_reset
from tests.support.mail import count_rows as _count
from tests.support.mail import member as _member
from tests.support.mail import remote_actor as _remote
from tests.support.members import browser, login, post_form
from tests.support.nodes import make_settings, start_node


async def _password(node, user_id: int) -> str:
    async with node.readers() as db:
        return await db.scalar(select(User.password_hash).where(User.id == user_id))


async def test_a_mailed_reset_link_stops_when_the_address_changes(mail_node, mail_server):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")
    await ask_for_reset(node, "ana")
    await node.run_worker()
    [mail] = mail_server.received
    link = mail.link("/password/reset/")
    async with node.writers() as db, db.begin():  # the address moves on (say, a lost mailbox)
        user = await db.get(User, ana.id)
        user.email = user.email_confirmed = "ana@new.example"
    before = await _password(node, ana.id)
    async with browser() as client:
        async with client.get(link) as page:
            assert page.status == 410
            assert page.headers["Cache-Control"] == "no-store"  # its address holds a secret
        response = await post_form(client, link, {"password": "a brand new one!",
                                                  "password2": "a brand new one!"},
                                   page=f"{node.base}/login")
        assert response.status == 410
    assert await _password(node, ana.id) == before
    assert await _count(node, MailToken, MailToken.used_at.is_not(None)) == 0


async def test_forgot_answers_before_it_looks_the_account_up(mail_node, monkeypatch):
    """Both a known and an unknown name get their answer while the lookup has not even started:
    the answer's timing cannot tell them apart."""
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    release, real = asyncio.Event(), mail_pages.find_account

    async def held(db, login_name):
        await release.wait()
        return await real(db, login_name)

    monkeypatch.setattr(mail_pages, "find_account", held)
    async with browser() as client:
        for name in ("ana", "nobody"):
            response = await asyncio.wait_for(post_form(
                client, f"{node.base}/password/forgot", {"login": name}), 10)
            assert response.status == 200 and "on its way" in await response.text()
    assert node.app[FORGOT_LOOKUPS].unfinished == 2
    assert await _count(node, OutgoingMail) == 0
    release.set()
    await node.app[FORGOT_LOOKUPS].settled()
    assert await _count(node, OutgoingMail) == 1  # ana's, nobody's none
    assert node.app[FORGOT_LOOKUPS].unfinished == 0


async def _invite(client, node, address: str):
    response = await post_form(client, f"{node.base}/actors/coop/manage",
                               {"action": "invite", "email": address})
    return response.status, await response.text()


async def test_invitation_mail_is_capped(mail_node):
    node = mail_node
    coop = await node.create_actor("coop")
    ana = await _member(node, "ana", coop, "ana@coop.example")
    await _member(node, "bea", coop, "bea@coop.example")
    async with browser() as client:
        await login(client, node, "ana")
        assert (await _invite(client, node, "carla@coop.example"))[0] == 303
        status, text = await _invite(client, node, "Carla@Coop.example")  # again, within 7 days
        assert status == 400 and "last 7 days" in text
        async with node.writers() as db, db.begin():  # ana has invited the most a day
            for n in range(MEMBER_INVITES_A_DAY - 1):
                db.add(OutgoingMail(kind="invite", to_address=f"x{n}@else.example",
                                    project_id=coop.id, sent_by=ana.id, status="sent"))
        before = await _count(node, OutgoingMail)
        status, text = await _invite(client, node, "dan@coop.example")
        assert status == 400 and f"You have sent {MEMBER_INVITES_A_DAY} invitations" in text
    assert MEMBER_INVITES_A_DAY < INVITES_A_DAY  # one member cannot use up the project's
    async with node.writers() as db, db.begin():  # others have invited the project's most
        for n in range(INVITES_A_DAY - MEMBER_INVITES_A_DAY):
            db.add(OutgoingMail(kind="invite", to_address=f"y{n}@else.example",
                                project_id=coop.id, status="sent"))
    before = await _count(node, OutgoingMail)
    async with browser() as client:  # another member: the project's cap holds too
        await login(client, node, "bea")
        status, text = await _invite(client, node, "dan@coop.example")
        assert status == 400 and f"This project has sent {INVITES_A_DAY} invitations" in text
    assert await _count(node, OutgoingMail) == before
    async with node.writers() as db, db.begin():  # a day later both caps are free again
        await db.execute(update(OutgoingMail).values(created_at=utcnow() - timedelta(days=2)))
    async with browser() as client:
        await login(client, node, "bea")
        assert (await _invite(client, node, "dan@coop.example"))[0] == 303


async def test_one_mail_is_never_sent_twice_nor_once_cancelled(mail_node, mail_server):
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    await ask_for_reset(node, "ana")
    first, second = (MailSender(node.settings, node.writers) for _ in range(2))
    async with node.writers() as db, db.begin():
        [(mail_id, lease)] = await claim_mails(db, 16)
    async with node.writers() as db, db.begin():  # the lease ran out; another worker claims it
        await db.execute(update(OutgoingMail).values(locked_until=utcnow() - timedelta(1)))
    async with node.writers() as db, db.begin():
        [(same_id, other_lease)] = await claim_mails(db, 16)
    assert same_id == mail_id
    assert await first.send_one(mail_id, lease) is False  # no longer ours: nothing written
    assert mail_server.received == [] and await _count(node, MailToken) == 0
    assert await second.send_one(mail_id, other_lease) is True
    assert len(mail_server.received) == 1
    assert await second.send_one(mail_id, other_lease) is False  # sent: never again
    assert len(mail_server.received) == 1

    # Cancelled while leased: not sent, and it stays cancelled.
    async with node.writers() as db, db.begin():
        await db.execute(update(OutgoingMail).values(created_at=utcnow() - timedelta(hours=1)))
    await ask_for_reset(node, "ana")
    async with node.writers() as db, db.begin():
        [(mail_id, lease)] = await claim_mails(db, 16)
        await db.execute(update(OutgoingMail).where(OutgoingMail.id == mail_id)
                         .values(status="cancelled"))
    assert await first.send_one(mail_id, lease) is False
    assert len(mail_server.received) == 1
    async with node.readers() as db:
        assert (await db.get(OutgoingMail, mail_id)).status == "cancelled"


async def test_a_bug_in_one_mail_stops_nothing(mail_node, mail_server, monkeypatch, caplog):
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    await _member(node, "bea", None, "bea@coop.example")
    await ask_for_reset(node, "ana")
    await ask_for_reset(node, "bea")
    real, calls = sender.send_message, []

    async def first_one_breaks(settings, message):
        calls.append(message["To"])
        if len(calls) == 1:
            raise RuntimeError("a bug")
        await real(settings, message)

    monkeypatch.setattr(sender, "send_message", first_one_breaks)
    with caplog.at_level(logging.ERROR, logger="fedsph.mail"):
        await node.run_worker()  # does not raise
    assert any("a bug" in (r.exc_text or "") for r in caplog.records)
    assert len(mail_server.received) == 1  # the other mail went
    async with node.readers() as db:  # the broken one counts a try, and waits its backoff
        broken = await db.scalar(select(OutgoingMail).where(OutgoingMail.status == "pending"))
        assert broken.attempts == 1 and "a bug" in broken.last_error
        assert "coop.example" not in broken.last_error  # its address never kept
    await _due_now(node)
    await node.run_worker()
    assert len(mail_server.received) == 2


async def _due_now(node) -> None:
    async with node.writers() as db, db.begin():
        await db.execute(update(OutgoingMail).where(OutgoingMail.status == "pending")
                         .values(locked_until=None, next_attempt_at=utcnow()))


async def test_a_mail_that_always_breaks_ends_failed(mail_node, mail_server, monkeypatch):
    """Every try counted, so it fails after its tries and the member's next reset may come."""
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    await ask_for_reset(node, "ana")

    async def always_breaks(settings, message):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sender, "send_message", always_breaks)
    for _ in range(sender.SHORT_LIVED["reset"]):
        await _due_now(node)
        await node.run_worker()
    async with node.readers() as db:
        [mail] = (await db.scalars(select(OutgoingMail))).all()
    assert mail.status == "failed" and mail.attempts == sender.SHORT_LIVED["reset"]
    assert len(mail_server.received) == 0


async def test_a_lasting_database_error_in_one_mail_fails_it(mail_node, mail_server,
                                                             monkeypatch):
    """Not "the database is away" (that is re-raised, to wait): this mail fails, others go."""
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    await _member(node, "bea", None, "bea@coop.example")
    await ask_for_reset(node, "ana")
    await ask_for_reset(node, "bea")
    real = MailSender._write

    async def ana_breaks(self, db, mail):
        if mail.to_address.startswith("ana"):
            raise DataError("INSERT", {}, ValueError("value too long"))
        return await real(self, db, mail)

    monkeypatch.setattr(MailSender, "_write", ana_breaks)
    await node.run_worker()  # does not raise
    async with node.readers() as db:
        rows = {m.to_address: m for m in await db.scalars(select(OutgoingMail))}
    assert rows["ana@coop.example"].status == "failed"
    assert rows["bea@coop.example"].status == "sent" and len(mail_server.received) == 1


async def test_the_confirmation_can_be_sent_again(mail_node, mail_server):
    node = mail_node
    coop = await node.create_actor("coop")
    await _member(node, "ana", coop, "ana@coop.example", confirmed=False)
    async with browser() as anonymous:  # no login: nothing queued
        response = await post_form(anonymous, f"{node.base}/email/confirm-again", {},
                                   page=f"{node.base}/login")
        assert response.status == 303 and "/login" in response.headers["Location"]
    assert await _count(node, OutgoingMail) == 0
    async with browser() as client:
        await login(client, node, "ana")
        manage = f"{node.base}/actors/coop/manage"
        async with client.get(manage, params={"lang": "es"}) as page:
            assert "Enviar de nuevo el correo de confirmación" in await page.text()
        response = await post_form(client, f"{node.base}/email/confirm-again", {}, page=manage)
        assert response.status == 200  # in Spanish: ?lang=es stays for the visit
        assert "va de camino a ana@coop.example" in await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        response = await post_form(client, f"{node.base}/email/confirm-again", {}, page=manage)
        assert "hace unos minutos" in await response.text()
    assert await _count(node, OutgoingMail) == 1
    await node.run_worker()
    link = mail_server.received[0].link("/email/confirm/")
    async with browser() as client:
        response = await post_form(client, link, {})
        assert response.status == 200
    async with node.readers() as db:
        assert await db.scalar(select(User.email_confirmed).where(User.username == "ana")) \
            == "ana@coop.example"


@pytest.mark.parametrize("middleware, paths", [
    (errors, ("/password/reset/SECRETTOKEN", "/email/confirm/SECRETTOKEN",
              "/%70assword/reset/SECRETTOKEN")),
    (api_middleware, ("/api/v1/x?access_token=SECRETTOKEN",))])
async def test_no_link_reaches_the_error_log(middleware, paths, caplog):
    async def broken(request):
        raise RuntimeError("a bug")

    for path in paths:
        request = make_mocked_request("GET", path, headers={"Accept": "application/json"})
        with caplog.at_level(logging.ERROR):
            response = await middleware(request, broken)
        assert response.status == 500
    assert caplog.records and "SECRETTOKEN" not in caplog.text
    assert "REDACTED" in caplog.text


async def test_a_resent_invitation_voids_the_older_link(mail_node, mail_server):
    node = mail_node
    coop = await node.create_actor("coop")
    await _member(node, "ana", coop, "ana@coop.example")
    mail_server.stop()
    async with browser() as client:
        await login(client, node, "ana")
        assert (await _invite(client, node, "carla@coop.example"))[0] == 303
    await node.run_worker()  # written (an invitation minted), not sent
    async with node.readers() as db:
        [first] = list(await db.scalars(select(Invite.token_hash)))
    mail_server.start()
    async with node.writers() as db, db.begin():
        await db.execute(update(OutgoingMail).values(next_attempt_at=utcnow()))
    await node.run_worker()
    assert len(mail_server.received) == 1
    async with node.readers() as db:
        [(second, second_id)] = (await db.execute(select(Invite.token_hash, Invite.id))).all()
        assert second != first  # the first one is gone
        assert await db.scalar(select(OutgoingMail.invite_id)) == second_id


async def test_one_reset_link_used_twice_at_once(mail_node):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")
    async with node.writers() as db, db.begin():
        token = await links.make_reset_link(db, await db.get(User, ana.id), links.RESET_BY_ADMIN)
    url = f"{node.base}/password/reset/{token}"

    async def use(password: str) -> int:
        async with browser() as client:
            response = await post_form(client, url, {"password": password,
                                                     "password2": password})
            return response.status

    statuses = await asyncio.gather(use("first new password"), use("second new password"))
    assert sorted(statuses) == [200, 410]


async def test_one_click_unsubscribe_needs_no_csrf_token(mail_node, mail_server):
    node = mail_node
    coop = await node.create_actor("coop", manually_approves=True)
    await _member(node, "ana", coop, "ana@coop.example")
    bob = await _remote(node, "bob")
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=bob.id, followed_id=coop.id, state="pending"))
    await node.run_worker()
    [mail] = mail_server.received
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail.link("/mail/unsubscribe/")
    async with browser() as client:  # what a mail program sends (RFC 8058)
        forged = await client.post(link[:-2] + "xx", data={"List-Unsubscribe": "One-Click"})
        assert forged.status == 404
        response = await client.post(link, data={"List-Unsubscribe": "One-Click"})
        assert response.status == 200


async def test_one_waiting_notice_or_link_per_member(mail_node):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")
    async with node.writers() as db, db.begin():
        assert await queue_notice(db, await db.get(User, ana.id), "follows")
    with pytest.raises(IntegrityError):  # a second worker that did not see the first's row
        async with node.writers() as db, db.begin():
            db.add(OutgoingMail(kind="notice", user_id=ana.id, to_address="ana@coop.example",
                                topic="follows"))
    for kind in ("reset", "confirm"):  # the same for a waiting link, whichever process queues
        async with node.writers() as db, db.begin():
            db.add(OutgoingMail(kind=kind, user_id=ana.id, to_address="ana@coop.example"))
        with pytest.raises(IntegrityError):
            async with node.writers() as db, db.begin():
                db.add(OutgoingMail(kind=kind, user_id=ana.id, to_address="ana@coop.example"))
    assert await _count(node, OutgoingMail) == 3


async def test_housekeeping_without_smtp_prunes_old_mail(tmp_path):
    node = await start_node(make_settings(tmp_path))
    try:
        ana = await _member(node, "ana", None, "ana@coop.example")
        async with node.writers() as db, db.begin():
            db.add(OutgoingMail(kind="reset", user_id=ana.id, to_address="ana@coop.example",
                                status="sent", finished_at=utcnow() - timedelta(days=30)))
        await node.worker()._prune_now_and_then()
        assert await _count(node, OutgoingMail) == 0
    finally:
        await node.runner.cleanup()


def test_without_smtp_no_mail_client_is_loaded_and_no_password_is_shown():
    code = ("import sys, fedsph.cli, fedsph.app, fedsph.worker, fedsph.web.mail_pages;"
            "assert 'aiosmtplib' not in sys.modules, 'aiosmtplib loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)
    settings = load_settings(smtp_host="smtp.example", smtp_from="a@b.example",
                             smtp_username="u", smtp_password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)


def test_message_id_of_an_ipv6_node():
    message = build_message("a@b.example", "c@d.example", "s", "b", "[::1]:8080")
    assert message["Message-ID"].endswith("@::1>")


async def test_a_bug_while_writing_fails_that_mail_with_its_traceback(mail_node, mail_server,
                                                                      monkeypatch):
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    await ask_for_reset(node, "ana")

    def broken(*args):
        raise RuntimeError("a bug in the text")

    monkeypatch.setattr(sender.texts, "reset_mail", broken)
    await node.run_worker()
    async with node.readers() as db:
        [mail] = list(await db.scalars(select(OutgoingMail)))
    assert mail.status == "failed" and "a bug in the text" in mail.last_error
    assert mail_server.received == [] and await _count(node, MailToken) == 0


async def test_a_hub_notice_names_remote_projects_by_handle_only(mail_node, mail_server):
    node = mail_node
    hub = await node.create_actor("hub")
    await _member(node, "co", hub, "co@coop.example")
    project = await _remote(node, "barrio")
    async with node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
        (await db.get(Actor, project.id)).name = "Prize! Claim it at https://evil.example/"
        db.add(HubMembership(hub_id=hub.id, project_id=project.id, state="requested"))
    await node.run_worker()
    [mail] = mail_server.received
    assert "barrio@remote.example" in mail.text and "evil.example" not in mail.text
