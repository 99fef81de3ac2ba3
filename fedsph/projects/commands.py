"""`fedsph project …`, `post`, `edit`, `delete`, `follow`, `unfollow` and `follow-requests`: what
a project does from the command line; and `local_actor`, the one lookup of a local project (or
user, or hub) by name that every feature's commands use.

Each command takes `node` (settings, urls, writer sessions and a signing Remote: see
fedsph.admin.node.Node) and the parsed arguments; a mistake raises UserError, which the
`fedsph` command prints on one line.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.errors import UserError
from fedsph.federation.actors import create_local_actor, find_actor, get_local_actor
from fedsph.models import Actor, Follow, Object
from fedsph.projects import deletion, outbox, profile, profile_cli

# Which local actors a command may name, and how its error message calls them.
ANY_ACTOR = ("Group", "Person", "Organization", "Service", "Application")
PROJECT = ("Group",)
NOT_THE_INSTANCE = ("Group", "Person", "Organization", "Service")  # the instance actor only signs


async def local_actor(db: AsyncSession, slug: str, types: tuple[str, ...] = ANY_ACTOR,
                      called: str = "project or user") -> Actor:
    """The local actor named `slug` (of one of `types`); UserError saying there is no such
    `called` on this node otherwise."""
    actor = await get_local_actor(db, slug)
    if actor is None or actor.type not in types:
        raise UserError(f"there is no {called} called {slug!r} on this node")
    return actor


async def local_project(db: AsyncSession, slug: str) -> Actor:
    """The local project (Group) named `slug`; UserError "there is no project called …"."""
    return await local_actor(db, slug, PROJECT, called="project")


async def project_create(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await create_local_actor(
            db, node.urls, node.settings.domain, args.slug, "Group", name=args.name,
            summary=args.summary, manually_approves=args.manual_approval)
    print(f"created project @{actor.username}@{node.settings.domain} at {actor.uri}")
    return 0


async def project_set(node, args) -> int:
    if (args.file is None) == (args.field is None):
        raise UserError("give either FIELD VALUE... or --file PROFILE.json")
    if args.file is not None:
        changes = profile_cli.load_file(args.file)
    else:
        changes = profile_cli.parse_cli(args.field, args.values)
    async with node.writers() as db, db.begin():
        actor = await local_actor(db, args.slug)
        inboxes = await profile.set_profile(db, node.urls, actor, changes)
    what = args.file or args.field
    print(f"updated {what} of @{actor.username}; Update queued for {inboxes} inbox(es)")
    return 0


async def project_list(node, args) -> int:
    async with node.writers() as db:
        for actor in await db.scalars(select(Actor).where(
                Actor.local.is_(True), Actor.type == "Group", Actor.deleted_at.is_(None))):
            print(f"{actor.username}\t{actor.name}\t{actor.uri}")
    return 0


async def project_delete(node, args) -> int:
    """Delete a project for good: a Delete to its followers, its posts and media gone, its name
    reserved (fedsph/projects/deletion.py)."""
    async with node.writers() as db:
        project = await local_project(db, args.slug)
        await deletion.refuse_hub(db, project)  # said before asking to confirm
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("add --yes to delete without being asked (standard input is not a "
                            "terminal); nothing was deleted")
        answer = input(f"Delete the project {project.username} and all it published for good? "
                       "Type its name to confirm: ")
        if answer.strip().lower() != project.username:
            print("nothing was deleted")
            return 1

    async def deleting(db):
        return await deletion.delete_actor(db, node.urls, await local_project(db, args.slug))
    gone = await deletion.retried(node.writers, deleting)
    deletion.log_deleted(gone)
    deletion.free_media(node.settings, gone)
    print(f"deleted project {args.slug}; Delete queued to {gone.queued} inbox(es); the name "
          "stays reserved")
    return 0


async def post(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await local_actor(db, args.slug)
        obj = await outbox.publish_text_post(db, node.urls, actor, args.text, language=args.lang)
    print(obj.uri)
    return 0


async def _own_object(db: AsyncSession, actor: Actor, uri: str) -> Object:
    obj = await db.scalar(select(Object).where(Object.uri == uri, Object.actor_id == actor.id))
    if obj is None:
        raise UserError(f"{uri} is not an update by {actor.username}")
    return obj


async def edit(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await local_actor(db, args.slug)
        await outbox.edit_post_text(db, node.urls, actor, await _own_object(db, actor, args.object), args.text)
    print(f"edited {args.object}")
    return 0


async def delete(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await local_actor(db, args.slug)
        await outbox.delete_post(db, node.urls, actor, await _own_object(db, actor, args.object))
    print(f"deleted {args.object}")
    return 0


async def follow(node, args) -> int:
    target = await find_actor(node.writers, node.remote, args.target)
    async with node.writers() as db, db.begin():
        actor = await local_actor(db, args.slug)
        relation = await outbox.follow(db, node.urls, actor, target)
    print(f"{args.slug} follows {target.uri} ({relation.state})")
    return 0


async def unfollow(node, args) -> int:
    target = await find_actor(node.writers, node.remote, args.target)
    async with node.writers() as db, db.begin():
        actor = await local_actor(db, args.slug)
        done = await outbox.unfollow(db, node.urls, actor, target)
    print(f"{args.slug} no longer follows {target.uri}" if done else
          f"{args.slug} did not follow {target.uri}")
    return 0


async def follow_requests(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await local_actor(db, args.slug)
        chosen = args.approve or args.reject
        if chosen:
            relation = await db.scalar(select(Follow).where(
                Follow.id == chosen, Follow.followed_id == actor.id, Follow.state == "pending"))
            if relation is None:
                raise UserError(f"no pending follow request {chosen} for {args.slug}")
            await outbox.answer_follow(db, node.urls, relation, accept=bool(args.approve))
            print(f"{'approved' if args.approve else 'rejected'} request {chosen}")
            return 0
        rows = await db.execute(select(Follow.id, Actor.uri).join(Actor, Actor.id == Follow.follower_id)
                                .where(Follow.followed_id == actor.id, Follow.state == "pending"))
        for request_id, uri in rows:
            print(f"{request_id}\t{uri}")
    return 0


COMMANDS: dict = {
    "project create": project_create,
    "project list": project_list,
    "project set": project_set,
    "project delete": project_delete,
    "post": post,
    "edit": edit,
    "delete": delete,
    "follow": follow,
    "unfollow": unfollow,
    "follow-requests": follow_requests,
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this feature's subcommands to the `fedsph` parser."""
    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="project_command", required=True, metavar="ACTION")
    create = project.add_parser("create", help="create a project (an ActivityPub Group)")
    create.add_argument("slug")
    create.add_argument("--name", required=True)
    create.add_argument("--summary")
    create.add_argument("--manual-approval", action="store_true",
                        help="follow requests wait for approval")
    project.add_parser("list", help="list the projects on this node")
    pdelete = project.add_parser(
        "delete", help="delete a project for good (tells its followers; its name stays "
                       "reserved)")
    pdelete.add_argument("slug")
    pdelete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    pset = project.add_parser(
        "set", help="set profile fields of a project (tells its followers)",
        description="Set one profile field: FIELD VALUE... (list fields take several values, "
                    "no VALUE clears the field, name:es sets a translation), or the whole "
                    "profile from a JSON file with --file.")
    pset.add_argument("slug")
    pset.add_argument("field", nargs="?", help="e.g. stage, approach, location, name:es")
    pset.add_argument("values", nargs="*", metavar="VALUE")
    pset.add_argument("--file", metavar="PROFILE.json", help="the whole profile as JSON")
    post_cmd = sub.add_parser("post", help="publish an update as a project")
    post_cmd.add_argument("slug")
    post_cmd.add_argument("--text", required=True)
    post_cmd.add_argument("--lang", help="language of the text (BCP-47, e.g. es, fr, pt-BR)")
    edit_cmd = sub.add_parser("edit", help="change the text of an update")
    edit_cmd.add_argument("slug")
    edit_cmd.add_argument("object", help="the update's URL")
    edit_cmd.add_argument("--text", required=True)
    delete_cmd = sub.add_parser("delete", help="delete an update")
    delete_cmd.add_argument("slug")
    delete_cmd.add_argument("object", help="the update's URL")
    for name, text in (("follow", "follow a remote actor"), ("unfollow", "stop following")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("slug", help="the local project (or user) that follows")
        cmd.add_argument("target", help="user@host or an actor URL")
    requests = sub.add_parser("follow-requests", help="list, approve or reject follow requests")
    requests.add_argument("slug")
    group = requests.add_mutually_exclusive_group()
    group.add_argument("--approve", type=int, metavar="ID")
    group.add_argument("--reject", type=int, metavar="ID")
