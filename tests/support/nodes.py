"""An in-process fedsph node for tests, and driving its worker and its CLI commands."""

from __future__ import annotations

import asyncio
import dataclasses
import types
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import event

from fedsph.app import create_app
from fedsph.config import Settings, load_settings
from fedsph.db import migrate
from fedsph.federation.actors import create_local_actor
from fedsph.web.keys import READERS, REMOTE, URLS, WRITERS
from fedsph.web.mail_pages import FORGOT_LOOKUPS
from fedsph.worker import Worker
from tests.fakepeer import free_port
from tests.support import testdb


def make_settings(tmp_path, port: int | None = None, **overrides) -> Settings:
    port = port or free_port()
    overrides.setdefault("database_url", testdb.database_url_for(tmp_path))
    return load_settings(environ={}, base_url=f"http://127.0.0.1:{port}", port=port,
                         data_dir=tmp_path, allow_private_networks=True, retry_base_seconds=1,
                         **overrides)


@dataclass
class Node:
    """A running fedsph node without a background worker: tests drive `run_once()` themselves."""

    settings: Settings
    app: web.Application
    runner: web.AppRunner

    @property
    def base(self) -> str:
        return self.settings.base_url

    @property
    def writers(self):
        return self.app[WRITERS]

    @property
    def readers(self):
        return self.app[READERS]

    @property
    def urls(self):
        return self.app[URLS]

    async def create_actor(self, username: str, actor_type: str = "Group", **kwargs):
        """A local project (Group) or member (Person), committed."""
        async with self.writers() as db, db.begin():
            return await create_local_actor(db, self.urls, self.settings.domain, username,
                                            actor_type, name=username.title(), **kwargs)

    def worker(self) -> Worker:
        return Worker(self.settings, self.app[WRITERS], self.app[REMOTE])

    async def run_worker(self):
        # "Forgot password" looks the account up after it has answered (so its timing tells
        # nothing): a test's worker run must first let those lookups queue their mails.
        await asyncio.wait_for(self.app[FORGOT_LOOKUPS].settled(), 30)  # a hang fails
        return await self.worker().run_once()


# A failed try is due again after about a second in tests, so that retries are quick to watch;
# a test that checks what one failed try left must wait longer, or a slow machine retries it
# within the same worker run.
PATIENT_RETRY_SECONDS = 60


def wait_long_before_retries(node: Node) -> Node:
    """Workers and mail senders built from node.settings after this call wait a minute before
    a retry (tests force it due); the running app keeps its own settings."""
    node.settings = dataclasses.replace(node.settings, retry_base_seconds=PATIENT_RETRY_SECONDS)
    return node


async def start_node(settings: Settings) -> Node:
    await asyncio.to_thread(migrate, settings.effective_database_url)
    app = create_app(settings, run_worker=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    return Node(settings, app, runner)


# -- the command line, run in this process --------------------------------------------------

CLEARED_ENV = ("FEDSPH_DATABASE_URL", "FEDSPH_BASE_URL", "FEDSPH_PORT", "FEDSPH_CONFIG")


def use_data_dir(monkeypatch, data_dir) -> None:
    """Point `fedsph …` run in this process at data_dir, with no other setting from outside."""
    monkeypatch.setenv("FEDSPH_DATA_DIR", str(data_dir))
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in testdb.node_env(data_dir).items():
        monkeypatch.setenv(name, value)


def cli_node(node):
    """What the CLI commands take: settings, urls, writers, remote."""
    return types.SimpleNamespace(settings=node.settings, urls=node.urls, writers=node.writers,
                                 remote=node.app[REMOTE])


async def settle(*nodes, rounds: int = 20, must_settle: bool = True) -> None:
    """Run every node's worker until none has anything left to do."""
    for _ in range(rounds):
        busy = False
        for node in nodes:
            stats = await node.run_worker()
            busy = busy or bool(stats.processed or stats.sent)
        if not busy:
            return
    if must_settle:
        raise AssertionError("the workers never settled")


async def settle_all(*nodes) -> None:
    """`settle` as the links and event-joining tests had it: six rounds, work left is no error."""
    await settle(*nodes, rounds=6, must_settle=False)


async def flush(node) -> None:
    """Three worker rounds, whatever is left after them."""
    for _ in range(3):
        await node.run_worker()


@contextmanager
def statements(node):
    """Every SQL statement the node's readers run inside the block."""
    engine = node.readers.kw["bind"].sync_engine
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
