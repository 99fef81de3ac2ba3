"""Benchmark: resident memory (VmRSS, /proc/PID/status) of `fedsph serve`.

Rows: idle after start with the in-process worker, idle without it (`--no-worker`, when
`fedsph worker` processes do that work), and after a light page load (home page, a project's
page and its actor document, `connections` clients for `duration` seconds). The same-run
baseline is a bare aiohttp server (bench/bare_server.py) measured the same way: the floor any
aiohttp server pays. The start peak (VmHWM) is in the checks.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from bench import loadgen
from bench.common import PYTHON, free_port, http_get, start, stop, wait_for
from bench.node import BenchNode

ENGINE_AWARE = True
IDLE_TARGET_MB = 80  # issue 12, item 6
LOADED_TARGET_MB = 150  # issue 12, item 6: the bound while serving
PAGES = (("/", "text/html"), ("/actors/bench", "text/html"),
         ("/actors/bench", "application/activity+json"))


def status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB (MiB)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values


def _idle_wait(config) -> float:
    return 3.0 if config.duration < 5 else 10.0


def _serve(node: BenchNode, args: list[str], workdir: Path, name: str):
    server = start([PYTHON, "-m", "fedsph", "serve", *args],
                   env={**node.env, "FEDSPH_ACCESS_LOG": "0"}, log=workdir / f"{name}.log")
    wait_for(lambda: http_get(node.actor_url)[0] == 200, what="fedsph serve", proc=server,
             timeout=90)
    return server


def _load(config, base: str) -> int:
    errors = 0
    for path, accept in PAGES:
        result = loadgen.measure(base + path, accept, min(config.connections, 16),
                                 max(1.0, config.duration / len(PAGES)), config.loadgen)
        errors += result["errors"]
    return errors


def _capture(node: BenchNode, workdir: Path) -> Path:
    """What fedsph answers on PAGES' paths, for the bare server to send the same bytes."""
    spec = {}
    for path, accept in PAGES[:2]:
        status, headers, body = http_get(node.base + path, accept)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        spec[path] = {"headers": {"Content-Type": headers.get("Content-Type", "text/html")},
                      "body": base64.b64encode(body).decode()}
    spec_file = workdir / "memory_bare_spec.json"
    spec_file.write_text(json.dumps(spec))
    return spec_file


def _bare(config, spec_file: Path, workdir: Path) -> tuple[dict, dict, int]:
    """The bare aiohttp server: RSS idle, then after the same load."""
    port = free_port()
    bare = start([PYTHON, "-m", "bench.bare_server", str(port), str(spec_file)],
                 log=workdir / "memory_bare.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(base + "/")[0] == 200, what="bare server", proc=bare)
        time.sleep(_idle_wait(config))
        idle = status_mb(bare.pid)
        errors = _load(config, base)
        return idle, status_mb(bare.pid), errors
    finally:
        stop(bare)


def run(config, workdir: Path, database_url: str = "") -> list[dict]:
    node = BenchNode(workdir / "node", config, database_url)
    node.setup()
    rows, checks = [], []
    with_worker = _serve(node, [], workdir, "serve_worker")
    try:
        time.sleep(_idle_wait(config))
        idle = status_mb(with_worker.pid)
        spec_file = _capture(node, workdir)
        errors = _load(config, node.base)
        loaded = status_mb(with_worker.pid)
    finally:
        stop(with_worker)
    without = _serve(node, ["--no-worker"], workdir, "serve_no_worker")
    try:
        time.sleep(_idle_wait(config))
        idle_no_worker = status_mb(without.pid)
    finally:
        stop(without)
    bare_idle, bare_loaded, bare_errors = _bare(config, spec_file, workdir)
    checks.append(f"peak at start (VmHWM): {idle['VmHWM']:.0f} MB with the worker, "
                  f"{idle_no_worker['VmHWM']:.0f} MB without; bare aiohttp "
                  f"{bare_idle['VmHWM']:.0f} MB")
    note = f"VmRSS after {_idle_wait(config):g}s idle"
    rows.append({"name": "RSS idle, serve", "fedsph": idle["VmRSS"], "baseline": bare_idle["VmRSS"],
                 "unit": "MB", "target": IDLE_TARGET_MB, "kind": "max", "errors": 0,
                 "note": f"{note}, in-process worker; baseline: bare aiohttp", "checks": checks})
    rows.append({"name": "RSS idle, serve --no-worker", "fedsph": idle_no_worker["VmRSS"],
                 "baseline": bare_idle["VmRSS"], "unit": "MB", "target": IDLE_TARGET_MB,
                 "kind": "max", "errors": 0, "note": note})
    rows.append({"name": "RSS after light page load", "fedsph": loaded["VmRSS"],
                 "baseline": bare_loaded["VmRSS"], "unit": "MB", "target": LOADED_TARGET_MB,
                 "kind": "max", "errors": errors + bare_errors,
                 "note": "home, project page and actor document, "
                         f"{min(config.connections, 16)} connections, {loadgen.choose(config.loadgen)}"})
    return rows
