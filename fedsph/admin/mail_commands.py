"""The e-mail side of `fedsph user` and `fedsph invite` (fedsph/mail): `fedsph user reset-link
NAME` prints a one-time link to choose a new password (24 hours; no mail needed), and
`fedsph invite SLUG --email ADDRESS` mails the invitation instead of printing it.
user_commands.py adds these to its parsers."""

from __future__ import annotations

import argparse

from sqlalchemy import select

from fedsph.config import mail_enabled
from fedsph.errors import UserError
from fedsph.i18n import UI_LANGUAGES
from fedsph.mail import links
from fedsph.mail.queue import queue_invite
from fedsph.models import User
from fedsph.projects.commands import local_actor


async def reset_link(node, args) -> int:
    async with node.writers() as db, db.begin():
        user = await db.scalar(select(User).where(User.username == args.username.strip().lower()))
        if user is None:
            raise UserError(f"no user {args.username!r} on this node")
        if not links.may_use_account(user):
            raise UserError(f"the account {user.username!r} may not log in; enable it first")
        token = await links.make_reset_link(db, user, links.RESET_BY_ADMIN)
    print(f"{node.urls.base}/password/reset/{token}\n"
          "(works once, for 24 hours; a newer link or a password change voids it)")
    return 0


async def invite_by_mail(node, args) -> int:
    if not mail_enabled(node.settings):
        raise UserError("this node sends no e-mail: set FEDSPH_SMTP_HOST (README, \"E-mail\"), "
                        "or leave out --email to print the link")
    async with node.writers() as db, db.begin():
        project = await local_actor(db, args.slug)
        address = await queue_invite(db, project, None, args.email, args.language)
    print(f"invitation to {project.username} queued for {address} (the worker sends it)")
    return 0


COMMANDS: dict = {"user reset-link": reset_link}


def add_user_parsers(user: argparse._SubParsersAction) -> None:
    reset = user.add_parser("reset-link", help="print a one-time link (24 hours) to choose a "
                                               "new password")
    reset.add_argument("username")


def add_invite_options(invite: argparse.ArgumentParser) -> None:
    invite.add_argument("--email", help="mail the invitation to this address (needs SMTP)")
    invite.add_argument("--language", default="en", choices=UI_LANGUAGES,
                        help="the language of the invitation mail")
