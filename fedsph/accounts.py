"""Members: password check, login sessions, CSRF tokens, failed-login limits and invitations.

Secrets given to browsers (session cookies, invite links) are random tokens; the database keeps
only their SHA-256, so a leaked database backup cannot be used to log in or to join a project.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import TTLCache
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.errors import N_, UserError
from fedsph.federation.actors import check_username, create_local_actor
from fedsph.federation.local_names import local_name_taken
from fedsph.models import Actor, Invite, LoginSession, Membership, User, utcnow
from fedsph.models.api import OAuthCode, OAuthToken
from fedsph.models.mail import withdraw_invitations

SESSION_COOKIE = "fedsph_session"
# Anonymous visitors (login and invite forms) get their CSRF token in this cookie instead.
ANON_CSRF_COOKIE = "fedsph_csrf"
SESSION_LIFETIME = timedelta(days=30)
INVITE_LIFETIME = timedelta(days=7)
MIN_PASSWORD = 8
EMAIL_MAX = 254  # RFC 5321: the longest address a mail server must accept
EMAIL_TAKEN = N_("this e-mail address is already used by another account")

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both cases take the same time. Made on
    first use, not at import: argon2 takes 64 MB while it hashes, which set every process's peak."""
    return _hasher.hash(secrets.token_urlsafe(16))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def normalize_email(text: str | None) -> str | None:
    """An e-mail address as it is stored and looked up, None for an empty one; UserError if the
    text is not an address. email-validator's normal form (Unicode NFC, the domain decoded from
    IDNA), then lower case: people type their address in any case and form, and a login must
    find it (mail servers that tell case apart in the local part are very rare)."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > EMAIL_MAX:
        raise UserError(N_("an e-mail address has at most %(limit)s characters"), limit=EMAIL_MAX)
    # Imported here, not when the module loads: a serving process needs it only when someone
    # sets an address or logs in with one, and it weighs 2.6 MB of resident memory.
    from email_validator import EmailNotValidError, validate_email
    try:
        # No DNS lookup, and single-label and .test domains allowed: a node on a community
        # network, or offline, must still take its members' addresses. Names reserved for
        # other uses (.local, .arpa, .onion, localhost) are still refused by the library.
        return validate_email(text, check_deliverability=False, globally_deliverable=False,
                              test_environment=True).normalized.lower()
    except EmailNotValidError:
        raise UserError(N_("%(address)s is not an e-mail address"), address=text) from None


def _login_key(login: str) -> str | None:
    """What a login is looked up by: a username, or (with an "@", which no username has) an
    address in normalize_email's form. None when it can name no account (control characters,
    which PostgreSQL would refuse, or an address that does not parse)."""
    login = login.strip()
    if not login or any(ord(ch) < 32 or ord(ch) == 127 for ch in login):
        return None
    if "@" not in login:
        return login.lower()
    try:
        return normalize_email(login)
    except UserError:
        return None


@dataclass(frozen=True)
class Login:
    """What authenticate() found. `account` is what the failure limiter counts a wrong password
    against: the login as typed (normalised), never the account it resolved to. Counting a
    wrong password by address under the account's name would tell a stranger, by the 429 a
    busy account answers, whether an address belongs to that account. So a guesser who tries
    both the name and the address of one account gets both budgets; that is the price."""

    user: User | None  # None: no such account, or the wrong password
    new_hash: str | None  # a fresh hash to store: the argon2 parameters changed since it was set
    account: str


async def authenticate(db: AsyncSession, login: str, password: str) -> Login:
    """The member whose username or e-mail address is `login`, if `password` is theirs.

    A username never has an "@" (check_username), so a login with one is an e-mail address.
    Only reads: call it outside a write transaction, since argon2 is slow.
    """
    key = _login_key(login)
    account = key or login.strip().lower()
    user = None
    if key is not None:
        column = User.email if "@" in key else User.username
        user = await db.scalar(select(User).where(column == key))
    stored = (user.password_hash if user is not None and user.password_hash
              else await asyncio.to_thread(_dummy_hash))
    try:
        # argon2 is slow on purpose (tens of ms): keep the event loop free meanwhile.
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return Login(None, None, account)
    if user is None or not user.password_hash:
        return Login(None, None, account)
    if _hasher.check_needs_rehash(user.password_hash):
        return Login(user, await hash_password(password), account)
    return Login(user, None, account)


async def email_taken(db: AsyncSession, email: str | None, but: int | None = None) -> bool:
    """Whether another account (not user id `but`) already has this normalised address."""
    if email is None:
        return False
    query = select(User.id).where(User.email == email)
    if but is not None:
        query = query.where(User.id != but)
    return await db.scalar(query.limit(1)) is not None


async def start_session(db: AsyncSession, user: User) -> tuple[str, LoginSession]:
    """A new login session; the returned token goes in the cookie and is never stored."""
    token, now = new_token(), utcnow()
    await db.execute(delete(LoginSession).where(LoginSession.expires_at < now))  # tidy up
    await db.execute(update(User).where(User.id == user.id).values(last_login_at=now))
    row = LoginSession(token_hash=hash_token(token), user_id=user.id, csrf_token=new_token(),
                       created_at=now, expires_at=now + SESSION_LIFETIME)
    db.add(row)
    await db.flush()
    return token, row


def may_log_in(user: User | None) -> bool:
    """Whether this user may act at all: the one place every path asks (web login and sessions,
    OAuth grants, token lookup). It reads only the row the caller has just loaded: no cache, so
    a `fedsph user disable` in another process counts at the next request."""
    return user is not None and user.disabled_at is None


async def get_session(db: AsyncSession, token: str) -> tuple[LoginSession, User] | None:
    """The live session and its user for a cookie value, or None (unknown, expired, or its user
    may no longer log in)."""
    row = await db.execute(
        select(LoginSession, User).join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == hash_token(token), LoginSession.expires_at > utcnow()))
    found = row.first()
    return (found[0], found[1]) if found and may_log_in(found[1]) else None


async def end_session(db: AsyncSession, token: str) -> None:
    await db.execute(delete(LoginSession).where(LoginSession.token_hash == hash_token(token)))


async def end_access(db: AsyncSession, user_id: int, keep_session: int | None = None) -> int:
    """End the user's login sessions (all but `keep_session`, the one making a change), unused
    authorization codes and client API tokens; returns how many tokens were revoked. As
    Mastodon's User#change_password! and revoke_access!; the session making a change stays, as
    Mastodon's clear_other_sessions. Mastodon keeps app tokens on a member's own change; we
    revoke them too: whoever they fear knows the password may have made a token with it."""
    ending = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep_session is not None:
        ending = ending.where(LoginSession.id != keep_session)
    await db.execute(ending)
    await db.execute(delete(OAuthCode).where(OAuthCode.user_id == user_id,
                                             OAuthCode.used_at.is_(None)))
    revoked = await db.execute(update(OAuthToken).where(
        OAuthToken.user_id == user_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()))
    return revoked.rowcount


async def change_password(db: AsyncSession, user: User, password_hash: str,
                          keep_session: int | None = None) -> int:
    """Store a new password (hashed by the caller, outside the transaction: argon2 is slow) and
    end every other way in (end_access); returns how many tokens were revoked."""
    await db.execute(update(User).where(User.id == user.id).values(password_hash=password_hash))
    return await end_access(db, user.id, keep_session)


async def set_disabled(db: AsyncSession, user: User, disabled: bool) -> None:
    """Disable (sessions ended, tokens and codes revoked, their unused invitations deleted, no
    login) or enable a user. Enabling gives back only the right to log in."""
    if disabled and user.disabled_at is None:
        await refuse_last_admin(db, user)
    await db.execute(update(User).where(User.id == user.id).values(
        disabled_at=utcnow() if disabled else None))
    if disabled:
        await end_access(db, user.id)
        await withdraw_invitations(db, user.id)  # and their invitation mails not sent yet


async def refuse_last_admin(db: AsyncSession, user: User) -> None:
    """UserError if `user` is the last admin who can log in (nobody could enable anyone). The
    active admins' rows are locked (FOR NO KEY UPDATE, in id order; SQLite has one writer) so
    that two admins disabling each other at once cannot both pass: the second waits, counts one."""
    if user.is_admin and list(await db.scalars(select(User.id).where(
            User.is_admin.is_(True), User.disabled_at.is_(None)).order_by(User.id)
            .with_for_update(key_share=True))) == [user.id]:  # key_share alone: NO KEY UPDATE
        raise UserError(N_("this is the only admin who can log in: make another user an admin "
                           "first"))


async def may_act_as(db: AsyncSession, user: User, actor: Actor) -> bool:
    """Members act as their projects, everyone as their own Person; admins as any local actor."""
    if not actor.local or actor.type == "Application" or actor.deleted_at is not None:
        return False
    if user.is_admin or user.actor_id == actor.id:
        return True
    return await db.scalar(select(Membership.id).where(
        Membership.user_id == user.id, Membership.project_id == actor.id)) is not None


class InvitationGone(UserError):
    """The invitation was already used, has expired or never existed (the page answers 410)."""


class Backoff:
    """Failures per key; past `free` of them, each try must wait 1 s, 2 s, 4 s… up to `cap`.

    Memory is bounded: at most `max_keys` keys, each forgotten `forget` seconds after its last
    failure (a flood of distinct keys evicts the oldest instead of growing forever).
    """

    def __init__(self, free: int, cap: float = 300.0, forget: float = 3600.0,
                 max_keys: int = 10_000, clock=time.monotonic):
        self.free, self.cap, self.clock = free, cap, clock
        self._failures: TTLCache = TTLCache(maxsize=max_keys, ttl=forget, timer=clock)

    def _delay(self, count: int) -> float:
        return 0.0 if count < self.free else min(self.cap, 2.0 ** (count - self.free))

    def wait(self, key: object) -> float:
        """Seconds before `key` may try again (0: now)."""
        count, last = self._failures.get(key, (0, 0.0))
        return max(0.0, last + self._delay(count) - self.clock())

    def fail(self, key: object) -> None:
        count, _ = self._failures.get(key, (0, 0.0))
        self._failures[key] = (count + 1, self.clock())

    def forget(self, key: object) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: object, failures: int) -> None:
        """Take back `failures` of the key's count (those a right password showed were typos)."""
        count, last = self._failures.get(key, (0, 0.0))
        if count - failures > 0:
            self._failures[key] = (count - failures, last)
        else:
            self._failures.pop(key, None)


