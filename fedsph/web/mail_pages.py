"""Pages of the one-time links (fedsph/mail): "forgot password", the reset form, confirming an
address and unsubscribing from notices. None needs a login; every POST passed the CSRF check.

GET never changes anything (mail scanners open links): each link shows a form, and only its
POST acts. The "forgot password" form answers the same whatever was typed, so it tells nobody
whether an account or an address exists, and sends a mail only to a confirmed address; each
client address gets a few tries an hour before its requests are quietly dropped. It answers
before it looks the account up (ForgotLookups does, after), so neither does its timing tell.
Pages of a link are never cached (no-store): they hold a secret in their address. They read on
a reader: on SQLite a writer's session takes the one write lock, and anybody may ask.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from fedsph.accounts import Backoff, check_password_rules, hash_password, throttle_key
from fedsph.config import mail_enabled
from fedsph.errors import UserError
from fedsph.i18n import N_
from fedsph.mail import links, notices, unsubscribe
from fedsph.mail.queue import find_account, queue_confirm, queue_reset, reset_is_due
from fedsph.models import User
from fedsph.web.auth_middleware import read_form
from fedsph.web.client_address import client_address
from fedsph.web.keys import READERS, SETTINGS, URLS, USER, WRITERS
from fedsph.web.render import error_message, html_response

FORGOT_LIMITER = web.AppKey("forgot_limiter", Backoff)
FORGOT_WAITING = 256  # lookups waiting at most; more are dropped (the answer is the same)
FORGOT_DRAIN = 10.0  # seconds the lookups still waiting get when the server stops
FORGOT_FREE = 5  # tries per client address an hour before they wait (1 s, 2 s, 4 s…)
LOGIN_MAX = 255
log = logging.getLogger("fedsph.login")


def _no_store(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(request: web.Request, state: str, status: int = 200, error: str | None = None):
    return _no_store(html_response(request, "password_reset.html", status=status, state=state,
                                   error=error, mail_on=mail_enabled(request.app[SETTINGS])))


async def forgot_form(request: web.Request) -> web.Response:
    return _page(request, "forgot")


async def forgot(request: web.Request) -> web.Response:
    """Always the same answer; a mail is queued only for an account with a confirmed address."""
    form = await read_form(request)
    login = form.get("login", "")[:LOGIN_MAX]
    limiter, key = request.app[FORGOT_LIMITER], throttle_key(client_address(request))
    if not mail_enabled(request.app[SETTINGS]):
        return _page(request, "forgot")
    if limiter.wait(key) > 0:
        log.warning("password reset request dropped: too many from %s", key)
        return _page(request, "sent")
    limiter.fail(key)  # every request counts, found or not
    if not request.app[FORGOT_LOOKUPS].offer(login):
        log.warning("password reset request dropped: too many lookups waiting")
    return _page(request, "sent")


class ForgotLookups:
    """The lookups behind "forgot password" answers, after them: one task per application
    works through a bounded queue, one at a time, so a burst for one account queues one mail in
    this process (across processes, the unique index on waiting resets holds) and a flood costs
    a fixed amount of memory whatever the client addresses. When the server stops, those still
    waiting get a few seconds, then are dropped; none is taken after that (the engine goes)."""

    def __init__(self, app: web.Application):
        self.app, self.closed, self.unfinished = app, False, 0
        self.waiting: asyncio.Queue[str] = asyncio.Queue(maxsize=FORGOT_WAITING)
        self.task: asyncio.Task | None = None

    def offer(self, login: str) -> bool:
        """Queue a lookup; False (dropped) when full or stopping."""
        if self.closed or self.waiting.full():
            return False
        if self.task is None:
            self.task = asyncio.create_task(self._work())
        self.waiting.put_nowait(login)
        self.unfinished += 1
        return True

    async def _work(self) -> None:
        while True:
            login = await self.waiting.get()
            try:
                await _look_up_and_queue(self.app, login)
            finally:
                self.unfinished -= 1
                self.waiting.task_done()

    async def settled(self) -> None:
        """Every lookup offered so far done (tests, and the server stopping)."""
        await self.waiting.join()

    async def close(self, app: web.Application | None = None) -> None:
        self.closed = True
        try:
            await asyncio.wait_for(self.settled(), FORGOT_DRAIN)
        except TimeoutError:
            log.warning("%d password reset lookup(s) dropped at shutdown", self.unfinished)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


FORGOT_LOOKUPS = web.AppKey("forgot_lookups", ForgotLookups)


def _link_conflict(exc: IntegrityError) -> bool:
    """The unique index on waiting resets (PostgreSQL names it; SQLite names its columns)."""
    said = str(exc.orig)
    return "ux_outgoing_mails_link" in said or "outgoing_mails.user_id, outgoing_mails.kind" in said


async def _look_up_and_queue(app: web.Application, login: str) -> None:
    """The work behind a "forgot password" answer: the same answer at the same speed whether
    the account exists or not. Looked up on a reader; a writer (on SQLite, the one write lock)
    only when a mail is due."""
    try:
        async with app[READERS]() as db:
            user = await find_account(db, login)
            due = user is not None and links.may_use_account(user) and await reset_is_due(db, user)
        if not due:
            return
        async with app[WRITERS]() as db, db.begin():
            user = await db.get(User, user.id)  # as it is now, in the writing transaction
            if user is not None and links.may_use_account(user):
                await queue_reset(db, user)
    except IntegrityError as exc:
        if not _link_conflict(exc):
            log.exception("queueing a reset mail failed")
        else:  # another process queued this account's reset a moment before
            log.debug("a reset mail was queued by another process")
    except Exception:  # nobody waits for this task: say it in the log
        log.exception("queueing a reset mail failed")


async def confirm_again(request: web.Request) -> web.Response:
    """A logged-in member's "send the confirmation again": at most one every ten minutes
    (queue_confirm), and only for an address not confirmed yet."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPSeeOther("/login")
    if not mail_enabled(request.app[SETTINGS]):
        raise web.HTTPNotFound()
    try:
        async with request.app[WRITERS]() as db, db.begin():
            user = await db.get(User, user.id)
            queued = await queue_confirm(db, user)
    except IntegrityError:  # a second click, in another process, queued it a moment before
        user, queued = request[USER], False
    return _link_page(request, "again", "sent" if queued else "wait", address=user.email,
                      confirmed=links.email_is_confirmed(user))


