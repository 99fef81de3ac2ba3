"""The worker's side of the mail queue: every round, notices that are due are queued (at most
once a minute), then due mails are claimed, written and sent.

A mail is written in one transaction (which also mints the link it carries), sent, and its
outcome recorded in another. The write goes on only if the mail still waits and our lease on
it is still the one we claimed (queue.lease_mail, which extends it): two workers never both
send one mail, and a cancelled mail is never sent. A server that is down or answers 4xx: the
mail is tried again with backoff (a reset link or a notice for a few hours, when it is still
of use; others about a day and a half), so nothing is lost; a 5xx refusal fails it for good.
A crash between the send and the record sends it again after the lease (a second link then
voids the first). We never log addresses or links; a server's refusal is logged and kept with
the address it names replaced.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.accounts import create_invite, hash_token, may_act_as, may_log_in
from fedsph.config import Settings
from fedsph.core.db_errors import STATEMENT_TIMEOUT, database_away, sqlstate
from fedsph.core.urls import URLs
from fedsph.errors import UserError
from fedsph.federation.delivery import backoff
from fedsph.mail import links, notices, texts, unsubscribe
from fedsph.mail.message import address_forms, build_message, one_line
from fedsph.mail.queue import claim_mails, lease_mail
from fedsph.mail.smtp import MailNotSent, MailRefused, send_message
from fedsph.models import Actor, Invite, OutgoingMail, User, utcnow

log = logging.getLogger("fedsph.mail")

MAIL_BATCH = 16
MAIL_MAX_ATTEMPTS = 12  # with FEDSPH_RETRY_BASE_SECONDS at 30 s: about 34 hours of tries
# A reset link lasts an hour and a notice is about what waits now: a few hours of tries.
SHORT_LIVED = {"reset": 9, "notice": 9}  # tries over about 2 hours at 30 s
SCAN_EVERY = 60.0  # seconds between two looks for notices that are due
# The database is away or busy for a while (fedsph/core/db_errors.py: a deadlock or a server
# shutting down included, as worker.py's loop sees it): while a mail is written, counted as a
# try with backoff (so one mail cannot starve its batch), re-raised only when even that cannot
# be recorded; the round then stops and hands back the mails it had not tried. Any other
# database error is a bug in one mail: that mail fails, the others go on.


@dataclass
class Written:
    message: EmailMessage
    user: User | None = None
    topic: str | None = None
    newest: int = 0


class MailSender:
    def __init__(self, settings: Settings, writers: async_sessionmaker[AsyncSession],
                 readers: async_sessionmaker[AsyncSession] | None = None):
        self.settings, self.writers = settings, writers
        self.readers = readers or writers
        self.urls = URLs(settings.base_url)
        self.next_scan = 0.0

    async def round(self) -> int:
        """Queue due notices (now and then), then send every due mail once; how many were sent
        or ended."""
        if time.monotonic() >= self.next_scan:
            self.next_scan = time.monotonic() + SCAN_EVERY
            try:
                async with self.writers() as db, db.begin():
                    await notices.queue_due_notices(db)
            except IntegrityError:  # another worker queued the same notice a moment before
                log.info("a notice was queued by another worker")
            except Exception as exc:
                if database_away(exc):
                    raise  # the database is away: the worker's loop waits and tries again
                log.exception("queueing notices failed")  # a bug must not stop the mails
        async with self.readers() as db:  # a look before the claim's write transaction
            due = await db.scalar(select(OutgoingMail.id).where(
                OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= utcnow()).limit(1))
        if due is None:
            return 0
        async with self.writers() as db, db.begin():
            ids = await claim_mails(db, MAIL_BATCH)
        done = 0
        for index, (mail_id, lease) in enumerate(ids):
            try:
                done += await self.send_one(mail_id, lease)
            except Exception as exc:
                if database_away(exc):
                    # the database is away: the worker's loop waits and tries again; the mails
                    # not tried yet go back to the queue now rather than after their lease
                    await self._release(ids[index + 1:])
                    raise
                # a bug in one mail must not stop the others, nor the worker
                log.exception("sending mail %s failed; it is tried again after its lease",
                              mail_id)
        return done

    async def send_one(self, mail_id: int, claimed: datetime) -> bool:
        try:
            async with self.writers() as db, db.begin():
                lease = await lease_mail(db, mail_id, claimed)
                if lease is None:  # cancelled, finished or taken by another worker meanwhile
                    return False
                mail = await db.get(OutgoingMail, mail_id)
                if mail is None:  # its account was deleted meanwhile (ON DELETE CASCADE)
                    return True
                written = await self._write(db, mail)
                if written is None:  # nothing to send any more
                    self._end(mail, "cancelled", None)
                    return True
        except UserError as exc:  # e.g. an address whose domain has no valid ASCII form
            log.warning("mail %s cannot be written: %s", mail_id, exc)
            return await self._record(mail_id, claimed, None, str(exc), retry=False,
                                      ended="cancelled")
        except Exception as exc:
            if database_away(exc) or sqlstate(exc) == STATEMENT_TIMEOUT:
                # Counted as a try with backoff, in a transaction of its own: a mail whose
                # write keeps failing so must not stay first in every batch, starving the
                # others claimed with it. Re-raised only if the database is away for that too.
                log.warning("writing mail %s met a database error, will try again: %s",
                            mail_id, type(exc).__name__)
                # the SQL's parameters may hold an address: only the kind of error is kept
                said = f"database error {sqlstate(exc) or type(exc).__name__}"
                try:
                    return await self._record(mail_id, claimed, None, said, retry=True)
                except Exception as again:
                    if database_away(again):
                        raise exc from again
                    raise
            # a bug: keep the row with its traceback, go on with the others
            log.exception("writing mail %s failed", mail_id)
            # the lease's extension was rolled back with the rest: the claim's mark holds
            return await self._record(mail_id, claimed, None, traceback.format_exc(limit=6),
                                      retry=False)
        try:
            await send_message(self.settings, written.message)
        except MailRefused as exc:
            said = _without_address(str(exc), written.message["To"])
            log.warning("mail %s refused by the server: %s", mail_id, said)
            return await self._record(mail_id, lease, None, f"refused: {said}", retry=False)
        except MailNotSent as exc:
            said = _without_address(str(exc), written.message["To"])
            log.warning("mail %s not sent, will try again: %s", mail_id, said)
            return await self._record(mail_id, lease, None, said, retry=True)
        except Exception:  # a bug or the unforeseen: counted as a try, so the mail ends one day
            log.exception("sending mail %s failed", mail_id)
            said = _without_address(traceback.format_exc(limit=6), written.message["To"])
            return await self._record(mail_id, lease, None, said, retry=True)
        log.info("mail %s sent", mail_id)
        return await self._record(mail_id, lease, written, None, retry=False)

    async def _release(self, claimed: list[tuple[int, datetime]]) -> None:
        """Give up our leases on mails claimed but never tried; with the database away this
        may fail too, and then the leases simply run out."""
        if not claimed:
            return
        try:
            async with self.writers() as db, db.begin():
                for mail_id, lease in claimed:
                    await db.execute(update(OutgoingMail).where(
                        OutgoingMail.id == mail_id, OutgoingMail.locked_until == lease)
                        .values(locked_until=None).execution_options(synchronize_session=False))
        except Exception as exc:
            if not database_away(exc):
                raise
            log.info("the leases of %d untried mails run out instead", len(claimed))

    def _end(self, mail: OutgoingMail, status: str, error: str | None) -> None:
        mail.status, mail.last_error = status, error
        mail.finished_at, mail.locked_until = utcnow(), None

    async def _record(self, mail_id: int, lease: datetime, written: Written | None,
                      error: str | None, retry: bool, ended: str = "failed") -> bool:
        async with self.writers() as db, db.begin():
            mail = await db.get(OutgoingMail, mail_id, with_for_update=True)
            if mail is None:  # deleted with its account while it was being sent
                return True
            if mail.status != "pending":  # cancelled while in our hands: it stays cancelled
                return True
            if written is None and mail.locked_until != lease:  # another worker has it now
                return False
            mail.attempts += 1
            if written is not None:
                self._end(mail, "sent", None)
                if written.topic:
                    await notices.mark_told(db, mail.user_id, written.topic, written.newest)
            elif retry and mail.attempts < SHORT_LIVED.get(mail.kind, MAIL_MAX_ATTEMPTS):
                mail.last_error, mail.locked_until = error[:4000], None
                mail.next_attempt_at = utcnow() + backoff(mail.attempts,
                                                          self.settings.retry_base_seconds)
                return False
            else:
                self._end(mail, ended, (error or "")[:4000])
                if mail.kind == "notice" and mail.topic:  # not again before NOTICE_INTERVAL
                    await notices.mark_told(db, mail.user_id, mail.topic, 0)
        return True

    # -- writing each kind ------------------------------------------------------------------

    def _message(self, to: str, subject: str, body: str,
                 unsubscribe: str | None = None) -> EmailMessage:
        return build_message(self.settings.smtp_from, to, subject, body, self.settings.domain,
                             unsubscribe)

    async def _write(self, db: AsyncSession, mail: OutgoingMail) -> Written | None:
        if mail.kind == "invite":
            return await self._invite(db, mail)
        user = await db.get(User, mail.user_id) if mail.user_id else None
        if user is None or not links.may_use_account(user) or user.email != mail.to_address:
            return None  # the account went, may not act, or its address changed since
        lang, node = user.language or "en", self.settings.node_name
        if mail.kind == "confirm":
            if links.email_is_confirmed(user):
                return None
            token = await links.make_confirm_link(db, user, user.email)
            subject, body = texts.confirm_mail(lang, node, user.username, user.email,
                                               f"{self.urls.base}/email/confirm/{token}")
            return Written(self._message(user.email, subject, body))
        if not links.email_is_confirmed(user):
            return None
        if mail.kind == "reset":
            token = await links.make_reset_link(db, user, links.RESET_BY_MAIL, user.email)
            subject, body = texts.reset_mail(lang, node, user.username,
                                             f"{self.urls.base}/password/reset/{token}")
            return Written(self._message(user.email, subject, body))
        return await self._notice(db, mail, user, lang)

    async def _invite(self, db: AsyncSession, mail: OutgoingMail) -> Written | None:
        project = await db.get(Actor, mail.project_id) if mail.project_id else None
        if project is None:
            return None
        sender = await db.get(User, mail.sent_by) if mail.sent_by else None
        # An invitation speaks for its sender: none once they are disabled or left the project.
        if sender is not None and not (may_log_in(sender)
                                       and await may_act_as(db, sender, project)):
            return None
        if mail.invite_id is not None:  # a retry: the link of the earlier attempt stops working
            await db.execute(delete(Invite).where(Invite.id == mail.invite_id,
                                                  Invite.used_at.is_(None)))
        token = await create_invite(db, project, sender)
        # An UPDATE of its own: SQLite may give the new invite the deleted one's id, which the
        # ON DELETE SET NULL just cleared in the row while the loaded object still holds it.
        await db.execute(update(OutgoingMail).where(OutgoingMail.id == mail.id).values(
            invite_id=select(Invite.id).where(Invite.token_hash == hash_token(token))
            .scalar_subquery()).execution_options(synchronize_session=False))
        subject, body = texts.invite_mail(
            mail.language or "en", self.settings.node_name,
            sender.username if sender else self.settings.node_name,
            one_line(project.name or project.username), f"{self.urls.base}/invite/{token}")
        return Written(self._message(mail.to_address, subject, body))

    async def _notice(self, db: AsyncSession, mail: OutgoingMail, user: User,
                      lang: str) -> Written | None:
        topic = mail.topic or ""
        if topic not in notices.TOPICS:
            return None
        waits = await notices.what_waits(db, user, topic)
        if not waits.total:
            return None
        # Who asks by handle only (a remote actor's name is whatever its server says); where:
        # our own local actor.
        lines = [(who.handle, place.name or place.handle) for place, who in waits.items]
        if topic == "hub":
            pages = [f"{self.urls.base}/hub/manage"]
        else:
            pages = sorted({f"{self.urls.base}/actors/{place.username}/manage"
                            for place, _ in waits.items})
        key = await unsubscribe.signing_key(db, self.urls, self.settings.domain)
        stop = f"{self.urls.base}/mail/unsubscribe/{unsubscribe.make_token(key, user, topic)}"
        subject, body = texts.notice_mail(lang, self.settings.node_name, topic, lines,
                                          waits.total - len(lines), pages, stop)
        return Written(self._message(user.email, subject, body, stop), user, topic, waits.newest)


def _without_address(said: str, address: str | None) -> str:
    """A server's reply as we log and keep it: the recipient's address replaced, in any case
    and in its ASCII (IDNA) and Unicode forms too, as a server may give it back either way."""
    if not address:
        return said
    for form in sorted(address_forms(str(address)), key=len, reverse=True):
        said = re.sub(re.escape(form), "<recipient>", said, flags=re.IGNORECASE)
    return said