def throttle_key(address: str) -> str:
    """IPv6 clients are counted per /64: one home or server usually holds a whole /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class FailureLimiter:
    """Slows password guessing per client address and, separately, per account.

    Nothing is ever locked, and only the client's own address can refuse a try before the
    password is checked: an attacker can slow themselves down but never keep the real member out.
    The account's count slows the *wrong* answers of a guesser spread over many addresses: once an
    account is hot, a wrong password for it is answered 429 and holds that address for the
    account's current wait, so every address buys one guess per wait, while a right password from
    an address that is not itself held still logs in at once. A right password forgives only that
    address's failures for that account, so a guesser cannot clear their address by logging in
    to an account of their own. One process, in memory, and forgotten on restart.
    """

    def __init__(self, per_address: int = 5, per_account: int = 20, forget: float = 3600.0,
                 max_keys: int = 10_000, clock=time.monotonic):
        self.clock = clock
        self.by_address = Backoff(per_address, forget=forget, max_keys=max_keys, clock=clock)
        self.by_account = Backoff(per_account, forget=forget, max_keys=max_keys, clock=clock)
        self._by_pair: TTLCache = TTLCache(maxsize=max_keys, ttl=forget, timer=clock)
        self._held: TTLCache = TTLCache(maxsize=max_keys, ttl=forget, timer=clock)

    def retry_after(self, address: str) -> int:
        """Whole seconds before this address may try any password again (0: now)."""
        key = throttle_key(address)
        held = self._held.get(key, 0.0) - self.clock()
        return math.ceil(max(0.0, held, self.by_address.wait(key)))

    def fail(self, address: str, username: str) -> int:
        """Count a wrong password; returns the Retry-After to answer it with (0: a plain "wrong")."""
        key = throttle_key(address)
        self.by_address.fail(key)
        self.by_account.fail(username)
        self._by_pair[key, username] = self._by_pair.get((key, username), 0) + 1
        account_wait = self.by_account.wait(username)
        if account_wait > 0:
            self._held[key] = max(self._held.get(key, 0.0), self.clock() + account_wait)
        return math.ceil(account_wait)

    def succeed(self, address: str, username: str) -> None:
        """A right password forgives this address its misses for this account, nothing more."""
        key = throttle_key(address)
        self.by_address.forgive(key, self._by_pair.pop((key, username), 0))


async def create_invite(db: AsyncSession, project: Actor, created_by: User | None) -> str:
    """A one-time invitation to join `project`; returns the token for the link."""
    token, now = new_token(), utcnow()
    db.add(Invite(token_hash=hash_token(token), project_id=project.id,
                  created_by=created_by.id if created_by else None,
                  created_at=now, expires_at=now + INVITE_LIFETIME))
    await db.flush()
    return token


async def get_invite(db: AsyncSession, token: str) -> tuple[Invite, Actor] | None:
    """The unused, unexpired invite for a token, with its project."""
    found = (await db.execute(
        select(Invite, Actor).join(Actor, Actor.id == Invite.project_id)
        .where(Invite.token_hash == hash_token(token), Invite.used_at.is_(None),
               Invite.expires_at > utcnow()))).first()
    return (found[0], found[1]) if found else None


async def redeem_invitation(db: AsyncSession, urls: URLs, domain: str, token: str, username: str,
                            password_hash: str, email: str | None = None) -> User:
    """Use an invite: a new user with a Person actor, member of the project.

    InvitationGone if the invite cannot be used, UserError if the name cannot be. The password is
    hashed by the caller before the transaction (argon2 is slow; SQLite has one writer).
    """
    found = await get_invite(db, token)
    if found is None:
        raise InvitationGone("this invitation was already used or has expired")
    invite, project = found
    username = check_username(username.strip().lower())
    if await local_name_taken(db, username) or await db.scalar(
            select(User.id).where(User.username == username)):
        raise UserError(f"the name {username!r} is already taken on this node")
    if await email_taken(db, email):
        raise UserError(EMAIL_TAKEN)
    person = await create_local_actor(db, urls, domain, username, "Person")
    user = User(username=username, password_hash=password_hash, actor_id=person.id, email=email)
    db.add(user)
    await db.flush()
    db.add(Membership(user_id=user.id, project_id=project.id, role="member"))
    # Conditional update: of two people racing with one link, only one commits.
    claimed = await db.execute(update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None))
                               .values(used_at=utcnow(), used_by=user.id))
    if claimed.rowcount != 1:
        raise InvitationGone("this invitation was already used or has expired")
    return user
