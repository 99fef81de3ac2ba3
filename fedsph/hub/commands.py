"""`fedsph hub …`: make this node a hub, and join, invite, approve and leave (see
fedsph.cli). Project-side commands name a local project by its slug and the hub by
handle or URL; hub-side commands name the project by handle, URL or (on this node) slug."""

from __future__ import annotations

import argparse

from sqlalchemy import select

from fedsph.core import vocab
from fedsph.errors import UserError
from fedsph.federation.actors import find_actor
from fedsph.hub import membership as hubs
from fedsph.hub import relay
from fedsph.models import Actor, HubMembership
from fedsph.projects.commands import local_actor, local_project


async def _remote(node, target: str, fresh: bool = False) -> Actor:
    """An actor by handle or URL (a bare slug means this node's), fetched when needed."""
    target = target.strip().lstrip("@")
    if "@" not in target and not target.startswith(("http://", "https://")):
        async with node.writers() as db:
            return await local_actor(db, target, called="actor")
    async with node.writers() as db:
        known = None if fresh else await _known(db, target)
    if known is not None:
        return known
    return await find_actor(node.writers, node.remote, target)


async def _known(db, target: str) -> Actor | None:
    """An actor this node has met, by URL or user@host, without asking its server again."""
    if target.startswith(("http://", "https://")):
        return await db.scalar(select(Actor).where(Actor.uri == target))
    username, _, domain = target.partition("@")
    return await db.scalar(select(Actor).where(Actor.username == username,
                                               Actor.domain == domain))


async def _hub_of_this_node(db) -> Actor:
    hub = await hubs.local_hub(db)
    if hub is None:
        raise UserError("this node is not a hub: run `fedsph hub enable --name NAME` first")
    return hub


def _handle(actor: Actor) -> str:
    return f"{actor.username}@{actor.domain}"


# -- the hub's commands -------------------------------------------------------------------------


async def enable(node, args) -> int:
    rule = hubs.parse_auto_approve(args.auto_approve) if args.auto_approve else None
    async with node.writers() as db, db.begin():
        hub = await hubs.ensure_hub(db, node.urls, node.settings.domain, name=args.name,
                                    region=args.region, auto_approve=rule)
    print(f"hub @{_handle(hub)} at {hub.uri}")
    return 0


async def _hub_action(node, args, action, done: str) -> int:
    project = await _remote(node, args.project)
    async with node.writers() as db, db.begin():
        hub = await _hub_of_this_node(db)
        await action(db, node.urls, hub, project)
    print(f"{done} {_handle(project)}")
    return 0


async def approve(node, args) -> int:
    return await _hub_action(node, args, hubs.approve, "approved")


async def reject(node, args) -> int:
    return await _hub_action(node, args, hubs.reject_or_remove, "rejected")


async def remove(node, args) -> int:
    return await _hub_action(node, args, hubs.reject_or_remove, "removed")


async def invite(node, args) -> int:
    return await _hub_action(node, args, hubs.invite, "invited")


async def members(node, args) -> int:
    """Every membership this node knows: of its hub, and of its projects in other hubs."""
    async with node.writers() as db:
        rows = (await db.execute(
            select(HubMembership.state, Actor.uri, Actor.username, Actor.domain,
                   HubMembership.hub_id)
            .join(Actor, Actor.id == HubMembership.project_id)
            .order_by(HubMembership.hub_id, HubMembership.state, Actor.username))).all()
        hub_uris = {row.hub_id: (await db.get(Actor, row.hub_id)).uri for row in rows}
    for row in rows:
        print(f"{row.username}@{row.domain}\t{row.state}\t{hub_uris[row.hub_id]}")
    return 0


