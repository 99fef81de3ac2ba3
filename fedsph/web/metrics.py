"""GET /metrics for Prometheus, and the middleware counting requests by route class.

Off unless FEDSPH_METRICS_ALLOW or FEDSPH_METRICS_TOKEN is set; then served only to a client
address in FEDSPH_METRICS_ALLOW (found as fedsph/web/client_address.py finds it: behind a
trusted proxy, from X-Forwarded-For) or to a request bearing the token. Anyone else gets the
same 404 as a path that does not exist, so a scan learns nothing.

Where the numbers come from (ARCHITECTURE.md, "Metrics"):
- Queue depths, inbox and delivery results by outcome: read from the database at scrape time
  (fedsph/federation/queue_health.py), since the rows are written by every server process and
  the worker, wherever it runs.
- Requests and their latency: counted in each server process, by a route class from a small
  fixed set (never the path: each distinct label value is a series kept forever, and anyone
  can send a million paths). With `serve --processes N` a scrape reaches one process at random,
  so `fedsph serve` points prometheus_client's multiprocess mode at data_dir/prometheus-multiproc
  (PROMETHEUS_MULTIPROC_DIR: one small memory-mapped file per process) and any process sums
  them all.

prometheus_client is imported only when metrics are on (inside the functions below): a node
without them does not pay its memory (issue 12 counts every MB of an idle server).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import time
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from fedsph.config import Settings, mail_enabled, proxy_networks
from fedsph.core.files import private_dir
from fedsph.core.urls import INBOX_ROUTES
from fedsph.errors import UserError
from fedsph.federation.queue_health import KNOWN_STATUSES, queue_health
from fedsph.models import utcnow
from fedsph.web.client_address import client_address
from fedsph.web.health import PATH as HEALTH_PATH
from fedsph.web.keys import READERS, SETTINGS

PATH = "/metrics"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Decided from the route's canonical path (a fixed set of strings), or "unmatched".
PREFIX_CLASSES = (("/api/v1/streaming", "streaming"), ("/api/", "api"), ("/oauth/", "api"),
                  ("/.well-known/", "wellknown"), ("/nodeinfo/", "wellknown"),
                  ("/media/", "media"), ("/avatars/", "media"))
EXACT_CLASSES = {HEALTH_PATH: "health", PATH: "metrics", **{p: "inbox" for p in INBOX_ROUTES}}
AP_TYPES = ("application/activity+json", "application/ld+json")
# A stream stays open for hours: its "latency" would only fill the top bucket. Counted, not timed.
UNTIMED = frozenset({"streaming"})
METRICS = web.AppKey("metrics", object)
# The files prometheus_client's multiprocess mode writes: {type}_{pid}.db, or
# {type}_{mode}_{pid}.db for gauges. Nothing else in the directory is ever deleted.
PROCESS_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db$")
LOOPBACK_WARNING = (
    "FEDSPH_METRICS_ALLOW names a loopback address and FEDSPH_TRUSTED_PROXIES is empty: behind "
    "a reverse proxy on this machine every visitor comes from the loopback address and may read "
    "/metrics. Use FEDSPH_METRICS_TOKEN, or list the proxy in FEDSPH_TRUSTED_PROXIES "
    "(README, \"Operate\")")
log = logging.getLogger("fedsph.metrics")


def metrics_directory(settings: Settings) -> Path:
    # A name of fedsph's own, not a generic "metrics" the operator might keep files in.
    return settings.data_dir / "prometheus-multiproc"


# The lock file's descriptors this process holds, by directory: kept open (and so the flock
# held) for the life of the single server or of the group's parent.
_HELD: dict[Path, int] = {}


def _take_lock(directory: Path) -> bool:
    """Whether this process now owns the directory: an exclusive flock on its .lock file, held
    until the process ends (the kernel drops it then, however the process ends). False while
    another node's server or group parent holds it."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _HELD[directory] = fd
    return True


def prepare_directory(settings: Settings, fresh: bool) -> None:
    """Before prometheus_client is imported in a server process: name the directory where the
    processes of this node share their request counts. `fresh` (the single server, or the
    parent of a group): take the directory's lock and, when we get it, delete every process's
    file, so a previous run's counts are not added. A node mistakenly started twice does not
    get the lock and deletes nothing: the running one's files stay. (Pids in the names are not
    asked about: a pid reused since would keep a stale file, an absurd one would crash.)"""
    directory = metrics_directory(settings)
    if directory.is_symlink():
        raise UserError(f"{directory} is a symbolic link: fedsph deletes files in it, so it must "
                        "be a plain directory (remove the link)")
    private_dir(directory)
    if fresh:
        if directory in _HELD:  # ours already (a second start in this process): files are live
            log.info("%s: this process holds its lock already", directory)
        elif _take_lock(directory):
            for path in directory.iterdir():
                if PROCESS_FILE.match(path.name) and not path.is_symlink() and path.is_file():
                    path.unlink(missing_ok=True)
        else:
            # Not taken later either, even after the other one stops (ARCHITECTURE.md)
            log.warning("%s is in use by another fedsph process of this node (a server "
                        "started twice?): its request counts are kept and added to ours",
                        directory)
        if loopback_without_proxies(settings):
            log.warning(LOOPBACK_WARNING)
    os.environ[MULTIPROCESS_ENV] = str(directory.resolve())


def loopback_without_proxies(settings: Settings) -> bool:
    """A node without a proxy may allow 127.0.0.1 for a local Prometheus; behind a proxy on the
    same machine that is everyone. Said, not refused: fedsph cannot tell the two apart."""
    return not settings.trusted_proxies.strip() and any(
        network.is_loopback or _normalised(network.network_address).is_loopback
        for network in proxy_networks(settings.metrics_allow))


