"""`fedsph user password|list|disable|enable|delete`: managing the people who log in.
(`user create`, `user email` and `invite` are in user_commands.py, which adds these actions to
its `user` command.)

Every change here is seen by every `fedsph serve` process at the next request: sessions and
tokens are read from the database each time (fedsph.accounts.may_log_in), never cached.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy import select

from fedsph.accounts import (
    MIN_PASSWORD,
    change_password,
    check_password_rules,
    hash_password,
    refuse_last_admin,
    set_disabled,
)
from fedsph.errors import UserError
from fedsph.models import Actor, Membership, User
from fedsph.projects.deletion import (
    delete_user,
    free_media,
    lock_projects_of,
    log_deleted,
    projects_going_with,
    retried,
)


async def _user(db, username: str) -> User:
    user = await db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UserError(f"there is no user called {username!r} on this node")
    return user


def read_new_password(stream=None) -> str:
    """The new password: asked twice without echo on a terminal, else one line of standard
    input (`echo "$PASSWORD" | fedsph user password NAME`), as `user create --password-stdin`."""
    stream = stream or sys.stdin
    if stream.isatty():
        first = getpass.getpass("New password: ")
        if first != getpass.getpass("Same password again: "):
            raise UserError("the two passwords are not the same; nothing was changed")
    else:
        first = stream.readline().rstrip("\r\n")
    check_password_rules(first)
    return first


async def user_password(node, args) -> int:
    async with node.writers() as db:  # a name typed wrong is said before asking for a password
        await _user(db, args.username)
    password = read_new_password()
    password_hash = await hash_password(password)  # before the transaction: argon2 is slow
    async with node.writers() as db, db.begin():
        user = await _user(db, args.username)
        revoked = await change_password(db, user, password_hash)
    print(f"password of {user.username} changed; every session ended, {revoked} app token(s) "
          "revoked")
    return 0


async def user_list(node, args) -> int:
    """One line per user: name, e-mail, status, projects, last login (tab-separated)."""
    async with node.writers() as db:
        users = await db.scalars(select(User).order_by(User.username))
        names = await _project_names(db)
        print("name\te-mail\tstatus\tprojects\tlast login")
        for user in users:
            status = "disabled" if user.disabled_at else ("admin" if user.is_admin else "active")
            last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "-"
            print(f"{user.username}\t{user.email or '-'}\t{status}\t"
                  f"{','.join(names.get(user.id, [])) or '-'}\t{last}")
    return 0


async def _project_names(db) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for user_id, username in await db.execute(
            select(Membership.user_id, Actor.username).join(Actor, Actor.id == Membership.project_id)
            .order_by(Actor.username)):
        names.setdefault(user_id, []).append(username)
    return names


async def user_disable(node, args) -> int:
    disable = args.user_command == "disable"
    async with node.writers() as db, db.begin():
        user = await _user(db, args.username)
        await set_disabled(db, user, disable)
    print(f"{user.username} is {'disabled: sessions ended, tokens revoked' if disable else 'enabled'}")
    return 0


async def user_delete(node, args) -> int:
    async with node.writers() as db:  # what to ask about; checked again when deleting
        user = await _user(db, args.username)
        await refuse_last_admin(db, user)
        alone = [p.username for p in await projects_going_with(db, user, args.with_projects)]
    if not args.yes and not _confirmed(user.username, alone):
        print("nothing was deleted")
        return 1

    async def deleting(db):
        user = await _user(db, args.username)
        await refuse_last_admin(db, user)
        await lock_projects_of(db, user)  # counted under lock: nobody joins or is added meanwhile
        going = [p.username for p in await projects_going_with(db, user, args.with_projects)]
        if going != alone:  # a member joined or left since the question: ask again
            raise UserError(f"the projects deleting {user.username} would delete changed "
                            f"(now: {', '.join(going) or 'none'}); nothing was deleted, ask again")
        return await delete_user(db, node.urls, user, with_projects=args.with_projects)
    deleted = await retried(node.writers, deleting)
    for gone in deleted:
        log_deleted(gone)
        free_media(node.settings, gone)
    projects = [g.username for g in deleted[:-1]]  # the Person comes last
    print(f"deleted user {user.username}"
          + (f" and project(s) {', '.join(projects)}" if projects else "")
          + f"; Delete queued to {sum(g.queued for g in deleted)} inbox(es)")
    return 0


def _confirmed(username: str, projects: list[str]) -> bool:
    if not sys.stdin.isatty():
        raise UserError("add --yes to delete without being asked (standard input is not a "
                        "terminal); nothing was deleted")
    also = f" and the project(s) {', '.join(projects)}" if projects else ""
    answer = input(f"Delete the user {username}{also} for good? Type the name to confirm: ")
    return answer.strip().lower() == username


COMMANDS: dict = {
    "user password": user_password,
    "user list": user_list,
    "user disable": user_disable,
    "user enable": user_disable,
    "user delete": user_delete,
}


def add_user_parsers(user: argparse._SubParsersAction) -> None:
    """Add these actions to the `fedsph user` command."""
    password = user.add_parser(
        "password", help="set a user's password (ends their sessions, revokes their app tokens)",
        description=f"Asks twice without showing it; or reads one line from standard input when "
                    f"that is not a terminal. At least {MIN_PASSWORD} characters.")
    password.add_argument("username")
    user.add_parser("list", help="list users: name, e-mail, status, projects, last login")
    user.add_parser("disable", help="stop a user from logging in; ends their sessions and "
                                    "revokes their app tokens at once").add_argument("username")
    user.add_parser("enable", help="let a disabled user log in again").add_argument("username")
    delete = user.add_parser(
        "delete", help="delete a user for good (their name stays reserved)",
        description="Deletes the user and their own account (a Delete is sent to its "
                    "followers). Projects with other members keep going without them. If the "
                    "user is the only member of a project, nothing is deleted unless you add "
                    "--with-projects, which deletes those projects too.")
    delete.add_argument("username")
    delete.add_argument("--with-projects", action="store_true",
                        help="also delete the projects this user is the only member of")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
