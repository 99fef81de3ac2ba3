"""Shared fixtures: a migrated fedsph node running in the test's loop, and fake peers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiohttp import web

from fedsph.actors import create_local_actor
from fedsph.app import create_app
from fedsph.config import Settings, load_settings
from fedsph.db import migrate
from fedsph.web.keys import REMOTE, SESSIONS, URLS, WRITER
from fedsph.worker import Worker
from tests.fakepeer import FakePeer, free_port

pytest_plugins = ["tests.pgcluster", "tests.dbfixtures"]


def make_settings(tmp_path, port: int | None = None, **overrides) -> Settings:
    port = port or free_port()
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
    def sessions(self):
        return self.app[WRITER]

    @property
    def readers(self):
        return self.app[SESSIONS]

    @property
    def urls(self):
        return self.app[URLS]

    async def create_actor(self, username: str, actor_type: str = "Group", **kwargs):
        """A local project (Group) or member (Person), committed."""
        async with self.sessions() as db, db.begin():
            return await create_local_actor(db, self.urls, self.settings.domain, username,
                                            actor_type, name=username.title(), **kwargs)

    def worker(self) -> Worker:
        return Worker(self.settings, self.app[WRITER], self.app[REMOTE])

    async def run_worker(self):
        return await self.worker().run_once()


async def start_node(settings: Settings) -> Node:
    await asyncio.to_thread(migrate, settings.effective_database_url)
    app = create_app(settings, run_worker=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    return Node(settings, app, runner)


@pytest.fixture
async def node(tmp_path):
    running = await start_node(make_settings(tmp_path))
    yield running
    await running.runner.cleanup()


@pytest.fixture
async def peer():
    fake = await FakePeer().start()
    yield fake
    await fake.stop()
