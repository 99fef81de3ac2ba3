"""Several real `fedsph serve` processes: `--processes 2` on one port, and two servers on one
PostgreSQL database, where an edit made through one shows on the other within
FEDSPH_DOCUMENT_CACHE_SECONDS (ARCHITECTURE.md, "Caches and several processes")."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.admin.node import open_node
from fedsph.config import load_settings
from fedsph.models import Hub
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support import testdb
from tests.support.members import api, member_token

pytestmark = pytest.mark.e2e

PID_RE = re.compile(r"fedsph serving .*\[pid (\d+)\]")  # a child's line once it listens
ACCESS_RE = re.compile(r"fedsph\.access \[pid (\d+)\]")  # a child's access log line


def _children(parent: int) -> set[int]:
    found = subprocess.run(["ps", "--ppid", str(parent), "-o", "pid="], capture_output=True,
                           text=True, check=False).stdout.split()
    return {int(pid) for pid in found}


def _start_group(node: NodeProcess, processes: int, log) -> subprocess.Popen:
    """`fedsph serve --processes N`, its output (the children's too) in `log`."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "fedsph", "serve", "--processes",
                                 str(processes)], env=node.env, stdout=out,
                                stderr=subprocess.STDOUT)


@contextmanager
def _running_group(tmp_path, processes: int, **env):
    """A migrated node served by `fedsph serve --processes N`, once all N children listen:
    (node, the parent process, its log file); the parent is stopped afterwards if still running."""
    node = NodeProcess(tmp_path / "n", **env)
    node.cli("migrate")
    log = tmp_path / "group.log"
    group = _start_group(node, processes, log)
    try:
        wait_for(lambda: len(set(PID_RE.findall(log.read_text()))) == processes, timeout=120,
                 what=f"{processes} children to listen")
        yield node, group, log
    finally:
        stop_process(group)


def _fresh_connection_get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # urllib: a new connection each time
        return response.status


def test_two_processes_answer_on_one_port_and_stop_on_sigterm(tmp_path):
    with _running_group(tmp_path, 2) as (node, group, log):
        children = _children(group.pid)
        assert len(children) == 2
        if not testdb.on_postgresql():  # the warning: several processes want PostgreSQL
            assert "SQLite" in log.read_text()
        # The kernel spreads connections by their source port: 60 fresh connections reach both.
        assert all(_fresh_connection_get(node.base + "/.well-known/nodeinfo") == 200
                   for _ in range(60))
        wait_for(lambda: {int(p) for p in ACCESS_RE.findall(log.read_text())} == children,
                 timeout=10, what="access log lines from both children")
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=30) == 0
        assert not any(_alive(pid) for pid in children)


def test_a_dead_child_stops_the_group_with_an_error(tmp_path):
    with _running_group(tmp_path, 2) as (_node, group, log):
        children = _children(group.pid)
        victim = min(children)
        subprocess.run(["kill", "-KILL", str(victim)], check=True)
        assert group.wait(timeout=30) == 1  # not restarted silently: the group goes down
        assert f"server process {victim} exited" in log.read_text()
        assert not any(_alive(pid) for pid in children)


def test_children_do_not_outlive_a_killed_parent(tmp_path):
    with _running_group(tmp_path, 2) as (node, group, _log):
        children = _children(group.pid)
        group.kill()
        group.wait(timeout=10)
        wait_for(lambda: not any(_alive(pid) for pid in children), timeout=20,
                 what="the children to stop after their parent was killed")
        assert node.get("/.well-known/nodeinfo")[0] == 0  # nobody answers on the port


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" not in status.read()
    except FileNotFoundError:
        return False


@pytest.mark.postgres
async def test_a_fresh_postgresql_hub_starts_with_several_processes(tmp_path, pg_database_url):
    """The rows every child would race to create (instance actor, hub) are made once, first."""
    with _running_group(tmp_path, 3, FEDSPH_DATABASE_URL=pg_database_url,
                        FEDSPH_HUB="1") as (_node, group, log):
        assert "SQLite" not in log.read_text()
        engine = create_async_engine(pg_database_url)
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(select(func.count()).select_from(Hub)) == 1
        finally:
            await engine.dispose()
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=30) == 0


@pytest.mark.postgres
async def test_an_edit_through_one_process_shows_on_the_other(tmp_path, pg_database_url):
    bound = 2  # FEDSPH_DOCUMENT_CACHE_SECONDS for this test
    first = NodeProcess(tmp_path / "a", FEDSPH_DATABASE_URL=pg_database_url,
                        FEDSPH_DOCUMENT_CACHE_SECONDS=str(bound))
    second = NodeProcess(tmp_path / "b", FEDSPH_DATABASE_URL=pg_database_url,
                         FEDSPH_DOCUMENT_CACHE_SECONDS=str(bound), FEDSPH_BASE_URL=first.base)
    first.cli("migrate")
    first.cli("project", "create", "coop", "--name", "Coop")
    settings = load_settings(environ={}, base_url=first.base, data_dir=tmp_path / "a",
                             database_url=pg_database_url)
    async with open_node(settings) as node:
        token, _person = await member_token(node, "ana", "coop")
    first.start()
    second.start()
    try:
        for server in (first, second):  # both have the old document in their caches
            status, document = server.get("/actors/ana")
            assert status == 200 and "Ana of the Coop" not in document
        status, _ = await api(first, token, "PATCH", "/api/v1/accounts/update_credentials",
                              data={"display_name": "Ana of the Coop"})
        assert status == 200
        # The process that made the edit shows it at once; the other within the bound.
        assert "Ana of the Coop" in first.get("/actors/ana")[1]
        assert "Ana of the Coop" in second.html("/actors/ana")  # pages are never cached
        wait_for(lambda: "Ana of the Coop" in second.get("/actors/ana")[1], timeout=bound + 15,
                 interval=0.1, what="the other process's actor document")
    finally:
        first.stop()
        second.stop()
