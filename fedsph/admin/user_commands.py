"""`fedsph user create`, `fedsph user email` and `fedsph invite`: the people who log in (and the
address they may log in with), and the one-time links that let someone join a project."""

from __future__ import annotations

import argparse
import secrets
import sys

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fedsph.accounts import EMAIL_TAKEN, create_invite, email_taken, normalize_email
from fedsph.admin import account_commands, mail_commands
from fedsph.errors import UserError
from fedsph.federation.actors import create_local_actor
from fedsph.models import Membership, User
from fedsph.projects.commands import local_actor


async def create_user(node, username: str, password: str, admin: bool,
                      project: str | None, email: str | None = None) -> User:
    email = normalize_email(email)
    async with node.writers() as db, db.begin():
        if project:
            group = await local_actor(db, project)
        if await email_taken(db, email):
            raise UserError(EMAIL_TAKEN)
        actor = await create_local_actor(db, node.urls, node.settings.domain, username, "Person")
        user = User(username=username, password_hash=PasswordHasher().hash(password),
                    is_admin=admin, actor_id=actor.id, email=email,
                    email_confirmed=email)  # set by an admin: confirmed (fedsph/mail)
        db.add(user)
        await _flush_unless_taken(db)
        if project:
            db.add(Membership(user_id=user.id, project_id=group.id, role="admin" if admin else "member"))
    return user


async def _flush_unless_taken(db) -> None:
    """Flush; a unique index's refusal (another command took the name or the address between
    the check and the write) is a clear message, not a traceback."""
    try:
        await db.flush()
    except IntegrityError:
        raise UserError("the name or the e-mail address was taken by someone else just now; "
                        "try again") from None


async def user_create(node, args) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            raise UserError("the password must have at least 8 characters")
        shown = None
    else:
        password = shown = secrets.token_urlsafe(12)
    await create_user(node, args.username, password, args.admin, args.project, args.email)
    print(f"created user {args.username}" + (f" with password: {shown}" if shown else ""))
    return 0


async def user_email(node, args) -> int:
    """Show, set or remove the address a member may log in with."""
    if args.address is not None and args.remove:
        raise UserError("give an address or --remove, not both")
    if args.address is not None and not args.address.strip():
        # An unset shell variable must not wipe the address: removing it is said explicitly.
        raise UserError("the address is empty; to remove it, use --remove")
    email = normalize_email(args.address) if args.address is not None else None
    async with node.writers() as db, db.begin():
        user = await db.scalar(select(User).where(User.username == args.username.strip().lower()))
        if user is None:
            raise UserError(f"no user {args.username!r} on this node")
        if args.address is None and not args.remove:
            print(user.email or "(no e-mail address)")
            return 0
        if await email_taken(db, email, but=user.id):
            raise UserError(EMAIL_TAKEN)
        user.email = user.email_confirmed = email  # set by an admin: confirmed (fedsph/mail)
        await _flush_unless_taken(db)
    print(f"{user.username}: e-mail address {'set to ' + email if email else 'removed'}")
    return 0


async def invite(node, args) -> int:
    if args.email:
        return await mail_commands.invite_by_mail(node, args)
    async with node.writers() as db, db.begin():
        project = await local_actor(db, args.slug)
        token = await create_invite(db, project, None)
    print(f"{node.urls.base}/invite/{token}\n(works once, for 7 days)")
    return 0


COMMANDS: dict = {"user create": user_create, "user email": user_email, "invite": invite,
                  # password, list, disable, enable, delete (issue 14):
                  **account_commands.COMMANDS,
                  # reset-link (issue 14, e-mail):
                  **mail_commands.COMMANDS}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add these subcommands to the `fedsph` parser."""
    user = sub.add_parser("user", help="manage people who log in").add_subparsers(
        dest="user_command", required=True, metavar="ACTION")
    ucreate = user.add_parser("create", help="create a user (with a Person actor)")
    ucreate.add_argument("username")
    ucreate.add_argument("--password-stdin", action="store_true",
                         help="read the password from standard input (else one is generated)")
    ucreate.add_argument("--admin", action="store_true")
    ucreate.add_argument("--project", help="make the user a member of this project")
    ucreate.add_argument("--email", help="an e-mail address the user may also log in with")
    uemail = user.add_parser("email", help="show, set or remove the e-mail address a user may "
                                           "log in with")
    uemail.add_argument("username")
    uemail.add_argument("address", nargs="?", help="the new address (none: show the current one)")
    uemail.add_argument("--remove", action="store_true", help="remove the address")
    account_commands.add_user_parsers(user)
    invite_cmd = sub.add_parser("invite", help="print a one-time link (7 days) to join a project")
    invite_cmd.add_argument("slug")
    mail_commands.add_user_parsers(user)
    mail_commands.add_invite_options(invite_cmd)