async def reset_form(request: web.Request) -> web.Response:
    # A reader: on SQLite a writer's session takes the one write lock (BEGIN IMMEDIATE), and
    # anybody may ask for any address here.
    async with request.app[READERS]() as db:
        found = await links.open_link(db, "reset", request.match_info["token"])
    if found is None:
        return _page(request, "gone", status=410)
    return _page(request, "reset")


async def reset(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    async with request.app[READERS]() as db:  # a writer only for a link that works
        if await links.open_link(db, "reset", token) is None:
            return _page(request, "gone", status=410)
    form = await read_form(request)
    password = form.get("password", "")
    if password != form.get("password2", ""):
        return _page(request, "reset", 400, N_("The two passwords are not the same."))
    try:
        check_password_rules(password)
    except UserError as exc:
        return _page(request, "reset", 400, error_message(request, exc))
    password_hash = await hash_password(password)
    async with request.app[WRITERS]() as db, db.begin():
        user = await links.reset_password(db, token, password_hash)
    if user is None:  # used or voided between the two reads
        return _page(request, "gone", status=410)
    log.info("password reset through a link for user %r", user.username)
    return _page(request, "done")


def _link_page(request: web.Request, kind: str, state: str, status: int = 200, **extra):
    return _no_store(html_response(request, "mail_link.html", status=status, kind=kind,
                                   state=state, **extra))


async def confirm_form(request: web.Request) -> web.Response:
    async with request.app[READERS]() as db:
        found = await links.open_link(db, "confirm", request.match_info["token"])
    if found is None:
        return _link_page(request, "confirm", "gone", 410)
    return _link_page(request, "confirm", "ask", address=found[1].email)


async def confirm(request: web.Request) -> web.Response:
    async with request.app[WRITERS]() as db, db.begin():
        user = await links.confirm_address(db, request.match_info["token"])
    if user is None:
        return _link_page(request, "confirm", "gone", 410)
    return _link_page(request, "confirm", "done", address=user.email)


async def _subscriber(request: web.Request, db) -> tuple[User, str] | None:
    """The member and topic an unsubscribe link names, if its signature is right."""
    shape = unsubscribe.read_token(request.match_info["token"])
    if shape is None or shape[1] not in notices.TOPICS:
        return None
    user = await db.get(User, shape[0])
    if user is None:
        return None
    settings = request.app[SETTINGS]
    key = await unsubscribe.signing_key(db, request.app[URLS], settings.domain)
    return (user, shape[1]) if unsubscribe.signature_matches(key, user, shape[1], shape[2]) \
        else None


async def unsubscribe_form(request: web.Request) -> web.Response:
    async with request.app[READERS]() as db:
        found = await _subscriber(request, db)
    if found is None:
        return _link_page(request, "unsubscribe", "gone", 404)
    return _link_page(request, "unsubscribe", "ask", topic=found[1])


async def unsubscribe_post(request: web.Request) -> web.Response:
    """The page's button, or a mail program's one-click POST (RFC 8058): no CSRF token, as the
    signed link is itself the proof (auth_middleware.CSRF_EXEMPT_ROUTES)."""
    async with request.app[READERS]() as db:  # the signature checked without the write lock
        found = await _subscriber(request, db)
    if found is not None:
        async with request.app[WRITERS]() as db, db.begin():
            user = await db.get(User, found[0].id)
            if user is not None:
                await notices.unsubscribe(db, user, found[1])
    if found is None:
        return _link_page(request, "unsubscribe", "gone", 404)
    return _link_page(request, "unsubscribe", "done", topic=found[1])


def add_routes(app: web.Application) -> None:
    app[FORGOT_LIMITER] = Backoff(FORGOT_FREE, cap=3600.0)
    app[FORGOT_LOOKUPS] = ForgotLookups(app)
    # on_shutdown comes before on_cleanup, where the engine is disposed
    app.on_shutdown.append(app[FORGOT_LOOKUPS].close)
    app.router.add_post("/email/confirm-again", confirm_again)
    app.router.add_get("/password/forgot", forgot_form)
    app.router.add_post("/password/forgot", forgot)
    app.router.add_get("/password/reset/{token}", reset_form)
    app.router.add_post("/password/reset/{token}", reset)
    app.router.add_get("/email/confirm/{token}", confirm_form)
    app.router.add_post("/email/confirm/{token}", confirm)
    app.router.add_get("/mail/unsubscribe/{token}", unsubscribe_form)
    app.router.add_post("/mail/unsubscribe/{token}", unsubscribe_post)
