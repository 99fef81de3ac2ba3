"""GET /healthz: "ok" when this process can serve and reach its database, 503 otherwise.

For a load balancer, systemd or Docker probing every few seconds, so it renders nothing and
makes one round trip to the database: a process whose event loop answers but whose database
is gone (PostgreSQL down, the SQLite file unreadable) cannot do anything useful, and only a
query tells. It reads `alembic_version`, a one-row table, rather than `SELECT 1`, which SQLite
answers without opening the file. The answer names no host, path or error text: the details
go to the log, the probe gets a short reason. Successful probes are left out of the access log
(fedsph/web/access_log.py).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from fedsph.web.keys import ENGINE

PATH = "/healthz"
TIMEOUT_SECONDS = 3.0  # a probe's own timeout is often 5 s: answer 503 before it gives up
HEADERS = {"Cache-Control": "no-store"}

log = logging.getLogger("fedsph.health")


async def healthz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            async with request.app[ENGINE].connect() as connection:
                await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("health check: the database did not answer: %s", type(exc).__name__)
        return web.Response(status=503, text="database unreachable\n", headers=HEADERS)
    return web.Response(text="ok\n", headers=HEADERS)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, healthz, allow_head=True)
