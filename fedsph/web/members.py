"""Pages for members: log in and out, and accept an invitation.

Managing a project is in fedsph/web/project_manage.py, composing updates in compose.py and the
profile form in profile_edit.py.
Every POST has passed the CSRF check of fedsph/web/auth_middleware.py before it reaches a handler.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from fedsph.accounts import (
    EMAIL_MAX,
    SESSION_COOKIE,
    InvitationGone,
    authenticate,
    check_password_rules,
    end_session,
    get_invite,
    hash_password,
    may_log_in,
    normalize_email,
    redeem_invitation,
    start_session,
)
from fedsph.config import mail_enabled
from fedsph.core.safe_links import local_path
from fedsph.errors import UserError
from fedsph.i18n import N_
from fedsph.mail.queue import queue_confirm
from fedsph.models import Actor
from fedsph.web.auth_middleware import LIMITER, read_form, set_cookie
from fedsph.web.client_address import client_address
from fedsph.web.keys import READERS, SETTINGS, URLS, USER, WRITERS
from fedsph.web.languages import visitor_lang
from fedsph.web.render import error_message, html_response

USERNAME_MAX = 255
log = logging.getLogger("fedsph.login")


def safe_next(raw: str | None, default: str = "/") -> str:
    """Only paths on this site (fedsph.core.safe_links.local_path), else `default`: no open redirect."""
    return local_path(raw) or default


# --- log in and out ------------------------------------------------------------------------------

async def login_form(request: web.Request) -> web.Response:
    following = safe_next(request.query.get("next"))
    if request[USER] is not None:
        raise web.HTTPSeeOther(following)
    return html_response(request, "login.html", next=following, username="", error=None)


def _refused_login(request: web.Request, username: str, error: str, status: int,
                   following: str, wait: int = 0) -> web.Response:
    """Log why (never the password) and show the form again."""
    log.warning("login refused: %s; user %r from %s", "throttled" if wait else "wrong password",
                username, client_address(request))
    response = html_response(request, "login.html", status=status, next=following,
                             username=username, error=error)
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


async def login(request: web.Request) -> web.Response:
    form = await read_form(request)
    username = form.get("username", "").strip().lower()[:USERNAME_MAX]
    following = safe_next(form.get("next"))
    limiter, address = request.app[LIMITER], client_address(request)
    wait = limiter.retry_after(address)
    if wait:
        return _refused_login(request, username, "too_many", 429, following, wait)
    async with request.app[READERS]() as db:
        found = await authenticate(db, username, form.get("password", ""))
    user = found.user
    if user is None:
        wait = limiter.fail(address, found.account)
        if wait:
            return _refused_login(request, username, "too_many", 429, following, wait)
        return _refused_login(request, username, "wrong", 401, following)
    limiter.succeed(address, found.account)
    if not may_log_in(user):
        # Said only after the right password: whoever sees it knows the password already, so
        # it tells a stranger nothing about which accounts exist (a wrong password on a
        # disabled account gets the usual "wrong"). Its owner learns to ask the admin.
        log.warning("login refused: account disabled; user %r from %s", username, address)
        return html_response(request, "login.html", status=403, next=following,
                             username=username, error="disabled")
    async with request.app[WRITERS]() as db, db.begin():
        if found.new_hash or user.language != visitor_lang(request):
            user = await db.merge(user)
            user.password_hash = found.new_hash or user.password_hash
            user.language = visitor_lang(request)  # what their mails are written in
        token, _ = await start_session(db, user)
    response = web.HTTPSeeOther(following)
    set_cookie(request, response, SESSION_COOKIE, token)
    raise response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[WRITERS]() as db, db.begin():
            await end_session(db, token)
    response = web.HTTPSeeOther("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# --- invitations ---------------------------------------------------------------------------------

async def _open_invite(request: web.Request) -> Actor:
    async with request.app[READERS]() as db:
        found = await get_invite(db, request.match_info["token"])
    if found is None:
        return None
    return found[1]


async def invite_form(request: web.Request) -> web.Response:
    project = await _open_invite(request)
    if project is None:
        return html_response(request, "invite.html", status=410, project=None, username="",
                             error=None)
    return html_response(request, "invite.html", project=project, username="", email="",
                         error=None)


async def invite_accept(request: web.Request) -> web.Response:
    project = await _open_invite(request)
    if project is None:
        return html_response(request, "invite.html", status=410, project=None, username="",
                             error=None)
    form = await read_form(request)
    username = form.get("username", "").strip().lower()[:USERNAME_MAX]
    email_typed = form.get("email", "").strip()[:EMAIL_MAX + 1]
    password = form.get("password", "")

    def again(error: str) -> web.Response:
        return html_response(request, "invite.html", status=400, project=project,
                             username=username, email=email_typed, error=error)

    if password != form.get("password2", ""):
        return again(N_("The two passwords are not the same."))
    try:
        check_password_rules(password)
        email = normalize_email(email_typed)
    except UserError as exc:
        return again(error_message(request, exc))
    password_hash = await hash_password(password)
    settings = request.app[SETTINGS]
    try:
        async with request.app[WRITERS]() as db, db.begin():
            user = await redeem_invitation(db, request.app[URLS], settings.domain,
                                           request.match_info["token"], username, password_hash,
                                           email)
            user.language = visitor_lang(request)  # what their mails are written in
            if mail_enabled(settings):  # a typed address counts once its owner confirms it
                await queue_confirm(db, user)
            token, _ = await start_session(db, user)
    except IntegrityError:  # someone took the name or the address between the check and the insert
        return again(N_("This name or e-mail address was taken a moment ago; choose another."))
    except InvitationGone:
        return html_response(request, "invite.html", status=410, project=None, username="",
                             error=None)
    except UserError as exc:
        return again(error_message(request, exc))
    response = web.HTTPSeeOther(f"/actors/{project.username}/manage?done=joined")
    set_cookie(request, response, SESSION_COOKIE, token)
    raise response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/invite/{token}", invite_form)
    app.router.add_post("/invite/{token}", invite_accept)
