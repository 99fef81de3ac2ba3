"""create_app(settings): the aiohttp application with its engine, HTTP client and worker.

All the wiring is here and nowhere else: the middlewares in their order, the state handlers
share, the hooks run at startup and on every response, and every module's routes. A module only
adds its own routes; none adds a middleware or another module's routes as a side effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from fedsph import api
from fedsph.accounts import FailureLimiter
from fedsph.api import statuses as api_statuses
from fedsph.api import streaming as api_streaming
from fedsph.api.errors import api_middleware
from fedsph.config import Settings
from fedsph.core.urls import URLs
from fedsph.db import QuickSQLiteRead, ensure_migrated, is_sqlite, make_engine, make_sessionmaker
from fedsph.events.received import store_event_details
from fedsph.federation.actors import ACTOR_READERS, signer_for
from fedsph.federation.blocks import snapshot_for
from fedsph.federation.ingest import Ingest
from fedsph.federation.instance_actor import get_or_create_instance_actor
from fedsph.federation.keycache import keys_for
from fedsph.federation.remote import Remote, make_client_session
from fedsph.federation.remote_objects import OBJECT_DETAILS
from fedsph.hub import directory_index, directory_query
from fedsph.projects import stream_events
from fedsph.projects.profile_wire import remote_profile_values
from fedsph.web import (
    account_pages,  # issue 14: password form, admin page
    activitypub,
    compose,
    event_pages,
    hub_manage,
    hub_pages,
    interact,
    link_pages,
    mail_pages,
    members,
    pages,
    profile_edit,
    project_manage,
    wellknown,
)
from fedsph.web import context as context_routes
from fedsph.web import feeds as feed_routes
from fedsph.web import headers as security_headers
from fedsph.web import health as health_routes
from fedsph.web import media as media_routes
from fedsph.web import metrics as metrics_routes
from fedsph.web.auth_middleware import LIMITER, authentication
from fedsph.web.documents import make_document_cache
from fedsph.web.keys import (
    DOCUMENTS,
    ENGINE,
    INGEST,
    QUICK_GENERATION,
    READERS,
    REMOTE,
    SETTINGS,
    TEMPLATES,
    URLS,
    WORKER,
    WRITERS,
)
from fedsph.web.middleware import errors, servers_apart
from fedsph.web.render import make_templates
from fedsph.worker import Worker

log = logging.getLogger("fedsph.app")

# Outermost first: a request passes them top to bottom, its answer bottom to top.
MIDDLEWARES = (
    # language_middleware first, so even an error page is in the visitor's language; a POST
    # to an inbox skips straight to its handler through `errors` (fedsph/web/middleware.py)
    servers_apart,
    errors,  # any exception raised below becomes a problem page or JSON, never a bare 500
    authentication,  # request[USER] from the session cookie; the CSRF check of every POST
    api_middleware,  # inside errors: API failures get Mastodon's JSON (and CORS) before it
)


def connect_features() -> None:
    """Fill the two hooks through which federation hands a feature what only it can read
    (federation may not import features): the housing profile in another server's actor
    document, and an Event's details. Every process calls this before it meets the network:
    create_app, and open_node for the CLI and the standalone worker. Calling it again is harmless."""
    if remote_profile_values not in ACTOR_READERS:
        ACTOR_READERS.append(remote_profile_values)
    OBJECT_DETAILS["Event"] = store_event_details
    directory_index.connect()  # the hub directory's index follows every flush of actors
    stream_events.connect()  # the streaming API's events, written with what they report


def create_app(settings: Settings, run_worker: bool = True) -> web.Application:
    """Build the application; nothing touches the network or the database until it starts."""
    connect_features()
    # With metrics on (FEDSPH_METRICS_*), requests are counted outside everything else.
    counting = (metrics_routes.count_requests,) if settings.metrics_enabled else ()
    app = web.Application(middlewares=counting + MIDDLEWARES,
                          client_max_size=settings.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[URLS] = URLs(settings.base_url)
    app[TEMPLATES] = make_templates(settings.templates_dir)
    app[DOCUMENTS] = make_document_cache(settings.document_cache_seconds)
    app[LIMITER] = FailureLimiter()  # failed logins per address and name (members.login)
    api_statuses.setup(app)  # the API's Idempotency-Key cache, so a retried post is not doubled
    security_headers.setup(app)  # CSP, nosniff, frame and referrer rules on every response
    api_streaming.setup(app)  # the streaming API's hub, and its streams closed at shutdown
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_http_client)
    app.cleanup_ctx.append(_ingest)
    if run_worker:
        app.cleanup_ctx.append(_worker)
    # After the database is open (cleanup_ctx runs first): in hub mode, the hub is made here.
    app.on_startup.append(hub_manage.ensure_hub_on_startup)
    app.on_startup.append(_directory_index)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    """Every module's routes. Their paths do not overlap; the order is kept as it has been."""
    wellknown.add_routes(app)  # WebFinger, host-meta, NodeInfo
    context_routes.add_routes(app)  # /ns, the fedsph JSON-LD context
    activitypub.add_routes(app)  # actors, inboxes, outboxes, collections, objects, activities
    pages.add_routes(app)  # the home page, tags, other servers' actors and updates, remote follow
    media_routes.add_routes(app)  # uploaded images
    feed_routes.add_routes(app)  # a project's Atom feed
    hub_pages.add_routes(app)  # the hub's directory, map, counts, feed and exports
    members.add_routes(app)  # log in and out, accept an invitation
    account_pages.add_routes(app)  # change one's password; the admins' users and projects page
    project_manage.add_routes(app)  # a project's manage page
    compose.add_routes(app)  # write, edit, delete and pin updates
    interact.add_routes(app)  # /authorize_interaction: a remote follow arriving here
    profile_edit.add_routes(app)  # the project profile form
    hub_manage.add_routes(app)  # /hub/manage
    link_pages.add_routes(app)  # solidarity links: members' forms and the hub's graph
    event_pages.add_routes(app)  # events: lists, pages, the members' form, iCal, remote joins
    api.add_routes(app)  # the Mastodon client API and OAuth
    mail_pages.add_routes(app)  # forgot password, reset, confirm an address, unsubscribe
    # operating (issue 14): the health check always, /metrics only when configured
    health_routes.add_routes(app)
    if app[SETTINGS].metrics_enabled:
        metrics_routes.setup(app)


