"""The GET load generator: N keep-alive connections hammering one URL for a fixed time.

Runs in its own process so it never shares an event loop with the server it measures. Uses `wrk`
when installed (C, so it leaves more CPU to the server), else this module's aiohttp client:
`python -m bench.loadgen URL ACCEPT CONNECTIONS SECONDS` prints {"requests", "errors", "seconds"}.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time

import aiohttp

from bench.common import PYTHON, run_json

UNITS = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}


async def hammer(url: str, accept: str, connections: int, seconds: float) -> dict:
    counts = {"requests": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds

        async def one_connection():
            while time.monotonic() < deadline:
                try:
                    async with session.get(url, headers={"Accept": accept}) as resp:
                        await resp.read()
                        counts["requests" if resp.status == 200 else "errors"] += 1
                except aiohttp.ClientError:
                    counts["errors"] += 1

        started = time.monotonic()
        await asyncio.gather(*(one_connection() for _ in range(connections)))
        counts["seconds"] = time.monotonic() - started
    return counts


def choose(kind: str) -> str:
    if kind == "auto":
        return "wrk" if shutil.which("wrk") else "aiohttp"
    return kind


def measure(url: str, accept: str, connections: int, seconds: float, kind: str = "auto") -> dict:
    """Requests per second against `url`, from a separate process."""
    if choose(kind) == "wrk":
        return _wrk(url, accept, connections, seconds)
    result = run_json([PYTHON, "-m", "bench.loadgen", url, accept, str(connections), str(seconds)],
                      timeout=seconds + 60)
    result["rps"] = result["requests"] / result["seconds"]
    return result


def _wrk(url: str, accept: str, connections: int, seconds: float) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-H", f"Accept: {accept}",
         url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                              out)
    failed = int(errors.group(1)) if errors else 0
    failed += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return {"requests": int(total.group(1)) if total else 0, "errors": failed,
            "rps": float(rps.group(1)) if rps else 0.0}


if __name__ == "__main__":
    target, accept_header, conns, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(hammer(target, accept_header, conns, duration))))
