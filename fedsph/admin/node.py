"""The node's own commands: `migrate`, `serve`, `worker`, `bootstrap`, `queue`, `reports`,
`backup`, `restore` and `media prune`; and `open_node`, which every command that acts runs in.

The people (`user`, `invite`) are in user_commands.py, the node-wide powers (`admin`, `block`,
`token`) in powers.py; fedsph.cli gathers every feature's parsers and COMMANDS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import secrets
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import configure_mappers

from fedsph.admin import backup, serve_group
from fedsph.admin.user_commands import create_user
from fedsph.app import connect_features, create_app
from fedsph.config import Settings
from fedsph.core.files import private_dir
from fedsph.core.urls import URLs
from fedsph.db import ensure_migrated, make_engine, make_sessionmaker
from fedsph.db import migrate as migrate_database
from fedsph.errors import UserError
from fedsph.federation.actors import create_local_actor, signer_for
from fedsph.federation.instance_actor import get_or_create_instance_actor
from fedsph.federation.queue import prune_finished
from fedsph.federation.remote import Remote, make_client_session
from fedsph.hub.membership import ensure_hub_exists
from fedsph.models import Actor, Delivery, InboxItem, Report, User, utcnow
from fedsph.projects import queries
from fedsph.projects.media_prune import prune_media
from fedsph.web.access_log import access_log_options
from fedsph.web.metrics import prepare_directory as prepare_metrics_directory
from fedsph.worker import Worker


def migrate(settings: Settings) -> None:
    private_dir(settings.data_dir)
    migrate_database(settings.effective_database_url)
    print("database is up to date")


@dataclass
class Node:
    settings: Settings
    urls: URLs
    writers: async_sessionmaker[AsyncSession]
    remote: Remote


@contextlib.asynccontextmanager
async def open_node(settings: Settings) -> AsyncIterator[Node]:
    """Engine, writer sessions and a signing HTTP client, for commands that act."""
    connect_features()
    engine = make_engine(settings)
    try:
        await ensure_migrated(engine)
        writers = make_sessionmaker(engine, writer=True)
        urls = URLs(settings.base_url)
        async with writers() as db, db.begin():
            instance = await get_or_create_instance_actor(db, urls, settings.domain)
        async with make_client_session(settings.allow_private_networks, settings.http_timeout,
                                       ca_bundle=settings.ca_bundle) as http:
            yield Node(settings, urls, writers, Remote(http, signer_for(instance),
                                                        settings.allow_private_networks))
    finally:
        await engine.dispose()


async def run(settings: Settings, handler, args) -> int:
    """Run one command's `handler(node, args)` with the node opened for it."""
    async with open_node(settings) as node:
        return await handler(node, args) or 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _check_migrated(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        await ensure_migrated(engine)
    finally:
        await engine.dispose()


def freeze_start_up_objects() -> None:
    """Move what start-up loaded (modules, the templates' environment, SQLAlchemy's mappings:
    ~140,000 objects) out of the collector's sight: it lives as long as the process, and a full
    collection walking it took several ms of a rendered page's time (issue 12 review,
    profiled). Called before the runner's setup: what that makes (the database pool's
    connections, the worker, the HTTP client) must stay collectable, or cyclic garbage made
    from it later would never be freed."""
    configure_mappers()  # otherwise done by the first query, after the freeze
    gc.collect()
    gc.freeze()


async def _check_port_free(settings: Settings) -> None:
    """A taken port is said before anything starts (the worker, the database pool), so there
    is nothing to stop: stopping a worker that had just begun its first claim left a task
    behind once in a test run (in one process with many other tests; not seen alone)."""
    try:
        probe = await asyncio.get_running_loop().create_server(
            asyncio.Protocol, settings.host, settings.port)
    except OSError as exc:
        raise UserError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
                        " (another program uses that port? set FEDSPH_PORT)") from None
    probe.close()
    await probe.wait_closed()


