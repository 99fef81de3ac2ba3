"""Benchmark 1: GET of a project's actor document and of its WebFinger answer.

fedsph (`fedsph serve --no-worker`, its own process) against a bare aiohttp server (its own
process) that answers the same paths with the bytes fedsph sent, under the same load generator.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import urlsplit

from bench import loadgen
from bench.common import PYTHON, free_port, http_get, start, stop, wait_for
from bench.node import BenchNode

ACTOR_ACCEPT = "application/activity+json"
WEBFINGER_ACCEPT = "application/jrd+json"
# Headers of fedsph's answer worth copying; aiohttp sets Date, Server and Content-Length itself.
COPIED = ("content-type", "vary", "access-control-allow-origin")


def _capture(url: str, accept: str) -> dict:
    status, headers, body = http_get(url, accept)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}: {body[:300]!r}")
    kept = {k: v for k, v in headers.items() if k.lower() in COPIED}
    return {"headers": kept, "body": base64.b64encode(body).decode(), "size": len(body)}


ENGINE_AWARE = True


def run(config, workdir: Path, database_url: str = "") -> list[dict]:
    node = BenchNode(workdir / "node", config, database_url)
    node.setup()
    node.serve()
    try:
        return measure(config, node, workdir)
    finally:
        node.stop()


def measure(config, node: BenchNode, workdir: Path) -> list[dict]:
    targets = [("GET actor document", node.actor_url, ACTOR_ACCEPT),
               ("GET WebFinger", node.webfinger_url, WEBFINGER_ACCEPT)]
    spec = {urlsplit(url).path: _capture(url, accept) for _, url, accept in targets}
    spec_file = workdir / "bare_spec.json"
    spec_file.write_text(json.dumps(spec))
    port = free_port()
    bare = start([PYTHON, "-m", "bench.bare_server", str(port), str(spec_file)],
                 log=workdir / "bare_server.log")
    rows = []
    try:
        bare_base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(bare_base + urlsplit(node.actor_url).path)[0] == 200,
                 what="bare server", proc=bare)
        for name, url, accept in targets:
            parts = urlsplit(url)
            bare_url = f"{bare_base}{parts.path}?{parts.query}" if parts.query else bare_base + parts.path
            same = http_get(bare_url, accept)[2] == http_get(url, accept)[2]
            if not same:
                raise RuntimeError(f"bare server and fedsph answer {parts.path} differently")
            fedsph = _measure(config, url, accept)
            bare_result = _measure(config, bare_url, accept)
            rows.append({
                "name": name, "unit": "req/s", "fedsph": fedsph["rps"], "baseline": bare_result["rps"],
                "target": 0.5, "errors": fedsph["errors"] + bare_result["errors"],
                "note": f"{spec[parts.path]['size']} B body, {config.connections} connections, "
                        f"{config.duration:g}s, {loadgen.choose(config.loadgen)}",
            })
    finally:
        stop(bare)
    return rows


def _measure(config, url: str, accept: str) -> dict:
    if config.warmup > 0:
        loadgen.measure(url, accept, config.connections, config.warmup, config.loadgen)
    return loadgen.measure(url, accept, config.connections, config.duration, config.loadgen)
