"""One-time links: a password reset and an address confirmation.

A reset link made by `fedsph user reset-link` lasts 24 hours (an admin passes it on by phone or
chat, and it may be read the next morning); one sent by mail lasts 1 hour (the member asked for
it a moment ago; a mailbox is a place links are found later). Each works once, a newer reset
link voids the older ones, and any change of the password voids it too: the link keeps a
fingerprint of the password hash it was made under. Using it ends every login session and API
token of the account. A confirmation link (7 days) proves that the member reads the address.
Only the SHA-256 of each token is stored (fedsph.accounts.hash_token).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.accounts import change_password, hash_token, may_log_in, new_token
from fedsph.models import MailToken, User, utcnow

RESET_BY_ADMIN = timedelta(hours=24)
RESET_BY_MAIL = timedelta(hours=1)
CONFIRM_LIFETIME = timedelta(days=7)


def may_use_account(user: User) -> bool:
    """Whether this account may still act (log in, reset its password, get mail). The one place
    the reset flow and the mail sender ask; a disabled or deleted account must answer False
    (fedsph.accounts.may_log_in: the one check every way in asks)."""
    return may_log_in(user)


def password_mark(user: User) -> str:
    """A fingerprint of the current password hash (not the hash itself: the token row must not
    become a second copy of it)."""
    return hashlib.sha256(f"reset:{user.password_hash or ''}".encode()).hexdigest()


def email_is_confirmed(user: User) -> bool:
    return bool(user.email) and user.email == user.email_confirmed


async def make_reset_link(db: AsyncSession, user: User, lifetime: timedelta,
                          address: str | None = None) -> str:
    """A new reset token for `user` (the older ones stop working); returns the token. A mailed
    link keeps the `address` it went to: once the account's address changes, a link sitting
    in the old mailbox no longer works."""
    now = utcnow()
    await db.execute(delete(MailToken).where(MailToken.user_id == user.id,
                                             MailToken.purpose == "reset"))
    token = new_token()
    db.add(MailToken(user_id=user.id, purpose="reset", token_hash=hash_token(token),
                     password_mark=password_mark(user), email=address, created_at=now,
                     expires_at=now + lifetime))
    await db.flush()
    return token


async def make_confirm_link(db: AsyncSession, user: User, address: str) -> str:
    now = utcnow()
    await db.execute(delete(MailToken).where(MailToken.user_id == user.id,
                                             MailToken.purpose == "confirm"))
    token = new_token()
    db.add(MailToken(user_id=user.id, purpose="confirm", token_hash=hash_token(token),
                     email=address, created_at=now, expires_at=now + CONFIRM_LIFETIME))
    await db.flush()
    return token


async def open_link(db: AsyncSession, purpose: str, token: str) -> tuple[MailToken, User] | None:
    """The unused, unexpired link of `purpose` for a token, with its account; None if it cannot
    be used (unknown, used, expired, voided by a newer link or a changed password or address,
    or an account that may not act)."""
    if not token or len(token) > 128:
        return None
    found = (await db.execute(
        select(MailToken, User).join(User, User.id == MailToken.user_id)
        .where(MailToken.token_hash == hash_token(token), MailToken.purpose == purpose,
               MailToken.used_at.is_(None), MailToken.expires_at > utcnow()))).first()
    if found is None:
        return None
    link, user = found
    if not may_use_account(user):
        return None
    if purpose == "reset" and (link.password_mark != password_mark(user)
                               or (link.email is not None and link.email != user.email)):
        return None
    if purpose == "confirm" and link.email != user.email:
        return None
    return link, user


async def _spend(db: AsyncSession, link: MailToken) -> bool:
    """Mark the link used; of two requests racing with one link, only one gets True."""
    result = await db.execute(update(MailToken).where(MailToken.id == link.id,
                                                      MailToken.used_at.is_(None))
                              .values(used_at=utcnow()).execution_options(
                                  synchronize_session=False))
    return result.rowcount == 1


async def reset_password(db: AsyncSession, token: str, password_hash: str) -> User | None:
    """Set a new password through a reset link: the link is spent, every session and token of
    the account ends, and other reset links go. None (nothing changed) if the link cannot be
    used. The hash is made by the caller, outside the transaction (argon2 is slow)."""
    found = await open_link(db, "reset", token)
    if found is None or not await _spend(db, found[0]):
        return None
    link, user = found
    # Every other way in ends too: sessions, unused codes, app tokens (revoked, as a password
    # change does anywhere).
    await change_password(db, user, password_hash)
    await db.execute(delete(MailToken).where(MailToken.user_id == user.id,
                                             MailToken.purpose == "reset",
                                             MailToken.id != link.id))
    return user


async def confirm_address(db: AsyncSession, token: str) -> User | None:
    found = await open_link(db, "confirm", token)
    if found is None or not await _spend(db, found[0]):
        return None
    link, user = found
    user.email_confirmed = link.email
    return user
