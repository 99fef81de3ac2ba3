"""What each CLI command does. Each opens what it needs and closes it again."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.accounts import create_invite
from fedsph.app import create_app
from fedsph.cli import CommandError
from fedsph.config import Settings
from fedsph.core.files import private_dir
from fedsph.core.urls import URLs
from fedsph.db import ensure_migrated, make_engine, make_sessionmaker
from fedsph.db import migrate as migrate_database
from fedsph.errors import FetchError
from fedsph.federation.actors import (
    create_local_actor,
    get_local_actor,
    get_or_create_instance_actor,
    resolve_handle,
    signer_for,
)
from fedsph.federation.queue import prune_finished
from fedsph.federation.remote import Remote, make_client_session
from fedsph.models import (
    Actor,
    Delivery,
    Follow,
    InboxItem,
    Membership,
    Object,
    Report,
    User,
    utcnow,
)
from fedsph.projects import outbox, profile, profile_cli, queries
from fedsph.projects.media_prune import prune_media
from fedsph.web.access_log import access_log_options
from fedsph.worker import Worker


def migrate(settings: Settings) -> None:
    private_dir(settings.data_dir)
    migrate_database(settings.effective_database_url)
    print("database is up to date")


@dataclass
class Node:
    settings: Settings
    urls: URLs
    sessions: async_sessionmaker[AsyncSession]
    remote: Remote


@contextlib.asynccontextmanager
async def open_node(settings: Settings) -> AsyncIterator[Node]:
    """Engine, writer sessions and a signing HTTP client, for commands that act."""
    engine = make_engine(settings)
    try:
        await ensure_migrated(engine)
        sessions = make_sessionmaker(engine, writer=True)
        urls = URLs(settings.base_url)
        async with sessions() as db, db.begin():
            instance = await get_or_create_instance_actor(db, urls, settings.domain)
        async with make_client_session(settings.allow_private_networks, settings.http_timeout) as http:
            yield Node(settings, urls, sessions, Remote(http, signer_for(instance),
                                                        settings.allow_private_networks))
    finally:
        await engine.dispose()


async def run(settings: Settings, args) -> int:
    if args.command == "serve":
        return await serve(settings, run_worker=not args.no_worker)
    if args.command == "worker":
        return await worker(settings)
    async with open_node(settings) as node:
        # Commands with actions (`project set`, `hub join`…) are keyed "command action".
        action = getattr(args, f"{args.command}_command", None)
        key = f"{args.command} {action}" if action else args.command
        handler = COMMANDS.get(key) or network_commands()[key]
        return await handler(node, args) or 0


def network_commands() -> dict:
    """The commands of hubs, solidarity links and events, each kept beside its feature."""
    from fedsph.admin.network_cli import COMMANDS as network

    return network


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(settings: Settings, run_worker: bool) -> int:
    engine = make_engine(settings)
    try:
        await ensure_migrated(engine)
    finally:
        await engine.dispose()
    runner = web.AppRunner(create_app(settings, run_worker=run_worker),
                           **access_log_options(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError as exc:
        await runner.cleanup()
        raise CommandError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
                           " (another program uses that port? set FEDSPH_PORT)") from None
    print(f"fedsph serving {settings.base_url} on http://{settings.host}:{settings.port}"
          f"{'' if run_worker else ' (no worker)'}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await runner.cleanup()
    return 0


async def worker(settings: Settings) -> int:
    async with open_node(settings) as node:
        stop = asyncio.Event()
        task = asyncio.create_task(Worker(settings, node.sessions, node.remote).run_forever(stop))
        print("fedsph worker running", flush=True)
        await _wait_for_signal()
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return 0


async def _local_actor(db: AsyncSession, slug: str) -> Actor:
    actor = await get_local_actor(db, slug)
    if actor is None:
        raise CommandError(f"there is no project or user called {slug!r} on this node")
    return actor


async def project_create(node: Node, args) -> int:
    async with node.sessions() as db, db.begin():
        actor = await create_local_actor(
            db, node.urls, node.settings.domain, args.slug, "Group", name=args.name,
            summary=args.summary, manually_approves=args.manual_approval)
    print(f"created project @{actor.username}@{node.settings.domain} at {actor.uri}")
    return 0


async def project_set(node: Node, args) -> int:
    if (args.file is None) == (args.field is None):
        raise CommandError("give either FIELD VALUE... or --file PROFILE.json")
    if args.file is not None:
        changes = profile_cli.load_file(args.file)
    else:
        changes = profile_cli.parse_cli(args.field, args.values)
    async with node.sessions() as db, db.begin():
        actor = await _local_actor(db, args.slug)
        inboxes = await profile.set_profile(db, node.urls, actor, changes)
    what = args.file or args.field
    print(f"updated {what} of @{actor.username}; Update queued for {inboxes} inbox(es)")
    return 0


async def project_list(node: Node, args) -> int:
    async with node.sessions() as db:
        for actor in await db.scalars(select(Actor).where(Actor.local.is_(True),
                                                          Actor.type == "Group")):
            print(f"{actor.username}\t{actor.name}\t{actor.uri}")
    return 0


async def create_user(node: Node, username: str, password: str, admin: bool,
                      project: str | None) -> User:
    async with node.sessions() as db, db.begin():
        if project:
            group = await _local_actor(db, project)
        actor = await create_local_actor(db, node.urls, node.settings.domain, username, "Person")
        user = User(username=username, password_hash=PasswordHasher().hash(password),
                    is_admin=admin, actor_id=actor.id)
        db.add(user)
        await db.flush()
        if project:
            db.add(Membership(user_id=user.id, project_id=group.id, role="admin" if admin else "member"))
    return user


async def user_create(node: Node, args) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            raise CommandError("the password must have at least 8 characters")
        shown = None
    else:
        password = shown = secrets.token_urlsafe(12)
    await create_user(node, args.username, password, args.admin, args.project)
    print(f"created user {args.username}" + (f" with password: {shown}" if shown else ""))
    return 0


async def bootstrap(node: Node, args) -> int:
    """First run: a project and an admin if the node has none, with the password printed once."""
    async with node.sessions() as db:
        has_users = await db.scalar(select(func.count(User.id)))
        has_projects = await db.scalar(select(func.count(Actor.id)).where(
            Actor.local.is_(True), Actor.type == "Group"))
    if not has_projects:
        async with node.sessions() as db, db.begin():
            await create_local_actor(db, node.urls, node.settings.domain, "demo", "Group",
                                     name="Demo housing project")
        print(f"created project @demo@{node.settings.domain}")
    if not has_users:
        password = secrets.token_urlsafe(12)
        await create_user(node, "admin", password, True, None if has_projects else "demo")
        print(f"created admin user: username admin, password {password}\n"
              "publish with: fedsph post demo --text 'Hello'")
    if node.settings.hub:  # hub mode (FEDSPH_HUB=1): the hub actor exists from the start
        from fedsph.hub.membership import ensure_hub_exists

        hub = await ensure_hub_exists(node.sessions, node.urls, node.settings)
        print(f"hub @{hub.username}@{node.settings.domain}")
    return 0


async def post(node: Node, args) -> int:
    async with node.sessions() as db, db.begin():
        actor = await _local_actor(db, args.slug)
        obj = await outbox.publish_note(db, node.urls, actor, args.text, language=args.lang)
    print(obj.uri)
    return 0


async def _own_object(db: AsyncSession, actor: Actor, uri: str) -> Object:
    obj = await db.scalar(select(Object).where(Object.uri == uri, Object.actor_id == actor.id))
    if obj is None:
        raise CommandError(f"{uri} is not an update by {actor.username}")
    return obj


async def edit(node: Node, args) -> int:
    async with node.sessions() as db, db.begin():
        actor = await _local_actor(db, args.slug)
        await outbox.edit_note(db, node.urls, actor, await _own_object(db, actor, args.object), args.text)
    print(f"edited {args.object}")
    return 0


async def delete(node: Node, args) -> int:
    async with node.sessions() as db, db.begin():
        actor = await _local_actor(db, args.slug)
        await outbox.delete_note(db, node.urls, actor, await _own_object(db, actor, args.object))
    print(f"deleted {args.object}")
    return 0


async def resolve_target(node: Node, target: str) -> Actor:
    """user@host through WebFinger, or an actor URL; fetched (signed) and cached."""
    try:
        actor_id = await resolve_handle(node.sessions, node.remote, target)
        async with node.sessions() as db:
            return await db.get(Actor, actor_id)
    except FetchError as exc:
        raise CommandError(f"cannot find {target}: {exc}") from None


async def follow(node: Node, args) -> int:
    target = await resolve_target(node, args.target)
    async with node.sessions() as db, db.begin():
        actor = await _local_actor(db, args.slug)
        relation = await outbox.follow(db, node.urls, actor, target)
    print(f"{args.slug} follows {target.uri} ({relation.state})")
    return 0


async def unfollow(node: Node, args) -> int:
    target = await resolve_target(node, args.target)
    async with node.sessions() as db, db.begin():
        actor = await _local_actor(db, args.slug)
        done = await outbox.unfollow(db, node.urls, actor, target)
    print(f"{args.slug} no longer follows {target.uri}" if done else
          f"{args.slug} did not follow {target.uri}")
    return 0


async def follow_requests(node: Node, args) -> int:
    async with node.sessions() as db, db.begin():
        actor = await _local_actor(db, args.slug)
        chosen = args.approve or args.reject
        if chosen:
            relation = await db.scalar(select(Follow).where(
                Follow.id == chosen, Follow.followed_id == actor.id, Follow.state == "pending"))
            if relation is None:
                raise CommandError(f"no pending follow request {chosen} for {args.slug}")
            await outbox.answer_follow(db, node.urls, relation, accept=bool(args.approve))
            print(f"{'approved' if args.approve else 'rejected'} request {chosen}")
            return 0
        rows = await db.execute(select(Follow.id, Actor.uri).join(Actor, Actor.id == Follow.follower_id)
                                .where(Follow.followed_id == actor.id, Follow.state == "pending"))
        for request_id, uri in rows:
            print(f"{request_id}\t{uri}")
    return 0


async def invite(node: Node, args) -> int:
    async with node.sessions() as db, db.begin():
        project = await _local_actor(db, args.slug)
        token = await create_invite(db, project, None)
    print(f"{node.urls.base}/invite/{token}\n(works once, for 7 days)")
    return 0


async def queue(node: Node, args) -> int:
    if getattr(args, "prune", False):
        async with node.sessions() as db, db.begin():
            pruned = await prune_finished(db, timedelta(days=node.settings.inbox_retention_days))
        print(f"pruned {pruned.inbox} inbox row(s) and {pruned.deliveries} deliveries")
    async with node.sessions() as db:
        for name, model in (("deliveries", Delivery), ("inbox", InboxItem)):
            counts = dict((await db.execute(select(model.status, func.count(model.id))
                                            .group_by(model.status))).all())
            print(f"{name}: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))
        errors = await db.execute(
            select(Delivery.inbox, Delivery.attempts, Delivery.last_error)
            .where(Delivery.last_error.is_not(None)).order_by(Delivery.id.desc()).limit(5))
        for inbox, attempts, error in errors:
            print(f"  delivery to {inbox} (attempt {attempts}): {error[:200]}")
        errors = await db.execute(
            select(InboxItem.type, InboxItem.actor_uri, InboxItem.last_error)
            .where(InboxItem.status == "failed").order_by(InboxItem.id.desc()).limit(5))
        for kind, actor_uri, error in errors:
            print(f"  inbox {kind} from {actor_uri}: {(error or '')[:200]}")
    return 0


def _one_line(text: str | None, limit: int = 300) -> str:
    """Text from another server, safe for a terminal: no control characters, one line."""
    return "".join(ch if ch.isprintable() else " " for ch in (text or ""))[:limit]


async def reports(node: Node, args) -> int:
    async with node.sessions() as db, db.begin():
        if args.resolve:
            report = await db.get(Report, args.resolve)
            if report is None or report.resolved_at is not None:
                raise CommandError(f"no open report {args.resolve}")
            report.resolved_at = utcnow()
            print(f"resolved report {args.resolve}")
            return 0
        for report, reporter, target in await queries.reports(db, include_resolved=args.all):
            state = "resolved" if report.resolved_at else "open"
            print(f"{report.id}\t{report.created_at:%Y-%m-%d %H:%M}\t{state}\t"
                  f"by {reporter.uri if reporter else '(gone)'}\t"
                  f"about {target.uri if target else '(gone)'}\t{_one_line(report.content)}")
            for uri in report.object_uris or []:
                print(f"\t{_one_line(uri, 2048)}")
    return 0


async def media_prune(node: Node, args) -> int:
    try:
        hours = float(args.older_than)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 100_000:  # also refuses nan and inf
        raise CommandError(f"--older-than takes a number of hours, not {args.older_than!r}")
    pruned = await prune_media(node.sessions, node.settings, timedelta(hours=hours))
    print(f"removed {pruned.count} unused image(s), {pruned.bytes} bytes")
    return 0


COMMANDS = {
    "bootstrap": bootstrap,
    "project create": project_create,
    "project list": project_list,
    "project set": project_set,
    "user create": user_create,
    "post": post,
    "edit": edit,
    "delete": delete,
    "follow": follow,
    "unfollow": unfollow,
    "follow-requests": follow_requests,
    "invite": invite,
    "queue": queue,
    "reports": reports,
    "media prune": media_prune,
}
