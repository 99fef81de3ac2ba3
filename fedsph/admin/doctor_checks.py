"""The checks of `fedsph doctor` (fedsph/admin/doctor.py) that need no network: each a Line.

    ok       the check passed
    warning  works for now, but look at it (e.g. a certificate expiring within 14 days)
    problem  something is broken (other servers cannot reach the node, keys are missing...)
    skip     could not be checked (no peer known yet, the database unreachable...)
"""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from fedsph.admin import package_data
from fedsph.config import Settings, mail_enabled, proxy_networks
from fedsph.core.files import sqlite_path
from fedsph.core.urls import URLs
from fedsph.core.vocab import UI_LANGUAGES
from fedsph.db import current_revision, head_revision, make_sessionmaker
from fedsph.federation.queue_health import QueueHealth, last_delivered_origin, queue_health
from fedsph.models import Actor, utcnow
from fedsph.web.metrics import loopback_without_proxies

OK, WARNING, PROBLEM, SKIP = "ok", "warning", "problem", "skip"
EXIT_CODES = {OK: 0, SKIP: 0, WARNING: 1, PROBLEM: 2}
DB_TIMEOUT_SECONDS = 10.0
QUEUE_WARNING = timedelta(minutes=15)  # the worker claims due items within seconds
QUEUE_PROBLEM = timedelta(hours=6)
PERMISSION_SCAN_LIMIT = 200_000  # files under the data dir looked at (media can be many)
SHOWN = 3  # examples named in a line


@dataclass
class Line:
    verdict: str
    name: str
    detail: str
    fix: str = ""


@dataclass
class Target:
    """The local actor whose WebFinger answer and document the public URL should give."""

    username: str
    uri: str
    inbox: str | None
    key_id: str | None


def check_configuration(settings: Settings) -> Line:
    """Settings were read and validated already (a bad one stops every command, exit 2)."""
    engine = "SQLite" if sqlite_path(settings.effective_database_url) else "PostgreSQL"
    detail = f"FEDSPH_BASE_URL {settings.base_url}, {engine}, data in {settings.data_dir}"
    parts = urlsplit(settings.base_url)
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return Line(WARNING, "configuration", detail + ": plain http",
                    "other servers refuse to federate without HTTPS: put a TLS proxy in front "
                    "(README, \"Deploy\") and set FEDSPH_BASE_URL=https://…")
    return Line(OK, "configuration", detail)


def check_metrics_access(settings: Settings) -> Line:
    """Who FEDSPH_METRICS_ALLOW lets read /metrics (doctor_net.check_metrics_hidden asks the
    public URL itself)."""
    if not settings.metrics_enabled:
        return Line(OK, "metrics access", "/metrics is off (no FEDSPH_METRICS_ALLOW or _TOKEN)")
    networks = proxy_networks(settings.metrics_allow)
    everyone = [str(n) for n in networks if n.prefixlen == 0]
    if everyone:
        return Line(WARNING, "metrics access", f"FEDSPH_METRICS_ALLOW has {', '.join(everyone)}: "
                    "anyone on the internet may read /metrics",
                    "name your Prometheus server's address only, or use FEDSPH_METRICS_TOKEN")
    if loopback_without_proxies(settings):
        return Line(WARNING, "metrics access", "FEDSPH_METRICS_ALLOW has a loopback address "
                    "and FEDSPH_TRUSTED_PROXIES is empty: behind a proxy on this machine, every "
                    "visitor comes from loopback", "use FEDSPH_METRICS_TOKEN instead, or list the "
                    "proxy in FEDSPH_TRUSTED_PROXIES (README, \"Operate\")")
    how = " and ".join(filter(None, ["token" if settings.metrics_token else "",
                                     f"{len(networks)} network(s)" if networks else ""]))
    return Line(OK, "metrics access", f"/metrics is served with the {how}")


def check_package_files(settings: Settings) -> Line:
    """Templates, migrations and compiled catalogs, as every other command checks them before
    it starts (fedsph/admin/package_data.py; `doctor` itself runs without them, to say so)."""
    missing = package_data.missing(settings)
    if missing:
        return Line(PROBLEM, "templates and catalogs", "; ".join(missing[:SHOWN]),
                    package_data.how_to_fix(missing))
    return Line(OK, "templates and catalogs", f"found ({', '.join(sorted(UI_LANGUAGES))})")


