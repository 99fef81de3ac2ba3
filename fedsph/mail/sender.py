"""The worker's side of the mail queue: every round, notices that are due are queued (at most
once a minute), then due mails are claimed, written and sent.

A mail is written in one transaction (which also mints the link it carries), sent, and its
outcome recorded in another. A server that is down or answers 4xx: the mail is tried again
with backoff (about a day and a half in all), so nothing is lost; a 5xx refusal fails it for
good. A crash between the send and the record sends it again after the lease (a second link
then voids the first). Addresses and links are never logged.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.accounts import create_invite
from fedsph.config import Settings
from fedsph.core.urls import URLs
from fedsph.federation.delivery import backoff
from fedsph.mail import links, notices, texts, unsubscribe
from fedsph.mail.message import build_message
from fedsph.mail.queue import claim_mails, prune_mail
from fedsph.mail.smtp import MailRefused, send_message
from fedsph.models import Actor, OutgoingMail, User, utcnow

log = logging.getLogger("fedsph.mail")

MAIL_BATCH = 16
MAIL_MAX_ATTEMPTS = 12  # with FEDSPH_RETRY_BASE_SECONDS at 30 s: about 34 hours of tries
SCAN_EVERY = 60.0  # seconds between two looks for notices that are due
PRUNE_EVERY = 3600.0


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
        self.next_scan = self.next_prune = 0.0

    async def round(self) -> int:
        """Queue due notices (now and then), then send every due mail once; how many were sent
        or ended."""
        if time.monotonic() >= self.next_scan:
            self.next_scan = time.monotonic() + SCAN_EVERY
            try:
                async with self.writers() as db, db.begin():
                    await notices.queue_due_notices(db)
            except (DBAPIError, OSError):
                raise  # the database is away: the worker's loop waits and tries again
            except Exception:  # a bug must not stop the mails already queued, nor the worker
                log.exception("queueing notices failed")
        if time.monotonic() >= self.next_prune:
            self.next_prune = time.monotonic() + PRUNE_EVERY
            async with self.writers() as db, db.begin():
                await prune_mail(db, timedelta(days=self.settings.inbox_retention_days))
        async with self.readers() as db:  # a look before the claim's write transaction
            due = await db.scalar(select(OutgoingMail.id).where(
                OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= utcnow()).limit(1))
        if due is None:
            return 0
        async with self.writers() as db, db.begin():
            ids = await claim_mails(db, MAIL_BATCH)
        done = 0
        for mail_id in ids:
            done += await self.send_one(mail_id)
        return done

    async def send_one(self, mail_id: int) -> bool:
        try:
            async with self.writers() as db, db.begin():
                mail = await db.get(OutgoingMail, mail_id)
                if mail is None:  # its account was deleted meanwhile (ON DELETE CASCADE)
                    return True
                written = await self._write(db, mail)
                if written is None:  # nothing to send any more
                    self._end(mail, "cancelled", None)
                    return True
        except (DBAPIError, OSError):
            raise  # the database is away: the row keeps its lease and is claimed again later
        except Exception:  # a bug: keep the row with its traceback, go on with the others
            log.exception("writing mail %s failed", mail_id)
            return await self._record(mail_id, None, traceback.format_exc(limit=6), retry=False)
        try:
            await send_message(self.settings, written.message)
        except MailRefused as exc:
            log.warning("mail %s refused by the server: %s", mail_id, exc)
            return await self._record(mail_id, None, f"refused: {exc}", retry=False)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("mail %s not sent, will try again: %s", mail_id, exc)
            return await self._record(mail_id, None, f"{type(exc).__name__}: {exc}", retry=True)
        log.info("mail %s sent", mail_id)
        return await self._record(mail_id, written, None, retry=False)

    def _end(self, mail: OutgoingMail, status: str, error: str | None) -> None:
        mail.status, mail.last_error = status, error
        mail.finished_at, mail.locked_until = utcnow(), None

    async def _record(self, mail_id: int, written: Written | None, error: str | None,
                      retry: bool) -> bool:
        async with self.writers() as db, db.begin():
            mail = await db.get(OutgoingMail, mail_id)
            if mail is None:  # deleted with its account while it was being sent
                return True
            mail.attempts += 1
            if written is not None:
                self._end(mail, "sent", None)
                if written.topic:
                    await notices.mark_told(db, mail.user_id, written.topic, written.newest)
            elif retry and mail.attempts < MAIL_MAX_ATTEMPTS:
                mail.last_error, mail.locked_until = error[:4000], None
                mail.next_attempt_at = utcnow() + backoff(mail.attempts,
                                                          self.settings.retry_base_seconds)
                return False
            else:
                self._end(mail, "failed", (error or "")[:4000])
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
            token = await links.make_reset_link(db, user, links.RESET_BY_MAIL)
            subject, body = texts.reset_mail(lang, node, user.username,
                                             f"{self.urls.base}/password/reset/{token}")
            return Written(self._message(user.email, subject, body))
        return await self._notice(db, mail, user, lang)

    async def _invite(self, db: AsyncSession, mail: OutgoingMail) -> Written | None:
        project = await db.get(Actor, mail.project_id) if mail.project_id else None
        if project is None:
            return None
        sender = await db.get(User, mail.sent_by) if mail.sent_by else None
        token = await create_invite(db, project, sender)
        subject, body = texts.invite_mail(
            mail.language or "en", self.settings.node_name,
            sender.username if sender else self.settings.node_name,
            project.name or project.username, f"{self.urls.base}/invite/{token}")
        return Written(self._message(mail.to_address, subject, body))

    async def _notice(self, db: AsyncSession, mail: OutgoingMail, user: User,
                      lang: str) -> Written | None:
        topic = mail.topic or ""
        if topic not in notices.TOPICS:
            return None
        waits = await notices.what_waits(db, user, topic)
        if not waits.total:
            return None
        lines = [(who.handle, place.name or place.handle) for place, who in waits.items]
        if topic == "hub":
            lines = [(who.handle, who.name or who.username) for _, who in waits.items]
            pages = [f"{self.urls.base}/hub/manage"]
        else:
            pages = sorted({f"{self.urls.base}/actors/{place.username}/manage"
                            for place, _ in waits.items})
        key = await unsubscribe.signing_key(db, self.urls, self.settings.domain)
        stop = f"{self.urls.base}/mail/unsubscribe/{unsubscribe.make_token(key, user, topic)}"
        subject, body = texts.notice_mail(lang, self.settings.node_name, topic, lines,
                                          waits.total - len(lines), pages, stop)
        return Written(self._message(user.email, subject, body, stop), user, topic, waits.newest)
