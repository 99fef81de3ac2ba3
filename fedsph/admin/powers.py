"""`fedsph admin …`, `fedsph block …` and `fedsph token …`: the node-wide powers, for whoever
runs the node's shell (fedsph.cli adds the parsers and COMMANDS below).

admin grant/revoke/list: who may change blocks on the web pages and act as any local actor.
block domain/account/list/remove: node-wide blocks (the rules live in fedsph.federation.blocks).
token revoke: end every client API token of a member (a lost phone, a leaked token).
"""

from __future__ import annotations

import argparse

from sqlalchemy import select, update

from fedsph.accounts import refuse_last_admin
from fedsph.errors import UserError
from fedsph.federation import blocks
from fedsph.federation.actors import find_actor
from fedsph.models import Actor, OAuthToken, User, utcnow


async def _user(db, username: str) -> User:
    user = await db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UserError(f"there is no user called {username!r} on this node")
    return user


async def admin_set(node, args) -> int:
    grant = args.admin_command == "grant"
    async with node.writers() as db, db.begin():
        user = await _user(db, args.username)
        if not grant:  # the same rule, under the same locks, as disabling or deleting one
            await refuse_last_admin(db, user)
        user.is_admin = grant
    print(f"{user.username} is {'now' if grant else 'no longer'} an admin")
    return 0


async def admin_list(node, args) -> int:
    async with node.writers() as db:
        for username in await db.scalars(select(User.username).where(User.is_admin.is_(True))
                                         .order_by(User.username)):
            print(username)
    return 0


async def block_domain(node, args) -> int:
    domain = blocks.parse_domain(args.domain)
    if blocks.covers(domain, blocks.host_of(node.urls.base)):
        raise UserError("this node cannot block itself")
    async with node.writers() as db, db.begin():
        await blocks.block_domain(db, domain)
    print(f"blocked {domain} and every name under it")
    return 0


async def block_account(node, args) -> int:
    target = await find_actor(node.writers, node.remote, args.account)  # resolve_handle strips it
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, target.id)
        if actor.local:
            raise UserError("accounts on this node cannot be blocked")
        await blocks.block_account(db, actor)
    print(f"blocked {actor.uri}")
    return 0


async def block_list(node, args) -> int:
    async with node.writers() as db:
        for block in await blocks.get_blocks(db):
            print(f"{block.id}\t{block.domain or block.actor_uri}")
    return 0


async def block_remove(node, args) -> int:
    async with node.writers() as db, db.begin():
        if not await blocks.unblock(db, args.id):
            raise UserError(f"there is no block {args.id}")
    print(f"block {args.id} lifted")
    return 0


async def token_revoke(node, args) -> int:
    async with node.writers() as db, db.begin():
        user = await _user(db, args.username)
        ended = await db.execute(update(OAuthToken).where(
            OAuthToken.user_id == user.id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=utcnow()))
    print(f"revoked {ended.rowcount} token(s) of {user.username}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser("admin", help="grant or revoke the admin role").add_subparsers(
        dest="admin_command", required=True, metavar="ACTION")
    for action, text in (("grant", "make a user an admin"), ("revoke", "take the role away")):
        admin.add_parser(action, help=text).add_argument("username")
    admin.add_parser("list", help="list the admins")
    block = sub.add_parser("block", help="node-wide blocks of domains and accounts") \
        .add_subparsers(dest="block_command", required=True, metavar="ACTION")
    block.add_parser("domain", help="block a domain and its subdomains").add_argument("domain")
    block.add_parser("account", help="block one remote account (user@host or URL)") \
        .add_argument("account")
    block.add_parser("list", help="list the blocks with their ids")
    block.add_parser("remove", help="lift a block by its id").add_argument("id", type=int)
    token = sub.add_parser("token", help="client API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION")
    token.add_parser("revoke", help="revoke every token of a user").add_argument("username")


COMMANDS = {
    "admin grant": admin_set,
    "admin revoke": admin_set,
    "admin list": admin_list,
    "block domain": block_domain,
    "block account": block_account,
    "block list": block_list,
    "block remove": block_remove,
    "token revoke": token_revoke,
}
