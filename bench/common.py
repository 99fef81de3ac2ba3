"""Helpers shared by the benchmarks: subprocesses, ports, waiting, and the run's settings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Config:
    """Sizes of one run. Defaults are the real benchmark; --quick shrinks them for a smoke run."""

    duration: float = 10.0       # seconds of load per GET target
    warmup: float = 1.0          # seconds of load before each measured run, not counted
    connections: int = 64        # concurrent connections of the GET load generator
    loadgen: str = "auto"        # auto (wrk if installed, else aiohttp), wrk or aiohttp
    followers: int = 5000
    hosts: int = 1000
    sink_procs: int = 2          # processes serving the sink hosts
    concurrency: int = 32        # FEDSPH_DELIVERY_CONCURRENCY, used by fedsph and the baseline
    worker_batch: int = 64       # FEDSPH_WORKER_BATCH
    directory_members: str = "1000,10000"  # hub sizes of the directory benchmark
    joins: int = 1000            # remote projects that Join the hub in bench/joins.py
    only: str = "all"            # all, or a comma-separated list of bench/__main__.py BENCHMARKS
    engines: str = "sqlite,postgresql"  # the databases every engine-aware benchmark runs on
    out: str = "bench/results/last.md"  # where the table is written as well as printed
    strict: bool = False         # exit non-zero when a ratio misses its target
    keep: bool = False           # keep the temporary data directory and the logs

    @classmethod
    def quick(cls) -> Config:
        return cls(duration=3.0, warmup=0.5, followers=500, hosts=100, joins=200)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_get(url: str, accept: str = "application/activity+json", timeout: float = 10):
    """(status, headers, body bytes); status 0 when nothing answers."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}, b""


def http_json(url: str, data: bytes | None = None) -> dict:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def wait_for(predicate, timeout: float = 30, what: str = "condition", proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {what}")
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def start(args: list[str], env: dict | None = None, log: Path | None = None,
          stdout=None) -> subprocess.Popen:
    """Start a helper process (its own process group, so stop() ends it and its children)."""
    if log is None:
        return subprocess.Popen(args, env={**os.environ, **(env or {})}, cwd=ROOT,
                                stdout=stdout or subprocess.DEVNULL, start_new_session=True)
    with open(log, "ab") as out:
        return subprocess.Popen(args, env={**os.environ, **(env or {})}, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run_json(args: list[str], env: dict | None = None, timeout: float = 600) -> dict:
    """Run a helper to completion; its last stdout line is a JSON result."""
    result = subprocess.run(args, env={**os.environ, **(env or {})}, cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
