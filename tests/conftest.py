"""Shared fixtures: a migrated fedsph node running in the test's loop, and fake peers."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import pytest
from aiohttp import web

from fedsph.app import create_app
from fedsph.config import Settings, load_settings
from fedsph.db import migrate
from fedsph.federation.actors import create_local_actor
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


# -- the command line, run in this process ---------------------------------------------------------

CLEARED_ENV = ("FEDSPH_DATABASE_URL", "FEDSPH_BASE_URL", "FEDSPH_PORT", "FEDSPH_CONFIG")


def use_data_dir(monkeypatch, data_dir) -> None:
    """Point `fedsph …` run in this process at data_dir, with no other setting from outside."""
    monkeypatch.setenv("FEDSPH_DATA_DIR", str(data_dir))
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fedsph(tmp_path, monkeypatch, capsys):
    """Run `fedsph …` in this process against a data dir of the test's own; (exit code, output)."""
    from fedsph.cli import main

    use_data_dir(monkeypatch, tmp_path / "data")

    def run(*args: str, stdin: str = "") -> tuple[int, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


@pytest.fixture
async def two_nodes(tmp_path):
    """Two running nodes, a and b, each with its own data dir."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a = await start_node(make_settings(tmp_path / "a"))
    b = await start_node(make_settings(tmp_path / "b"))
    yield a, b
    for running in (a, b):
        await running.runner.cleanup()
