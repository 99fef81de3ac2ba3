"""Where a hub Join's worker CPU goes, in one process: `python -m bench.joins_inprocess`.

Not a row of `python -m bench`: a tool for comparing two versions of the worker. A hub node and
bench/slowpeer.py answering at once (no 200 ms); N Joins queued as bench/joins.py queues them,
then one `Worker.run_once()` in this process handles them all (each Join, the backfill it
queues, the deliveries). Printed per Join: the process's CPU (all threads), the SQL statements
(a `before_cursor_execute` listener) and, on SQLite, the calls to aiosqlite's thread.
BENCH_JOINS (default 200), BENCH_ENGINES (sqlite or postgresql), BENCH_SHOW=1 lists the
statements by count.
"""

from __future__ import annotations

import asyncio
import collections
import os
import tempfile
import time
from pathlib import Path

from bench.common import PYTHON, free_port, start, stop, wait_for
from bench.joins import _answers, queue_joins
from bench.node import BenchNode


class _Config:
    concurrency, worker_batch = 32, 64


async def _work(settings, peer_base: str, count: int) -> None:
    import aiosqlite.core
    from sqlalchemy import event

    from fedsph.admin.node import open_node
    from fedsph.worker import Worker

    statements: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    original = aiosqlite.core.Connection._execute

    async def counted(connection, fn, *args, **kwargs):
        calls[getattr(fn, "__name__", "?")] += 1
        return await original(connection, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counted
    async with open_node(settings) as node:
        worker = Worker(settings, node.writers, node.remote)
        event.listen(node.writers.kw["bind"].sync_engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_a: statements.update([statement[:120]]))
        await worker.run_once()  # nothing queued yet: connections and caches warm
        await queue_joins(settings, peer_base, count)
        statements.clear()
        calls.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        stats = await worker.run_once()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{stats.processed} items, {stats.sent} deliveries in {wall:.1f}s; per Join: "
          f"{1000 * cpu / count:.1f} ms CPU, {sum(statements.values()) / count:.1f} statements, "
          f"{sum(calls.values()) / count:.1f} calls to aiosqlite's thread {dict(calls)}")
    if os.environ.get("BENCH_SHOW"):
        for statement, n in statements.most_common(40):
            print(f"{n / count:6.2f}  {' '.join(statement.split())}")


def main() -> None:
    count = int(os.environ.get("BENCH_JOINS", "200"))
    engine = os.environ.get("BENCH_ENGINES", "sqlite")
    workdir = Path(tempfile.mkdtemp(prefix="fedsph-joins-"))
    cluster, database_url = None, ""
    if engine == "postgresql":
        from bench.pgserver import PostgresCluster

        cluster = PostgresCluster().__enter__()
        database_url = cluster.new_database()
    peer = None
    try:
        node = BenchNode(workdir / "hub", _Config, database_url)
        node.setup()
        node.cli("hub", "enable", "--auto-approve", "all")
        port = free_port()
        peer = start([PYTHON, "-m", "bench.slowpeer", str(port), "0", str(count)],
                     log=workdir / "slowpeer.log")
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/_stats"), what="peer", proc=peer)
        asyncio.run(_work(node.settings(), f"http://127.0.0.1:{port}", count))
    finally:
        stop(peer)
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
