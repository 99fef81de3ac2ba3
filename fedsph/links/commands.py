"""`fedsph link …`: propose, list, accept, reject and withdraw solidarity links of a project.

Mistakes raise UserError with one line (fedsph.cli prints it and exits 1).
"""

from __future__ import annotations

import argparse

from fedsph.errors import UserError
from fedsph.links import service as links
from fedsph.models import Actor
from fedsph.projects.commands import local_project


async def link_propose(node, args) -> int:
    links.check_kind(args.kind)
    async with node.writers() as db:
        await local_project(db, args.slug)
    partner = await links.find_project(node.writers, node.remote, node.settings.domain,
                                       args.partner)
    async with node.writers() as db, db.begin():
        project = await local_project(db, args.slug)
        link = await links.propose_link(db, node.urls, project, await db.get(Actor, partner.id),
                                        args.kind)
    print(f"proposed link {link.id}: {args.slug} {args.kind} {partner.uri}")
    return 0


async def link_list(node, args) -> int:
    async with node.writers() as db:
        project = await local_project(db, args.slug)
        states = ("proposed", "accepted", "rejected", "withdrawn") if args.all else links.OPEN_STATES
        for link, proposer, partner in await links.links_of(db, project, states, limit=None):
            print(f"{link.id}\t{link.state}\t{proposer.uri}\t{link.kind}\t{partner.uri}")
    return 0


async def _decide(node, args, action: str) -> int:
    async with node.writers() as db, db.begin():
        project = await local_project(db, args.slug)
        link = await links.get_link(db, project, args.id)
        if action == "withdraw":
            await links.withdraw_link(db, node.urls, project, link)
        elif link.partner_id != project.id:
            raise UserError(f"link {args.id} was proposed by {args.slug}: only the other "
                             f"project can {action} it (withdraw it instead)")
        else:
            await links.answer_link(db, node.urls, link, accept=action == "accept")
    print(f"{link.state} link {args.id}")
    return 0


async def link_accept(node, args) -> int:
    return await _decide(node, args, "accept")


async def link_reject(node, args) -> int:
    return await _decide(node, args, "reject")


async def link_withdraw(node, args) -> int:
    return await _decide(node, args, "withdraw")


COMMANDS: dict = {
    "link propose": link_propose,
    "link list": link_list,
    "link accept": link_accept,
    "link reject": link_reject,
    "link withdraw": link_withdraw,
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this feature's subcommands to the `fedsph` parser."""
    link = sub.add_parser("link", help="solidarity links between projects")
    actions = link.add_subparsers(dest="link_command", required=True)
    propose = actions.add_parser("propose", help="offer a link to another project")
    propose.add_argument("slug", help="the local project that proposes")
    propose.add_argument("partner", help="the other project: name@host, or an actor URL")
    propose.add_argument("kind", help=f"one of {', '.join(links.KINDS)}")
    listing = actions.add_parser("list", help="a project's proposed and accepted links")
    listing.add_argument("slug")
    listing.add_argument("--all", action="store_true", help="also rejected and withdrawn ones")
    for name, text in (("accept", "accept a link proposed to the project"),
                       ("reject", "reject a link proposed to the project"),
                       ("withdraw", "end a link, or take back a proposal")):
        action = actions.add_parser(name, help=text)
        action.add_argument("slug")
        action.add_argument("id", help="the link's number (see `fedsph link list`)")
