"""Helpers the ops tests share (issue 14, items 5 and 6): running `fedsph doctor` on a node
and reading its lines, a mocked request from a given address for /metrics' access rules."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from fedsph.config import load_settings
from fedsph.web.keys import SETTINGS
from tests.processes import NodeProcess

TOKEN = "metrics-" + "s3cret" * 5


def lines_of(output: str) -> dict[str, str]:
    """{check name: its line} of doctor's output."""
    found = {}
    for line in output.splitlines():
        verdict, _, rest = line.partition(" ")
        if verdict in ("ok", "warning", "problem", "skip"):
            found[rest.strip().split(":")[0]] = f"{verdict} {rest.strip()}"
    return found


async def doctor(node: NodeProcess, *args: str, **env) -> tuple[int, dict[str, str], str]:
    """Run in a thread: the fake servers answer in this event loop meanwhile."""
    saved = node.env
    node.env = {**saved, **env}
    try:
        result = await asyncio.to_thread(node.cli, "doctor", *args, check=False)
    finally:
        node.env = saved
    return result.returncode, lines_of(result.stdout), result.stdout + result.stderr


def start(node: NodeProcess) -> None:
    node.start()
    node.log.chmod(0o600)  # the test's log of the server, kept in the data dir


def mocked_request(peer: str, forwarded: str | None, **settings) -> web.Request:
    app = web.Application()
    app[SETTINGS] = load_settings({}, **settings)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return make_mocked_request("GET", "/metrics", headers=headers, app=app,
                               transport=FakeTransport(peer))


class FakeTransport:
    def __init__(self, peer: str):
        self.peer = peer

    def get_extra_info(self, name: str, default=None):
        return (self.peer, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False
