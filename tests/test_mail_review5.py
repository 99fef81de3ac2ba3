"""Review of issue 14's mail code, round 5: a mail whose writing meets a database error counts
a try (it must not starve the mails claimed with it), untried mails go back to the queue when
the database goes away, and an address with no valid ASCII form cancels its mail quietly."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from fedsph.mail import sender as sender_module
from fedsph.mail.queue import queue_invite
from fedsph.mail.sender import MailSender
from fedsph.models import Actor, Invite, OutgoingMail, User, utcnow
from tests.support.mail import member as _member


class _PgError(Exception):
    def __init__(self, state: str):
        super().__init__(f"sqlstate {state}")
        self.sqlstate = state


async def _invites(node, *addresses: str) -> list[int]:
    coop = await node.create_actor("coop")
    ana = await _member(node, "ana", coop, "ana@coop.example")
    async with node.writers() as db, db.begin():
        for address in addresses:
            await queue_invite(db, await db.get(Actor, coop.id), await db.get(User, ana.id),
                               address, "en")
    async with node.readers() as db:
        return list(await db.scalars(select(OutgoingMail.id).order_by(OutgoingMail.id)))


async def _mails(node) -> dict[int, OutgoingMail]:
    async with node.readers() as db:
        return {mail.id: mail for mail in await db.scalars(select(OutgoingMail))}


@pytest.mark.parametrize("state", ["57014", "40P01"])
async def test_a_mail_whose_write_times_out_does_not_starve_the_others(
        mail_node, mail_server, monkeypatch, state):
    """The first mail's write hits a statement timeout (or a deadlock) every time: it is
    counted as a try with backoff, and the mail claimed after it is sent in the same round."""
    node = mail_node
    first, second = await _invites(node, "one@else.example", "two@else.example")
    write = MailSender._write

    async def slow(self, db, mail):
        if mail.id == first:
            raise DBAPIError("SELECT ...", {}, _PgError(state))
        return await write(self, db, mail)

    monkeypatch.setattr(MailSender, "_write", slow)
    assert await MailSender(node.settings, node.writers).round() == 1
    mails = await _mails(node)
    assert (mails[first].status, mails[first].attempts, mails[first].locked_until,
            mails[first].last_error) == ("pending", 1, None, f"database error {state}")
    assert mails[first].next_attempt_at > utcnow()
    assert "one@else.example" not in mails[first].last_error
    assert mails[second].status == "sent"
    assert [m.rcpt_tos for m in mail_server.received] == [["two@else.example"]]


async def test_with_the_database_away_the_untried_mails_are_released(
        mail_node, mail_server, monkeypatch):
    """The write fails with the database away and so does recording the try: the round stops
    for the worker's loop to wait, nothing is counted, and the mails claimed but never tried
    lose their lease at once instead of waiting it out."""
    node = mail_node
    first, *others = await _invites(node, "one@else.example", "two@else.example",
                                    "three@else.example")

    async def away(db, mail_id, ours):
        raise OSError("connection refused")

    async def record_away(self, *args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(sender_module, "lease_mail", away)
    monkeypatch.setattr(MailSender, "_record", record_away)
    with pytest.raises(OSError):
        await MailSender(node.settings, node.writers).round()
    mails = await _mails(node)
    assert (mails[first].attempts, mails[first].status) == (0, "pending")
    assert mails[first].locked_until is not None  # its try was under way: its lease holds
    for mail_id in others:
        assert (mails[mail_id].attempts, mails[mail_id].locked_until) == (0, None)
    assert mail_server.received == []


async def test_an_address_with_no_ascii_form_cancels_its_mail_quietly(
        mail_node, mail_server, caplog):
    """An invitation whose address turns out to have no valid ASCII domain (UserError from
    message.ascii_domain while writing): cancelled with that reason, no traceback logged as a
    bug, no invite left behind, the next mail sent."""
    node = mail_node
    bad, good = await _invites(node, "one@else.example", "two@else.example")
    async with node.writers() as db, db.begin():
        await db.execute(update(OutgoingMail).where(OutgoingMail.id == bad)
                         .values(to_address="guest@-ü.example"))
    with caplog.at_level(logging.INFO, logger="fedsph.mail"):
        assert await MailSender(node.settings, node.writers).round() == 2
    mails = await _mails(node)
    assert mails[bad].status == "cancelled" and "internationalized" in mails[bad].last_error
    assert mails[good].status == "sent"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    async with node.readers() as db:
        assert len(list(await db.scalars(select(Invite)))) == 1  # only the sent one's