async def relay_command(node, args) -> int:
    """`hub relay list|approve|reject [SERVER]`: the relay's subscriptions (FEP-ae0c)."""
    if args.relay_action == "list":
        async with node.writers() as db:
            rows = await relay.relay_subscriptions(db, await _hub_of_this_node(db))
        for follow, actor in rows:
            print(f"{actor.uri}\t{follow.state}\t{follow.created_at:%Y-%m-%d %H:%M}")
        return 0
    if not args.subscriber:
        raise UserError("name the subscriber: its actor URL as `fedsph hub relay list` shows it")
    accept = args.relay_action == "approve"
    async with node.writers() as db, db.begin():
        hub = await _hub_of_this_node(db)
        subscriber = await db.scalar(select(Actor).where(Actor.uri == args.subscriber))
        if subscriber is None:
            raise UserError(f"{args.subscriber} has not asked to subscribe to the relay")
        await relay.decide_subscription(db, node.urls, hub, subscriber, accept)
    print(f"{'approved' if accept else 'rejected'} {args.subscriber}")
    return 0


# -- the project's commands ---------------------------------------------------------------------


async def _project_action(node, args, action, done: str) -> int:
    async with node.writers() as db:
        await local_project(db, args.slug)  # a mistyped slug is told before any network request
    hub = await _remote(node, args.hub, fresh=True)  # it may have become a hub since
    async with node.writers() as db, db.begin():
        project = await local_project(db, args.slug)
        if not hubs.is_hub_actor(hub):
            raise UserError(f"{hub.uri} is not a hub")
        row = await action(db, node.urls, project, hub)
    state = getattr(row, "state", None)
    print(f"{args.slug} {done} {hub.uri}" + (f" ({state})" if state else ""))
    return 0


async def join(node, args) -> int:
    return await _project_action(node, args, hubs.request_join, "asked to join")


async def accept_hub_invitation(node, args) -> int:
    return await _project_action(node, args, hubs.accept_invitation, "accepted the invitation of")


async def decline_hub_invitation(node, args) -> int:
    return await _project_action(node, args, hubs.decline_invitation, "declined the invitation of")


async def leave(node, args) -> int:
    return await _project_action(node, args, hubs.leave, "left")


COMMANDS: dict = {
    "hub enable": enable, "hub approve": approve, "hub reject": reject, "hub remove": remove,
    "hub invite": invite, "hub members": members, "hub join": join,
    "hub accept-invite": accept_hub_invitation, "hub decline-invite": decline_hub_invitation, "hub leave": leave,
    "hub relay": relay_command,
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this feature's subcommands to the `fedsph` parser."""
    hub = sub.add_parser("hub", help="hub mode: a hub gathering projects, and joining hubs")
    actions = hub.add_subparsers(dest="hub_command", required=True)
    enable_cmd = actions.add_parser("enable", help="make this node a hub (or change its settings)")
    enable_cmd.add_argument("--name", help="the hub's display name")
    enable_cmd.add_argument("--region", help="the hub's region: one of " + ", ".join(vocab.REGION))
    enable_cmd.add_argument("--auto-approve", metavar="RULE",
                            help="all, none, or region:<region> and country:<CC> "
                                 "separated by commas (any one lets a project in)")
    for name, text in (("approve", "approve a project's request to join this hub"),
                       ("reject", "turn down a project's request (or withdraw an invitation)"),
                       ("remove", "remove a member project from this hub"),
                       ("invite", "invite a project to this hub")):
        cmd = actions.add_parser(name, help=text)
        cmd.add_argument("project", help="the project: user@host, its URL, or a local slug")
    actions.add_parser("members", help="list hub memberships and their states")
    relay_cmd = actions.add_parser("relay", help="list, approve or reject relay subscriptions")
    relay_cmd.add_argument("relay_action", choices=("list", "approve", "reject"))
    relay_cmd.add_argument("subscriber", nargs="?", help="the subscribing server's actor URL")
    for name, text in (("join", "ask for a local project to join a hub"),
                       ("accept-invite", "accept a hub's invitation for a local project"),
                       ("decline-invite", "decline a hub's invitation"),
                       ("leave", "take a local project out of a hub")):
        cmd = actions.add_parser(name, help=text)
        cmd.add_argument("slug", help="the local project")
        cmd.add_argument("hub", help="the hub: user@host or its URL")