async def serve(settings: Settings, run_worker: bool, reuse_port: bool = False) -> int:
    """One server process; with reuse_port, one of `serve --processes N` (serve_group.py)."""
    await _check_migrated(settings)
    if reuse_port:  # one of several: say which process wrote each line
        serve_group.tag_log_lines()
    else:
        await _check_port_free(settings)
    if settings.metrics_enabled:  # before prometheus_client is imported (fedsph/web/metrics.py)
        prepare_metrics_directory(settings, fresh=not reuse_port)  # a group's parent did it
    app = create_app(settings, run_worker=run_worker)
    freeze_start_up_objects()
    runner = web.AppRunner(app, **access_log_options(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None).start()
    except OSError as exc:
        await runner.cleanup()
        raise UserError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
                           " (another program uses that port? set FEDSPH_PORT)") from None
    which = f" [pid {os.getpid()}]" if reuse_port else ""
    print(f"fedsph serving {settings.base_url} on http://{settings.host}:{settings.port}"
          f"{'' if run_worker else ' (no worker)'}{which}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await runner.cleanup()
    return 0


async def worker(settings: Settings) -> int:
    async with open_node(settings) as node:
        stop = asyncio.Event()
        task = asyncio.create_task(Worker(settings, node.writers, node.remote).run_forever(stop))
        print("fedsph worker running", flush=True)
        await _wait_for_signal()
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return 0


async def queue(node: Node, args) -> int:
    if getattr(args, "prune", False):
        async with node.writers() as db, db.begin():
            pruned = await prune_finished(db, timedelta(days=node.settings.inbox_retention_days))
        print(f"pruned {pruned.inbox} inbox row(s) and {pruned.deliveries} deliveries")
    async with node.writers() as db:
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
    async with node.writers() as db, db.begin():
        if args.resolve:
            report = await db.get(Report, args.resolve)
            if report is None or report.resolved_at is not None:
                raise UserError(f"no open report {args.resolve}")
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
        raise UserError(f"--older-than takes a number of hours, not {args.older_than!r}")
    pruned = await prune_media(node.writers, node.settings, timedelta(hours=hours))
    print(f"removed {pruned.count} unused image(s), {pruned.bytes} bytes")
    return 0


async def bootstrap(node: Node, args) -> int:
    """First run: a project and an admin if the node has none, with the password printed once."""
    async with node.writers() as db:
        has_users = await db.scalar(select(func.count(User.id)))
        has_projects = await db.scalar(select(func.count(Actor.id)).where(
            Actor.local.is_(True), Actor.type == "Group"))
    if not has_projects:
        async with node.writers() as db, db.begin():
            await create_local_actor(db, node.urls, node.settings.domain, "demo", "Group",
                                     name="Demo housing project")
        print(f"created project @demo@{node.settings.domain}")
    if not has_users:
        password = secrets.token_urlsafe(12)
        await create_user(node, "admin", password, True, None if has_projects else "demo")
        print(f"created admin user: username admin, password {password}\n"
              "publish with: fedsph post demo --text 'Hello'")
    if node.settings.hub:  # hub mode (FEDSPH_HUB=1): the hub actor exists from the start
        hub = await ensure_hub_exists(node.writers, node.urls, node.settings)
        print(f"hub @{hub.username}@{node.settings.domain}")
    return 0


COMMANDS: dict = {
    "queue": queue,
    "reports": reports,
    "media prune": media_prune,
}


# -- commands that do not open the node: they run before it can be opened, or own the event loop


def _migrate(settings: Settings, args) -> int:
    migrate(settings)
    if args.command == "bootstrap":  # first run: the schema, then the project and the admin
        return asyncio.run(run(settings, bootstrap, args))
    return 0


def _serve(settings: Settings, args) -> int:
    if args.command == "worker":
        return asyncio.run(worker(settings))
    if not 1 <= args.processes <= serve_group.MAX_PROCESSES:
        raise UserError(f"--processes takes 1 to {serve_group.MAX_PROCESSES}, not {args.processes}")
    if args.processes > 1:
        asyncio.run(_prepare_group(settings))
        return asyncio.run(serve_group.serve_processes(settings, args.processes,
                                                       run_worker=not args.no_worker))
    return asyncio.run(serve(settings, run_worker=not args.no_worker, reuse_port=args.reuse_port))


async def _prepare_group(settings: Settings) -> None:
    """Before `serve --processes N` starts its children: one clear message if the schema is
    old, and the rows each child would otherwise race to create on a fresh database (the
    instance actor, in hub mode the hub), made once here."""
    async with open_node(settings) as node:
        if settings.hub:
            await ensure_hub_exists(node.writers, node.urls, settings)


def _backup(settings: Settings, args) -> int:
    if args.command == "backup":
        print(backup.backup(settings, Path(args.file)))
        return 0
    print(backup.restore(settings, Path(args.file), force=args.force))
    migrate(settings)  # a backup from an older fedsph is brought up to date
    return 0


WITHOUT_NODE: dict = {"migrate": _migrate, "bootstrap": _migrate, "serve": _serve,
                      "worker": _serve, "backup": _backup, "restore": _backup}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add these subcommands to the `fedsph` parser."""
    sub.add_parser("migrate", help="create or upgrade the database schema")
    serve_cmd = sub.add_parser("serve", help="run the web server (with a worker unless --no-worker)")
    serve_cmd.add_argument("--no-worker", action="store_true", help="do not process queues here")
    serve_cmd.add_argument("--processes", type=int, default=1, metavar="N",
                           help="run N server processes on the one port (SO_REUSEPORT, Linux); the "
                                "worker runs in the first unless --no-worker. Use PostgreSQL for N > 1")
    serve_cmd.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # children
    sub.add_parser("worker", help="run only the queue worker (for a separate process)")
    sub.add_parser("bootstrap", help="first run: migrate, then create a project and an admin")
    queue_cmd = sub.add_parser("queue", help="counts of pending, failed and sent work, and the last errors")
    queue_cmd.add_argument("--prune", action="store_true", help="first delete processed inbox rows and "
                           "finished deliveries older than FEDSPH_INBOX_RETENTION_DAYS")
    reports_cmd = sub.add_parser("reports", help="list reports (Flag) received from other servers")
    reports_cmd.add_argument("--resolve", type=int, metavar="ID", help="mark a report as handled")
    reports_cmd.add_argument("--all", action="store_true", help="include resolved reports")
    backup_cmd = sub.add_parser("backup", help="write the database and photos to one file")
    backup_cmd.add_argument("file", help="the archive to write, e.g. fedsph-2026-11-23.tar.gz")
    restore = sub.add_parser("restore", help="restore a backup into the data directory "
                                             "(stop the node first), then migrate")
    restore.add_argument("file", help="an archive made by `fedsph backup`")
    restore.add_argument("--force", action="store_true", help="replace the existing database")
    media = sub.add_parser("media", help="manage uploaded images").add_subparsers(
        dest="media_command", required=True, metavar="ACTION")
    prune = media.add_parser("prune", help="delete images no update, icon or header uses")
    prune.add_argument("--older-than", default="24", metavar="HOURS",
                       help="only images uploaded more than HOURS ago (default 24)")
