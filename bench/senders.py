"""The two senders of the fan-out benchmark, each run as its own process.

`python -m bench.senders fedsph`: fedsph's own Worker (as `fedsph worker` builds it, settings from
FEDSPH_* env) runs run_once() until no delivery is due; prints the time it took.
`python -m bench.senders baseline JOB.json`: a bare aiohttp client that signs each request with
fedsph.federation.httpsig.sign_request and POSTs the same body to the same inboxes, at the same concurrency.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections import Counter

import aiohttp

from fedsph.federation.activitystreams import AP_CONTENT_TYPE
from fedsph.federation.httpsig import sign_request
from fedsph.federation.remote import ACCEPT_AP

# fedsph's client pool (fedsph.federation.remote.make_client_session) allows 100 connections; the baseline
# gets the same, so the pool is not what differs.
CONNECTION_LIMIT = 100


async def run_fedsph_worker() -> dict:
    from fedsph.admin.node import open_node
    from fedsph.config import load_settings
    from fedsph.worker import Worker

    settings = load_settings()
    async with open_node(settings) as node:
        worker = Worker(settings, node.writers, node.remote)
        profiler = _profiler()
        started = time.perf_counter()
        stats = await worker.run_once()
        elapsed = time.perf_counter() - started
        _save_profile(profiler)
    return {"sent": stats.sent, "seconds": elapsed}


async def run_baseline(job: dict) -> dict:
    body = base64.b64decode(job["body"])
    limit = asyncio.Semaphore(job["concurrency"])
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=CONNECTION_LIMIT)
    timeout = aiohttp.ClientTimeout(total=15, connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(url: str) -> None:
            async with limit:
                headers = sign_request("POST", url, job["key_id"], job["private_pem"], body=body,
                                       content_type=AP_CONTENT_TYPE)
                headers["Accept"] = ACCEPT_AP
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        statuses[str(resp.status)] += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    statuses[type(exc).__name__] += 1

        started = time.perf_counter()
        await asyncio.gather(*(post(url) for url in job["inboxes"]))
        elapsed = time.perf_counter() - started
    return {"sent": sum(n for s, n in statuses.items() if s.startswith("2")), "seconds": elapsed,
            "statuses": dict(statuses)}


def _profiler():
    """With BENCH_PROFILE=FILE and pyinstrument installed, profile the worker run."""
    if not os.environ.get("BENCH_PROFILE"):
        return None
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("BENCH_PROFILE set but pyinstrument is not installed", file=sys.stderr)
        return None
    profiler = Profiler(async_mode="enabled")
    profiler.start()
    return profiler


def _save_profile(profiler) -> None:
    if profiler is None:
        return
    profiler.stop()
    with open(os.environ["BENCH_PROFILE"], "w") as f:
        f.write(profiler.output_text(unicode=True, show_all=False))


if __name__ == "__main__":
    if sys.argv[1] == "fedsph":
        result = asyncio.run(run_fedsph_worker())
    else:
        with open(sys.argv[2]) as job_file:
            result = asyncio.run(run_baseline(json.load(job_file)))
    print(json.dumps(result))