def check_permissions(settings: Settings) -> Line:
    """The data dir and all in it (the SQLite database holds every private key, media hold
    unpublished photos) readable by the owner alone, and owned by the account running this."""
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        return Line(PROBLEM, "permissions", f"the data directory {data_dir} does not exist",
                    "run `fedsph migrate` as the account that runs the node, or set FEDSPH_DATA_DIR")
    paths = [data_dir]
    config_file = os.environ.get("FEDSPH_CONFIG")  # it holds passwords and the metrics token
    if config_file:
        paths.append(Path(config_file))
    database = sqlite_path(settings.effective_database_url)
    if database is not None:
        paths += [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    for count, (root, dirs, files) in enumerate(os.walk(data_dir)):
        paths += [Path(root) / name for name in dirs + files]
        if count > PERMISSION_SCAN_LIMIT or len(paths) > PERMISSION_SCAN_LIMIT:
            break
    open_paths, foreign, links = [], [], []
    for path in dict.fromkeys(paths):
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):  # its target, once (not walked into: os.walk)
                links.append(str(path))
                info = path.stat()
        except FileNotFoundError:  # -wal/-shm come and go; a dangling link
            continue
        if info.st_mode & 0o077:
            open_paths.append(f"{path} ({stat.filemode(info.st_mode)})")
        if info.st_uid != os.getuid():
            foreign.append(str(path))
    if open_paths:
        return Line(PROBLEM, "permissions", f"{len(open_paths)} path(s) readable by others: "
                    + ", ".join(open_paths[:SHOWN]),
                    f"chmod -R go-rwx {data_dir}" + (f" {database}" if database and
                                                     data_dir.resolve() not in database.parents
                                                     else ""))
    if foreign:
        return Line(WARNING, "permissions", f"{len(foreign)} path(s) owned by another account: "
                    + ", ".join(foreign[:SHOWN]), "run fedsph as the owner of its data, or chown them")
    unwalked = (f"; {len(links)} symbolic link(s) checked at their target only, not what a "
                f"linked directory holds: {', '.join(links[:SHOWN])}" if links else "")
    return Line(OK, "permissions", f"{data_dir} and everything in it is owner-only"
                + (", and FEDSPH_CONFIG" if config_file else "") + unwalked)


async def check_database(settings: Settings, engine: AsyncEngine) -> Line:
    database = sqlite_path(settings.effective_database_url)
    if database is not None and not database.exists():  # connecting would make an empty one
        return Line(PROBLEM, "database", f"no database at {database}",
                    "run `fedsph migrate` (or set FEDSPH_DATA_DIR to where it is)")
    if database is not None and database.parent.stat().st_uid != os.getuid():
        # Opening it would leave -wal/-shm files owned by this account (root, with sudo) that
        # the node's own account then cannot write.
        return Line(WARNING, "database", f"{database.parent} belongs to another account: not "
                    "opened, so as not to leave files the node cannot write",
                    "run doctor as the account that runs the node (sudo -u THAT-ACCOUNT "
                    "fedsph doctor)")
    try:
        async with asyncio.timeout(DB_TIMEOUT_SECONDS):
            current = await current_revision(engine)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:  # the line says which; go on
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return Line(PROBLEM, "database", f"cannot connect: {type(exc).__name__} {first}",
                    "is the database running, and FEDSPH_DATABASE_URL right?")
    head = head_revision()
    if current == head:
        return Line(OK, "database", f"reachable, schema up to date ({head})")
    state = "has no schema" if current is None else f"is at revision {current}"
    return Line(PROBLEM, "database", f"reachable, but it {state} and this fedsph expects {head}",
                "back up, then run `fedsph migrate` (README, \"Upgrade\")")


def _key_loads(pem: str | None) -> bool:
    try:
        load_pem_private_key((pem or "").encode(), password=None)
    except (ValueError, TypeError):
        return False
    return True


