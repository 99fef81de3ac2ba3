"""Benchmark: remote projects Join a hub (auto-approve) whose peer answers every fetch slowly.

A real `fedsph worker` process approves N Joins; the projects live on one slow peer process
(bench/slowpeer.py) that answers every GET (actor documents, outboxes for the backfill) after
200 ms. The Joins are put straight into the hub's inbox queue, as the inbox stores them
(signed by their actor), so what is measured is the worker alone, not the ingest. The figure
is the time until every project is approved, divided by the sequential floor: joins x one
GET (200 ms), the least a worker doing one item at a time must wait per Join (it resolves the
project). The floor is fixed, not the GETs the peer answered: counting those would reward
waste (every extra GET would raise the floor). The GET count is still printed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.common import PYTHON, free_port, http_json, start, stop, wait_for
from bench.node import BenchNode

DELAY = 0.2  # seconds the peer takes to answer each GET
TARGET = 0.1  # the worker must take under a tenth of the sequential floor


async def queue_joins(settings, peer_base: str, count: int) -> None:
    import orjson
    from sqlalchemy import insert

    from fedsph.db import make_engine, make_sessionmaker
    from fedsph.hub.membership import local_hub
    from fedsph.models import InboxItem

    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine, writer=True)() as db, db.begin():
            hub = await local_hub(db)
            rows = []
            for n in range(count):
                actor = f"{peer_base}/users/p{n}"
                join = {"@context": "https://www.w3.org/ns/activitystreams",
                        "id": f"{actor}/joins/1", "type": "Join", "actor": actor,
                        "object": hub.uri}
                rows.append({"activity_uri": join["id"], "type": "Join", "actor_uri": actor,
                             "body": orjson.dumps(join), "signed_by_actor": True})
            await db.execute(insert(InboxItem), rows)
    finally:
        await engine.dispose()


async def wait_for_approvals(settings, count: int, timeout: float) -> dict:
    """Poll until `count` memberships are approved; returns the seconds it took and the queue."""
    from sqlalchemy import func, select

    from fedsph.db import make_engine, make_sessionmaker
    from fedsph.models import HubMembership, InboxItem

    engine = make_engine(settings)
    started = time.perf_counter()
    try:
        while True:
            async with make_sessionmaker(engine)() as db:
                approved = await db.scalar(select(func.count()).select_from(HubMembership)
                                           .where(HubMembership.state == "approved"))
                failed = await db.scalar(select(func.count()).select_from(InboxItem)
                                         .where(InboxItem.status == "failed"))
            seconds = time.perf_counter() - started
            if approved >= count or seconds > timeout:
                return {"approved": approved, "failed": failed, "seconds": seconds}
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


ENGINE_AWARE = True


def run(config, workdir: Path, database_url: str = "") -> list[dict]:
    count = config.joins
    node = BenchNode(workdir / "hub", config, database_url)
    node.setup()
    node.cli("hub", "enable", "--auto-approve", "all")
    settings = node.settings()
    port = free_port()
    peer = start([PYTHON, "-m", "bench.slowpeer", str(port), str(DELAY), str(count)],
                 log=workdir / "slowpeer.log")
    worker = None
    try:
        stats_url = f"http://127.0.0.1:{port}/_stats"
        wait_for(lambda: _answers(stats_url), what="slow peer", proc=peer)
        log = workdir / "worker.log"
        worker = start([PYTHON, *_profiler(), "-m", "fedsph", "worker"], env=node.env, log=log)
        wait_for(lambda: "worker running" in log.read_text(), what="fedsph worker", proc=worker)
        asyncio.run(queue_joins(settings, f"http://127.0.0.1:{port}", count))
        # Generous: the sequential worker this replaces needs count x 2 x DELAY seconds.
        result = asyncio.run(wait_for_approvals(settings, count, timeout=count * 3 * DELAY + 60))
        peer_stats = http_json(stats_url)
        gets = peer_stats["gets"]
        worker_cpu = _cpu_seconds(worker.pid)
    finally:
        stop(worker)
        stop(peer)
    # Fixed: one GET per Join (resolving the project), whatever the worker fetched besides.
    floor = count * DELAY
    ratio = result["seconds"] / floor if floor else float("inf")
    return [{
        "name": f"hub joins, {DELAY * 1000:.0f} ms peer", "unit": "x seq", "fedsph": ratio,
        "baseline": None, "target": TARGET, "kind": "max", "digits": 3,
        "errors": (count - result["approved"]) + result["failed"],
        "note": f"{result['approved']}/{count} Joins approved in {result['seconds']:.1f}s "
                f"({result['approved'] / result['seconds']:.0f}/s); sequential floor {floor:.0f}s "
                f"(fixed: {count} Joins x one {DELAY * 1000:.0f} ms GET each); the peer answered "
                f"{gets} GETs meanwhile, at most {peer_stats['most_waiting']} at once; "
                f"{result['failed']} failed items; worker CPU {worker_cpu:.1f}s; "
                f"Joins queued as inbox items (the worker alone, one `fedsph worker` process)",
    }]


def _profiler() -> list[str]:
    """BENCH_PROFILE_WORKER=FILE runs the worker under cProfile, its profile written to FILE
    when it stops (read it with `python -m pstats FILE`): where a Join's CPU time goes."""
    import os

    target = os.environ.get("BENCH_PROFILE_WORKER")
    return ["-m", "cProfile", "-o", str(Path(target).resolve())] if target else []


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used: near the elapsed time, it was CPU-bound."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _answers(url: str) -> bool:
    try:
        http_json(url)
        return True
    except OSError:
        return False