async def _database(app: web.Application):
    engine = make_engine(app[SETTINGS])
    await ensure_migrated(engine)
    app[ENGINE] = engine
    app[READERS] = make_sessionmaker(engine)
    app[WRITERS] = make_sessionmaker(engine, writer=True)
    url = app[SETTINGS].effective_database_url
    app[QUICK_GENERATION] = (QuickSQLiteRead(url, directory_query.GENERATION)
                             if is_sqlite(url) else None)
    yield
    if app[QUICK_GENERATION] is not None:
        app[QUICK_GENERATION].close()
    await engine.dispose()


async def _directory_index(app: web.Application) -> None:
    """The hub directory's index, filled once after migration 0011 created it empty on a node
    that already had members (the migration cannot run the application's code)."""
    async with app[WRITERS]() as db, db.begin():
        await (await db.connection()).run_sync(directory_index.rebuild_if_needed)


async def _http_client(app: web.Application):
    settings = app[SETTINGS]
    async with app[WRITERS]() as db, db.begin():
        instance = await get_or_create_instance_actor(db, app[URLS], settings.domain)
    session = make_client_session(settings.allow_private_networks, settings.http_timeout,
                                  ca_bundle=settings.ca_bundle)
    app[REMOTE] = Remote(session, signer_for(instance), settings.allow_private_networks)
    yield
    await session.close()


async def _ingest(app: web.Application):
    """The inbox's group commit and its in-memory keys and blocks (fedsph/federation/ingest.py,
    keycache.py, blocks.py), with their bounds from the settings. Stopped before the database
    closes, so what it holds is written first."""
    settings = app[SETTINGS]
    keys_for(app[ENGINE]).configure(settings.key_cache_seconds)
    snapshot = snapshot_for(app[ENGINE])
    snapshot.max_age = settings.block_refresh_seconds
    snapshot.invalidate()
    ingest = Ingest(app[WRITERS], settings.ingest_wait_ms, settings.ingest_batch)
    ingest.start()
    app[INGEST] = ingest
    yield
    await ingest.stop()


async def _worker(app: web.Application):
    worker = Worker(app[SETTINGS], app[WRITERS], app[REMOTE])
    app[WORKER] = worker
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop), name="fedsph-worker")
    yield
    stop.set()
    worker.wakeup.set()
    with contextlib.suppress(asyncio.CancelledError):
        task.cancel()
        await task
