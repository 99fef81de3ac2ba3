"""create_app(settings): the aiohttp application with its engine, HTTP client and worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from fedsph import api
from fedsph.config import Settings
from fedsph.core.urls import URLs
from fedsph.db import ensure_migrated, make_engine, make_sessionmaker
from fedsph.federation.actors import get_or_create_instance_actor, signer_for
from fedsph.federation.remote import Remote, make_client_session
from fedsph.i18n import language_middleware
from fedsph.web import (
    activitypub,
    event_pages,
    hub_manage,
    hub_pages,
    link_pages,
    members,
    pages,
    wellknown,
)
from fedsph.web import context as context_routes
from fedsph.web import feeds as feed_routes
from fedsph.web import headers as security_headers
from fedsph.web import media as media_routes
from fedsph.web.documents import make_document_cache
from fedsph.web.keys import (
    DOCUMENTS,
    ENGINE,
    REMOTE,
    SESSIONS,
    SETTINGS,
    TEMPLATES,
    URLS,
    WORKER,
    WRITER,
)
from fedsph.web.middleware import errors
from fedsph.web.render import make_templates
from fedsph.worker import Worker

log = logging.getLogger("fedsph.app")


def create_app(settings: Settings, run_worker: bool = True) -> web.Application:
    """Build the application; nothing touches the network or the database until it starts."""
    app = web.Application(middlewares=[language_middleware, errors],
                          client_max_size=settings.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[URLS] = URLs(settings.base_url)
    app[TEMPLATES] = make_templates(settings.templates_dir)
    app[DOCUMENTS] = make_document_cache()
    security_headers.setup(app)  # CSP, nosniff, frame and referrer rules on every response
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_http_client)
    if run_worker:
        app.cleanup_ctx.append(_worker)
    wellknown.add_routes(app)
    context_routes.add_routes(app)
    activitypub.add_routes(app)
    pages.add_routes(app)
    media_routes.add_routes(app)
    feed_routes.add_routes(app)
    hub_pages.add_routes(app)  # the hub's directory, map, counts, feed and exports
    members.setup(app)
    hub_manage.add_routes(app)  # /hub/manage; in hub mode, the hub is made at startup
    link_pages.add_routes(app)  # solidarity links: members' forms and the hub's graph
    event_pages.add_routes(app)  # events: lists, pages, the members' form, iCal
    api.add_routes(app)  # the Mastodon client API (after members: its middleware runs inside)
    return app


async def _database(app: web.Application):
    engine = make_engine(app[SETTINGS])
    await ensure_migrated(engine)
    app[ENGINE] = engine
    app[SESSIONS] = make_sessionmaker(engine)
    app[WRITER] = make_sessionmaker(engine, writer=True)
    yield
    await engine.dispose()


async def _http_client(app: web.Application):
    settings = app[SETTINGS]
    async with app[WRITER]() as db, db.begin():
        instance = await get_or_create_instance_actor(db, app[URLS], settings.domain)
    session = make_client_session(settings.allow_private_networks, settings.http_timeout)
    app[REMOTE] = Remote(session, signer_for(instance), settings.allow_private_networks)
    yield
    await session.close()


async def _worker(app: web.Application):
    worker = Worker(app[SETTINGS], app[WRITER], app[REMOTE])
    app[WORKER] = worker
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop), name="fedsph-worker")
    yield
    stop.set()
    worker.wakeup.set()
    with contextlib.suppress(asyncio.CancelledError):
        task.cancel()
        await task