def check_keys(actors: list[Actor]) -> Line:
    broken = [actor.uri for actor in actors
              if not _key_loads(actor.private_key_pem) or not _key_loads(actor.proof_key_pem)]
    if broken:
        return Line(PROBLEM, "keys", f"{len(broken)} local actor(s) without a usable key: "
                    + ", ".join(broken[:SHOWN]),
                    "restore the database from a backup: other servers know these actors by "
                    "their keys, and a new key breaks their follows")
    return Line(OK, "keys", f"all {len(actors)} local actor(s) have their keys")


def _age(moment: datetime | None, now: datetime) -> timedelta:
    return now - moment if moment else timedelta(0)


def check_queues(health: QueueHealth, now: datetime, mail: bool = False) -> list[Line]:
    """The inbox and delivery queues, and the mail queue when this node sends mail (`mail`)."""
    lines = []
    fix = ("is the worker running? (`fedsph serve` without --no-worker, or `fedsph worker`; "
           "`fedsph queue` shows the last errors)")
    queues = [("inbox queue", health.oldest_inbox_due,
               health.by_status["inbox_items"].get("pending", 0)),
              ("delivery queue", health.oldest_delivery_due,
               health.by_status["deliveries"].get("pending", 0))]
    if mail:
        queues.append(("mail queue", health.oldest_mail_due,
                       health.by_status["outgoing_mails"].get("pending", 0)))
    for name, moment, waiting in queues:
        age = _age(moment, now)
        minutes = int(age.total_seconds() // 60)
        detail = f"{waiting} waiting" + (f", the oldest due {minutes} min ago" if moment else "")
        verdict = PROBLEM if age > QUEUE_PROBLEM else WARNING if age > QUEUE_WARNING else OK
        lines.append(Line(verdict, name, detail, fix if verdict != OK else ""))
    if health.hosts_failing and not health.hosts_healthy:
        lines.append(Line(WARNING, "remote hosts", f"every host delivered to is failing "
                          f"({health.hosts_failing}: {', '.join(health.failing_hosts)})",
                          "check this machine's outgoing network, DNS and clock"))
    else:
        failing = (f"; {health.hosts_failing} failing, retried later: "
                   f"{', '.join(health.failing_hosts)}" if health.hosts_failing else "")
        lines.append(Line(OK, "remote hosts", f"{health.hosts_healthy} answering{failing}"))
    return lines


async def local_actors(db) -> list[Actor]:
    """The local actors whose keys and documents doctor checks: the one place to leave out
    actors that no longer exist (a deleted account's tombstone keeps its key)."""
    return list(await db.scalars(select(Actor).where(Actor.local.is_(True), Actor.deleted_at.is_(None))
                                 .order_by(Actor.id)))


async def local_checks(settings: Settings, engine: AsyncEngine) -> tuple[list[Line], Target | None,
                                                                          str | None]:
    """The database's lines, the actor the public URL is checked with, and a peer's origin."""
    line = await check_database(settings, engine)
    if line.verdict != OK:
        why = "needs a reachable, migrated database"
        return [line, *(Line(SKIP, name, why) for name in ("keys", "queues"))], None, None
    now = utcnow()
    try:
        # A lock held elsewhere (PostgreSQL) would otherwise hang the doctor here.
        async with asyncio.timeout(DB_TIMEOUT_SECONDS), make_sessionmaker(engine)() as db:
            actors = await local_actors(db)
            lines = [line, check_keys(actors), *check_queues(await queue_health(db, now), now,
                                                                mail_enabled(settings))]
            peer = await last_delivered_origin(db)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return [line, Line(PROBLEM, "keys and queues", f"the database did not answer within "
                           f"{DB_TIMEOUT_SECONDS:g} s: {type(exc).__name__} {first}",
                           "is something holding a lock? (PostgreSQL: pg_stat_activity)")], None, None
    urls = URLs(settings.base_url)
    projects = [a for a in actors if a.type in ("Group", "Person")]
    chosen = projects[0] if projects else next(
        (a for a in actors if a.uri == urls.instance_actor()), None)
    target = None if chosen is None else Target(
        chosen.username if projects else "instance", chosen.uri, chosen.inbox, chosen.key_id)
    return lines, target, peer
