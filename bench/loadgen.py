"""The GET load generator: N keep-alive connections hammering one URL for a fixed time.

Runs in its own process so it never shares an event loop with the server it measures. Uses `wrk`
when installed (C, so it leaves more CPU to the server), else this module's aiohttp client:
`python -m bench.loadgen URL ACCEPT CONNECTIONS SECONDS [bust]` prints {"requests", "errors",
"seconds"}. With `bust`, every request adds a parameter of its own (`_=N`) to the URL, so a
server's cache keyed by the query never answers: the work behind the page is measured.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time

import aiohttp

from bench.common import PYTHON, run_json

UNITS = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}


def busted(url: str, n: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}_={n}"


# wrk: each connection's thread numbers its requests (one thread: -t1).
BUST_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local sep = string.find(wrk.path, "?", 1, true) and "&" or "?"
  return wrk.format(nil, wrk.path .. sep .. "_=" .. counter)
end
"""


async def hammer(url: str, accept: str, connections: int, seconds: float,
                 bust: bool = False) -> dict:
    counts = {"requests": 0, "errors": 0}
    sent = iter(range(1, 1 << 62))
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds

        async def one_connection():
            while time.monotonic() < deadline:
                try:
                    target = busted(url, next(sent)) if bust else url
                    async with session.get(target, headers={"Accept": accept}) as resp:
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


def measure(url: str, accept: str, connections: int, seconds: float, kind: str = "auto",
            bust: bool = False) -> dict:
    """Requests per second against `url`, from a separate process (`bust`: see above)."""
    if choose(kind) == "wrk":
        return _wrk(url, accept, connections, seconds, bust)
    result = run_json([PYTHON, "-m", "bench.loadgen", url, accept, str(connections), str(seconds),
                       *(["bust"] if bust else [])], timeout=seconds + 60)
    result["rps"] = result["requests"] / result["seconds"]
    return result


def _wrk(url: str, accept: str, connections: int, seconds: float, bust: bool = False) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(BUST_LUA)
        script.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-H",
             f"Accept: {accept}", *(["-s", script.name] if bust else []), url],
            capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                              out)
    non_2xx = int(errors.group(1)) if errors else 0
    # wrk gives up on a request after 2 s: under a load the server cannot keep up with, those
    # are timeouts, not failed answers; the note tells them apart.
    timeouts = int(socket_errors.group(4)) if socket_errors else 0
    failed = non_2xx + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0)
    return {"requests": int(total.group(1)) if total else 0, "errors": failed,
            "non_2xx": non_2xx, "timeouts": timeouts,
            "rps": float(rps.group(1)) if rps else 0.0}


if __name__ == "__main__":
    target, accept_header, conns, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(hammer(target, accept_header, conns, duration,
                                        sys.argv[5:] == ["bust"]))))
