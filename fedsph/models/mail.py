"""E-mail (issue 14, item 3): the outgoing-mail queue, one-time links sent by mail or printed
by `fedsph user reset-link`, and what each member was last told. See fedsph/mail."""

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, delete, false, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.actors import Follow
from fedsph.models.auth import Invite
from fedsph.models.base import Base, utcnow
from fedsph.models.content import Object
from fedsph.models.queue import QueueColumns


class OutgoingMail(QueueColumns, Base):
    """A mail to send: the database is the queue, so a mail server that is down loses nothing.

    The row says what to send, not the text: the worker writes the message when it sends it
    (in the member's language then), and mints the one-time link a reset, confirmation or
    invitation carries at that moment, so no usable secret ever rests in this table.
    status: pending, sent, failed, cancelled (nothing to send any more: the address changed,
    nothing waits).
    """

    __tablename__ = "outgoing_mails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # reset, confirm, invite, notice
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    to_address: Mapped[str] = mapped_column(String(254))
    # An invitation: to which project, from whom, in which language (the newcomer has none yet).
    project_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    sent_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(String(16))
    topic: Mapped[str | None] = mapped_column(String(16))  # a notice: follows, comments, hub
    # An invitation: the invite it carries, deleted when the mail is written again (a retry),
    # so only the link of the last attempt works.
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id", ondelete="SET NULL"))

    # The partial indexes below name their condition for SQLite only: a `postgresql_where`
    # makes SQLAlchemy import its PostgreSQL dialect in every process, SQLite nodes' `serve`
    # included (tests/test_scaleout_memory.py). The real indexes come from migration 0020, with
    # the same condition on both engines (tests/test_queue.py checks both).
    __table_args__ = (
        Index("ix_outgoing_mails_due", "status", "next_attempt_at"),
        # One waiting notice per member and topic, even with two workers queueing at once.
        Index("ux_outgoing_mails_notice", "user_id", "topic", unique=True,
              sqlite_where=text("status = 'pending' AND kind = 'notice'")),
        # One waiting reset and one waiting confirmation per member, whichever process queues.
        Index("ux_outgoing_mails_link", "user_id", "kind", unique=True,
              sqlite_where=text("status = 'pending' AND kind IN ('reset', 'confirm')")),
    )


class MailToken(Base):
    """A one-time link: purpose reset (a new password) or confirm (an address is the member's).

    Only the SHA-256 of the token is kept. A reset link also keeps a fingerprint of the password
    hash it was made under: any change of password (here, by the member, by an admin) voids it.
    """

    __tablename__ = "mail_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # confirm: the address confirmed; a mailed reset: the address it went to
    email: Mapped[str | None] = mapped_column(String(254))
    password_mark: Mapped[str | None] = mapped_column(String(64))  # reset
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class MailNotice(Base):
    """Per member and topic: when we last mailed what waits, up to which item, and whether
    they unsubscribed (at most one notice per topic an hour, only of something new)."""

    __tablename__ = "mail_notices"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    topic: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_mailed_at: Mapped[datetime | None] = mapped_column(DateTime)
    seen_up_to: Mapped[int] = mapped_column(Integer, default=0)  # the newest item's id mailed
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime)


# What a notice looks for every minute (fedsph/mail/notices.py): partial indexes hold only the
# rows waiting, so the look costs nothing on a node with a million posts and follows.
Index("ix_objects_held", Object.id, sqlite_where=Object.approved == false())
Index("ix_follows_pending", Follow.followed_id, sqlite_where=Follow.state == "pending")


async def withdraw_invitations(db: AsyncSession, user_id: int) -> None:
    """A member disabled or deleted (fedsph/accounts.py, fedsph/projects/deletion.py): an
    invitation speaks for whoever made it, so their unused ones go, and their invitation mails
    not sent yet are cancelled (else the worker would mint a working link for them later).

    The mails first, then the invites, in the order the mail sender takes them (it locks the
    mail, then inserts its invite): the UPDATE waits for a sender busy with one of these mails
    to commit, and the DELETE after it (a new snapshot under READ COMMITTED) then sees the
    invite that sender just made. The other order would miss that invite (a working link
    mailed out) and could deadlock with a sender deleting the invite of its last attempt."""
    await db.execute(update(OutgoingMail).where(
        OutgoingMail.sent_by == user_id, OutgoingMail.status == "pending").values(
        status="cancelled", finished_at=utcnow(), locked_until=None,
        last_error="its sender was disabled or deleted").execution_options(
        synchronize_session=False))
    await db.execute(delete(Invite).where(Invite.created_by == user_id, Invite.used_at.is_(None)))
