"""A member's password form, and the node admins' page of users and projects.

Node admins are the users with `is_admin` (`fedsph admin grant NAME`, fedsph/admin/powers.py):
the same people who may already change blocks and act as any local actor. The admin page lists
the users (disable, enable) and the projects (delete); deleting a user stays a command
(`fedsph user delete`), as it is rare and asks what to do with their projects.

Every POST has passed the CSRF check of fedsph/web/auth_middleware.py before it reaches a handler.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select

from fedsph.accounts import (
    MIN_PASSWORD,
    authenticate,
    change_password,
    check_password_rules,
    hash_password,
    set_disabled,
)
from fedsph.errors import Forbidden, UserError
from fedsph.i18n import N_
from fedsph.models import Actor, Membership, User
from fedsph.projects.deletion import (
    AlreadyDeleted,
    delete_actor,
    free_media,
    log_deleted,
    not_a_hub,
    retried,
)
from fedsph.web.auth_middleware import LIMITER, read_form
from fedsph.web.client_address import client_address
from fedsph.web.documents import forget_actor
from fedsph.web.keys import DOCUMENTS, LOGIN_SESSION, READERS, SETTINGS, URLS, USER, WRITERS
from fedsph.web.render import error_message, html_response

log = logging.getLogger("fedsph.login")
FIELD_MAX = 1024  # argon2 takes any length; a megabyte "password" is only a way to burn CPU


def _logged_in(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path, safe='')}")
    return user


# --- a member changes their password -------------------------------------------------------------

async def password_form(request: web.Request) -> web.Response:
    _logged_in(request)
    return html_response(request, "password.html", error=None, done=request.query.get("done"),
                         min_length=MIN_PASSWORD)


async def password_change(request: web.Request) -> web.Response:
    """Current password, new one twice. Throttled like the login form (a stolen session must
    not become a way to guess the password), then every other session ends and every app token
    is revoked; the session making the change stays (fedsph.accounts.end_access says why)."""
    user = _logged_in(request)
    form = await read_form(request)
    limiter, address = request.app[LIMITER], client_address(request)

    def again(error: str, status: int = 400, wait: int = 0) -> web.Response:
        response = html_response(request, "password.html", status=status, error=error,
                                 done=None, min_length=MIN_PASSWORD)
        if wait:
            response.headers["Retry-After"] = str(wait)
        return response

    wait = limiter.retry_after(address)
    if wait:
        return again(N_("Too many failed attempts. Wait a few minutes and try again."), 429, wait)
    current, new = form.get("current", "")[:FIELD_MAX], form.get("password", "")[:FIELD_MAX]
    async with request.app[READERS]() as db:
        found = await authenticate(db, user.username, current)
    if found.user is None or found.user.id != user.id:
        wait = limiter.fail(address, found.account)
        log.warning("password change refused: wrong current password; user %r from %s",
                    user.username, address)
        return again(N_("The current password is wrong."), 429 if wait else 403, wait)
    limiter.succeed(address, found.account)
    if new != form.get("password2", "")[:FIELD_MAX]:
        return again(N_("The two passwords are not the same."))
    try:
        check_password_rules(new)
    except UserError as exc:
        return again(error_message(request, exc))
    password_hash = await hash_password(new)
    async with request.app[WRITERS]() as db, db.begin():
        await change_password(db, user, password_hash, keep_session=request[LOGIN_SESSION].id)
    raise web.HTTPSeeOther("/account/password?done=changed")


# --- the node admins' page -----------------------------------------------------------------------

def _admin(request: web.Request) -> User:
    user = _logged_in(request)
    if not user.is_admin:
        raise Forbidden(N_("Only the node's admins may see this page."))
    return user


async def _render_admin(request: web.Request, status: int = 200, error: str | None = None,
                        done: str | None = None) -> web.Response:
    async with request.app[READERS]() as db:
        users = list(await db.scalars(select(User).order_by(User.username)))
        projects = list(await db.scalars(select(Actor).where(
            Actor.local.is_(True), Actor.type == "Group", Actor.deleted_at.is_(None),
            not_a_hub()).order_by(Actor.username)))
        members: dict[int, list[str]] = {}
        for project_id, username in await db.execute(
                select(Membership.project_id, User.username)
                .join(User, User.id == Membership.user_id).order_by(User.username)):
            members.setdefault(project_id, []).append(username)
    return html_response(request, "admin.html", status=status, users=users, projects=projects,
                         members=members, error=error, done=done or request.query.get("done"))


async def admin_page(request: web.Request) -> web.Response:
    _admin(request)
    return await _render_admin(request)


async def admin_user(request: web.Request) -> web.Response:
    """Disable or enable a user: at once, in every process (sessions and tokens are read from
    the database on each request)."""
    me = _admin(request)
    form = await read_form(request)
    action = form.get("action")
    if action not in ("disable", "enable"):
        return await _render_admin(request, 400, N_("Unknown action."))
    try:
        async with request.app[WRITERS]() as db, db.begin():
            user = await db.scalar(select(User).where(User.username == form.get("username", "")))
            if user is None:
                return await _render_admin(request, 404, N_("There is no such user."))
            await set_disabled(db, user, action == "disable")
    except UserError as exc:
        return await _render_admin(request, 400, error_message(request, exc))
    log.warning("user %r %sd by admin %r", user.username, action, me.username)
    if user.id == me.id and action == "disable":
        raise web.HTTPSeeOther("/login")  # this very session has just ended
    raise web.HTTPSeeOther(f"/admin?done={action}d")


async def admin_project(request: web.Request) -> web.Response:
    """Delete a project for good. Its name must be typed again: the form works without
    JavaScript, so there is no confirmation dialog to lean on."""
    me = _admin(request)
    form = await read_form(request)
    name = form.get("project", "")
    if form.get("action") != "delete":
        return await _render_admin(request, 400, N_("Unknown action."))
    if form.get("confirm", "").strip().lower() != name:
        return await _render_admin(request, 400, N_("Type the project's name to confirm."))

    async def deleting(db):
        project = await db.scalar(select(Actor).where(
            Actor.local.is_(True), Actor.type == "Group", Actor.username == name,
            Actor.deleted_at.is_(None), not_a_hub()))
        return None if project is None else await delete_actor(db, request.app[URLS], project)
    try:
        gone = await retried(request.app[WRITERS], deleting)
    except AlreadyDeleted:  # another admin's deletion committed while this one waited
        gone = None
    if gone is None:
        return await _render_admin(request, 404, N_("There is no such project here."))
    log_deleted(gone)
    free_media(request.app[SETTINGS], gone)
    forget_actor(request.app[DOCUMENTS], name, gone.actor_uri)
    log.warning("project %r deleted by admin %r", name, me.username)
    raise web.HTTPSeeOther("/admin?done=deleted")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/account/password", password_form)
    app.router.add_post("/account/password", password_change)
    app.router.add_get("/admin", admin_page)
    app.router.add_post("/admin/users", admin_user)
    app.router.add_post("/admin/projects", admin_project)