def _normalised(address):
    """::ffff:127.0.0.1 is 127.0.0.1 (a dual-stack socket names IPv4 clients so)."""
    return getattr(address, "ipv4_mapped", None) or address


@functools.lru_cache(maxsize=512)  # keyed by the routes' canonical paths: a fixed set
def _class_of_route(canonical: str) -> str | None:
    """The class of a route, or None for one that answers people and servers alike."""
    known = EXACT_CLASSES.get(canonical)
    if known:
        return known
    for prefix, name in PREFIX_CLASSES:
        if canonical.startswith(prefix):
            return name
    return None


def route_class(request: web.Request, response: web.StreamResponse | None) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    name = _class_of_route(resource.canonical)
    if name is not None:
        return name
    # Actors, objects and collections answer by content negotiation. The header's text, not
    # response.content_type, which parses it again (a third of recording a request).
    content_type = response.headers.get("Content-Type", "") if response is not None else ""
    return "activitypub" if content_type.startswith(AP_TYPES) else "pages"


class RequestMetrics:
    """The two request metrics, made once per process (request_metrics): prometheus_client
    registers each name once."""

    def __init__(self):
        from prometheus_client import Counter, Histogram  # only with metrics on (docstring)

        self.requests = Counter("fedsph_http_requests", "HTTP requests answered, by route "
                                "class and status class", ["route_class", "status"])
        self.seconds = Histogram("fedsph_http_request_duration_seconds", "Time to answer, "
                                 "by route class", ["route_class"], buckets=BUCKETS)

        # The labelled children, kept: prometheus_client's labels() takes a lock and builds a
        # key on every call, a third of the time of recording a request.
        self._children: dict[tuple[str, int], tuple] = {}

    def record(self, request: web.Request, response, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        key = (route_class(request, response), status // 100)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(key[0], f"{key[1]}xx"),
                                              self.seconds.labels(key[0]))
        children[0].inc()
        if key[0] not in UNTIMED:
            children[1].observe(elapsed)


@web.middleware
async def count_requests(request: web.Request, handler):
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and the like, raised through the chain
        request.app[METRICS].record(request, None, exc.status, started)
        raise
    request.app[METRICS].record(request, response, response.status, started)
    return response


def may_read(request: web.Request) -> bool:
    settings = request.app[SETTINGS]
    token = settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Digests of both: compare_digest then takes the same time whatever the length sent.
        if scheme.lower() == "bearer" and hmac.compare_digest(
                hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest(),
                hashlib.sha256(token.encode()).digest()):
            return True
    allowed = proxy_networks(settings.metrics_allow)
    if allowed:
        try:
            address = _normalised(ipaddress.ip_address(client_address(request)))
        except ValueError:  # "unknown": no address, no metrics
            return False
        return any(address in network for network in allowed)
    return False


async def metrics_view(request: web.Request) -> web.Response:
    if request.method not in ("GET", "HEAD") or not may_read(request):
        raise web.HTTPNotFound()  # the answer to any unknown path (module docstring)
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    now = utcnow()
    async with request.app[READERS]() as db:
        health = await queue_health(db, now)
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:  # create_app outside `fedsph serve` (tests): this process's own counts
        from prometheus_client import REGISTRY as registry
    body = generate_latest(registry) + _queue_text(health, now,
                                                   mail_enabled(request.app[SETTINGS]))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                            "Cache-Control": "no-store"})


def _ages(moment, now) -> float:
    return max((now - moment) / timedelta(seconds=1), 0.0) if moment else 0.0


def _queue_text(health, now, mail: bool) -> bytes:
    """The database's numbers in the text format (gauges: rows are pruned after
    FEDSPH_INBOX_RETENTION_DAYS, so they are counts of what is kept, not running totals).
    The mail queue's lag only with mail on: without SMTP mails wait by design (an alert on it
    would fire for nothing), as `fedsph doctor` has its mail line only then."""
    lines: list[str] = []

    def gauge(name: str, text: str, samples: list[tuple[str, float]]) -> None:
        lines.extend((f"# HELP {name} {text}", f"# TYPE {name} gauge"))
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    for name, counts in health.by_status.items():  # inbox_items, deliveries (queue_health.py)
        gauge(f"fedsph_{name}", f"Rows of the {name} queue kept, by status",
              [(f'{{status="{status}"}}', n) for status, n in sorted(
                  {**dict.fromkeys(KNOWN_STATUSES.get(name, ()), 0), **counts}.items())])
    gauge("fedsph_deliveries_retrying", "Pending deliveries whose last attempt failed",
          [("", health.deliveries_retrying)])
    gauge("fedsph_inbox_most_overdue_seconds", "How long the most overdue received activity "
          "has waited past its time", [("", _ages(health.oldest_inbox_due, now))])
    gauge("fedsph_delivery_most_overdue_seconds", "How long the most overdue delivery has "
          "waited past its time", [("", _ages(health.oldest_delivery_due, now))])
    if mail:
        gauge("fedsph_mail_most_overdue_seconds", "How long the most overdue pending mail has "
              "waited past its time", [("", _ages(health.oldest_mail_due, now))])
    gauge("fedsph_hosts_failing", "Remote hosts whose last deliveries failed",
          [("", health.hosts_failing)])
    gauge("fedsph_hosts_paused", "Failing hosts not tried until their pause ends",
          [("", health.hosts_paused)])
    return ("\n".join(lines) + "\n").encode()


@functools.cache
def request_metrics() -> RequestMetrics:
    return RequestMetrics()


def setup(app: web.Application) -> None:
    """With metrics on: the request counts (the caller puts count_requests first among the
    middlewares) and the /metrics route."""
    app[METRICS] = request_metrics()
    # Every method, so that none answers 405 and tells a stranger the path exists.
    app.router.add_route("*", PATH, metrics_view)
