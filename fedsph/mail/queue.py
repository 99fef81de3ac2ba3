"""The outgoing-mail queue: what pages and commands insert, and the worker's claim.

Only inserts happen where a request is answered; the message is written and sent later by the
worker (sender.py). A reset or confirmation already waiting for an account is not queued twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.accounts import normalize_email
from fedsph.core.db_errors import DEADLOCK, sqlstate
from fedsph.errors import UserError
from fedsph.i18n import N_
from fedsph.models import Actor, MailToken, OutgoingMail, User, utcnow

MAIL_LEASE = timedelta(minutes=5)
# However often someone asks, an account gets at most one reset mail in this time (a stranger
# who knows a member's name must not be able to fill their mailbox).
RESET_MAIL_EVERY = timedelta(minutes=10)
# The same for "send the confirmation again" (a member's button).
CONFIRM_MAIL_EVERY = timedelta(minutes=10)
# Invitation mail goes to any address a member types: capped so that a member (or a stolen
# session) cannot use the node as a relay for mail to strangers.
INVITES_A_DAY = 20  # per project
MEMBER_INVITES_A_DAY = 10  # per inviting member: lower, so one member cannot use a project's all
CONFIRMS_A_DAY = 5  # "send the confirmation again", per member
INVITE_AGAIN_AFTER = timedelta(days=7)  # the same address, the same project


async def _waiting(db: AsyncSession, kind: str, user_id: int, topic: str | None = None) -> bool:
    query = select(OutgoingMail.id).where(OutgoingMail.kind == kind,
                                          OutgoingMail.user_id == user_id,
                                          OutgoingMail.status == "pending")
    if topic is not None:
        query = query.where(OutgoingMail.topic == topic)
    return await db.scalar(query.limit(1)) is not None


async def find_account(db: AsyncSession, login: str) -> User | None:
    """The account a "forgot password" form names: by username, or by address (with an @)."""
    login = login.strip()
    if not login or any(not ch.isprintable() for ch in login):
        return None
    if "@" not in login:
        return await db.scalar(select(User).where(User.username == login.lower()))
    try:
        address = normalize_email(login)
    except UserError:
        return None
    return await db.scalar(select(User).where(User.email == address))


async def reset_is_due(db: AsyncSession, user: User) -> bool:
    """Whether a reset mail may be queued for the account (only reads: a reader will do)."""
    if not (user.email and user.email == user.email_confirmed):
        return False
    return await db.scalar(select(OutgoingMail.id).where(
        OutgoingMail.kind == "reset", OutgoingMail.user_id == user.id,
        or_(OutgoingMail.status == "pending",
            OutgoingMail.created_at > utcnow() - RESET_MAIL_EVERY)).limit(1)) is None


async def queue_reset(db: AsyncSession, user: User) -> bool:
    """A reset mail to the account's confirmed address; False (nothing queued) when it has
    none, or one is already waiting."""
    if not await reset_is_due(db, user):
        return False
    db.add(OutgoingMail(kind="reset", user_id=user.id, to_address=user.email))
    return True


async def queue_confirm(db: AsyncSession, user: User) -> bool:
    """A confirmation mail for an address the member typed (not yet confirmed)."""
    if not user.email or user.email == user.email_confirmed:
        return False
    confirms = select(OutgoingMail.id).where(OutgoingMail.kind == "confirm",
                                             OutgoingMail.user_id == user.id)
    if await db.scalar(confirms.where(or_(
            OutgoingMail.status == "pending",
            OutgoingMail.created_at > utcnow() - CONFIRM_MAIL_EVERY)).limit(1)) is not None:
        return False
    if await db.scalar(select(func.count()).select_from(confirms.where(
            OutgoingMail.created_at > utcnow() - timedelta(days=1)).subquery())) >= CONFIRMS_A_DAY:
        return False
    db.add(OutgoingMail(kind="confirm", user_id=user.id, to_address=user.email))
    return True


async def queue_invite(db: AsyncSession, project: Actor, sent_by: User | None, address: str,
                       language: str | None) -> str:
    """An invitation to join `project` mailed to `address` (UserError if it is not one); the
    invitation itself is made when the mail is sent. Returns the address as normalised."""
    clean = normalize_email(address)
    if clean is None:
        raise UserError("give the address to send the invitation to")
    await _check_invite_caps(db, project, sent_by, clean)
    db.add(OutgoingMail(kind="invite", to_address=clean, project_id=project.id,
                        sent_by=sent_by.id if sent_by else None, language=language))
    return clean


async def _check_invite_caps(db: AsyncSession, project: Actor, sent_by: User | None,
                             address: str) -> None:
    """UserError when this invitation would go over a cap (counted from the queue itself, sent
    or not, so the caps hold across restarts and workers). The project's row and the member's
    are locked first (SQLite has one writer): on PostgreSQL two requests at once would
    otherwise both count below the cap, then both insert. FOR NO KEY UPDATE on the project: it
    serialises invitations all the same but lets rows pointing at the project (posts,
    deliveries) be inserted meanwhile. An admin deleting the member or project locks these rows
    in the other order: PostgreSQL then ends one side with a deadlock, which here is a plain
    "try again", never a 500 (the transaction is aborted: nothing was stored)."""
    try:
        await db.execute(select(Actor.id).where(Actor.id == project.id)
                         .with_for_update(key_share=True))
        if sent_by is not None:
            await db.execute(select(User.id).where(User.id == sent_by.id).with_for_update())
    except DBAPIError as exc:
        if sqlstate(exc) != DEADLOCK:
            raise
        raise UserError(N_("This form could not be accepted: reload the page and try "
                           "again.")) from None
    now = utcnow()
    invites = select(func.count()).select_from(OutgoingMail).where(
        OutgoingMail.kind == "invite", OutgoingMail.created_at > now - timedelta(days=1))
    if sent_by is not None and await db.scalar(
            invites.where(OutgoingMail.sent_by == sent_by.id)) >= MEMBER_INVITES_A_DAY:
        raise UserError(N_("You have sent %(count)s invitations by mail today, the most a day; "
                           "try again tomorrow."), count=MEMBER_INVITES_A_DAY)
    if await db.scalar(invites.where(OutgoingMail.project_id == project.id)) >= INVITES_A_DAY:
        raise UserError(N_("This project has sent %(count)s invitations by mail today, the most "
                           "a day; try again tomorrow."), count=INVITES_A_DAY)
    if await db.scalar(select(OutgoingMail.id).where(
            OutgoingMail.kind == "invite", OutgoingMail.project_id == project.id,
            OutgoingMail.to_address == address, OutgoingMail.status.in_(("pending", "sent")),
            OutgoingMail.created_at > now - INVITE_AGAIN_AFTER).limit(1)) is not None:
        raise UserError(N_("An invitation to this project was mailed to this address in the "
                           "last 7 days."))


async def queue_notice(db: AsyncSession, user: User, topic: str) -> bool:
    if await _waiting(db, "notice", user.id, topic):
        return False
    db.add(OutgoingMail(kind="notice", user_id=user.id, to_address=user.email, topic=topic))
    return True


async def claim_mails(db: AsyncSession, limit: int,
                      lease: timedelta = MAIL_LEASE) -> list[tuple[int, datetime]]:
    """Lease up to `limit` due mails (FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers
    share the queue; SQLite's write lock serializes claims). Each comes with its lease's end,
    which is the claim's mark: the sender acts on a mail only while that mark is still there
    (lease_mail)."""
    now = utcnow()
    due = (select(OutgoingMail.id)
           .where(OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= now,
                  or_(OutgoingMail.locked_until.is_(None), OutgoingMail.locked_until < now))
           .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id).limit(limit)
           .with_for_update(skip_locked=True))
    result = await db.execute(update(OutgoingMail).where(OutgoingMail.id.in_(due.scalar_subquery()))
                              .values(locked_until=now + lease)
                              .returning(OutgoingMail.id, OutgoingMail.locked_until)
                              .execution_options(synchronize_session=False))
    return [(row[0], row[1]) for row in result]


async def lease_mail(db: AsyncSession, mail_id: int, ours: datetime,
                     lease: timedelta = MAIL_LEASE) -> datetime | None:
    """Extend our lease on one mail just before it is written and sent; None if it is no longer
    ours to send: cancelled or finished meanwhile, or leased by another worker after ours ran
    out. One atomic UPDATE, so two workers can never both go on with one mail."""
    new = utcnow() + lease
    result = await db.execute(update(OutgoingMail).where(
        OutgoingMail.id == mail_id, OutgoingMail.status == "pending",
        OutgoingMail.locked_until == ours).values(locked_until=new)
        .execution_options(synchronize_session=False))
    return new if result.rowcount == 1 else None


async def prune_mail(db: AsyncSession, older_than: timedelta) -> int:
    """Housekeeping: mails finished (sent, failed, cancelled) longer ago than FEDSPH_INBOX_RETENTION_DAYS
    (they name who got what), and links past their end (their hashes are of no use any more)."""
    now = utcnow()
    # Every mail stays at least the day the daily caps count over, and invitations the week
    # the same-address check looks back over (_check_invite_caps), however short the setting.
    older_than = max(older_than, timedelta(days=1))
    mails = await db.execute(delete(OutgoingMail).where(
        OutgoingMail.status != "pending",
        func.coalesce(OutgoingMail.finished_at, OutgoingMail.created_at) < now - older_than,
        or_(OutgoingMail.kind != "invite", OutgoingMail.created_at < now - INVITE_AGAIN_AFTER))
        .execution_options(synchronize_session=False))
    await db.execute(delete(MailToken).where(MailToken.expires_at < now)
                     .execution_options(synchronize_session=False))
    return mails.rowcount or 0
