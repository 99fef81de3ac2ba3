"""Benchmark: inbox ingest of signed Creates from 32 concurrent senders.

fedsph (`fedsph serve --no-worker`, its own process) against a bare aiohttp handler that reads
the body and answers 202 (its own process), fed the same requests by the same load generator
(its own process). The requests are signed beforehand by another process, so the load generator
only POSTs; the signing actor's document is served by a small peer process on loopback, from
which fedsph fetches the key once (in the warm-up, not counted).

The worker is off: the burst is absorbed as rows that wait for it, which is what "accept fast,
process later" means; what the worker then costs is the joins benchmark's business. Every
request has its own activity id (a repeated id is answered "duplicate", also 202, and stores
nothing), and the signatures' Date must be within 12 h when they arrive (they are minutes old).
Checked afterwards: every request answered 202 is exactly one inbox row.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from bench.common import PYTHON, free_port, http_get, run_json, start, stop, wait_for
from bench.node import BenchNode

ENGINE_AWARE = True
SENDERS = 32
TARGET = 0.35
WARMUP_PER_SENDER = 4


def run(config, workdir: Path, database_url: str = "") -> list[dict]:
    node = BenchNode(workdir / "node", config, database_url)
    node.setup()
    node.serve()
    peer_port = free_port()
    actor, private_pem = _actor(peer_port)
    actor_file = workdir / "actor.json"
    actor_file.write_text(json.dumps(actor))
    peer = start([PYTHON, "-m", "bench.inbox_load", "peer", str(peer_port), str(actor_file)],
                 log=workdir / "peer.log")
    bare_port = free_port()
    bare = start([PYTHON, "-m", "bench.inbox_load", "bare", str(bare_port)],
                 log=workdir / "bare.log")
    try:
        wait_for(lambda: http_get(actor["id"])[0] == 200, what="peer", proc=peer)
        wait_for(lambda: http_get(f"http://127.0.0.1:{bare_port}/")[0] == 200, what="bare server",
                 proc=bare)
        per_sender = max(20, int(config.duration * 1000 / SENDERS))
        job = {"inbox": f"{node.base}/inbox", "actor": actor["id"],
               "key_id": actor["publicKey"]["id"], "private_pem": private_pem,
               "senders": SENDERS}
        warm = _signed(workdir, "warm", {**job, "per_sender": WARMUP_PER_SENDER})
        measured = _signed(workdir, "measured", {**job, "per_sender": per_sender})
        bare_url = f"http://127.0.0.1:{bare_port}/inbox"
        warm_fedsph = _post(job["inbox"], warm)  # fetches the key; not counted
        _post(bare_url, warm)
        # CPU time of each server over the measured burst alone: on a shared machine the req/s
        # move with other processes' load, the CPU a request costs much less.
        fedsph, fedsph_cpu = _timed_post(node.server.pid, job["inbox"], measured)
        baseline, bare_cpu = _timed_post(bare.pid, bare_url, measured)
        rows = asyncio.run(_inbox_rows(node, actor["id"]))
    finally:
        stop(bare)
        stop(peer)
        node.stop()
    return [_row(config, per_sender, fedsph, baseline, warm_fedsph, rows, (fedsph_cpu, bare_cpu))]


def _row(config, per_sender, fedsph, baseline, warm, rows: dict[str, int], cpu) -> dict:
    count = SENDERS * per_sender
    accepted = warm["accepted"] + fedsph["accepted"]
    lost = [uri for uri in accepted if rows.get(uri, 0) != 1]
    extra = sorted(set(rows) - set(accepted))
    refused = count - len(fedsph["accepted"])
    bare_refused = count - baseline["statuses"].get("202", 0)
    checks = [(f"fedsph answers: {fedsph['statuses']} (warm-up, with the key fetch: "
              f"{warm['statuses']}); bare answers: {baseline['statuses']}"),
              (f"{len(accepted)} requests answered 202, {len(rows)} inbox rows; {len(lost)} "
               f"accepted without exactly one row, {len(extra)} rows never answered 202"),
              (f"server CPU per request over the measured burst: fedsph {cpu[0] / count * 1e6:.0f}"
               f" µs, bare {cpu[1] / count * 1e6:.0f} µs")]
    return {
        "name": "inbox ingest, signed Creates", "unit": "req/s", "target": TARGET,
        "fedsph": len(fedsph["accepted"]) / fedsph["seconds"],
        "baseline": baseline["statuses"].get("202", 0) / baseline["seconds"],
        "errors": refused + bare_refused + len(lost),
        "note": f"{count} pre-signed requests from {SENDERS} concurrent senders, each its own "
                f"activity ids, to the shared inbox; `serve --no-worker` (rows wait for the "
                f"worker); FEDSPH_INGEST_WAIT_MS default",
        "checks": checks,
    }


def _actor(port: int) -> tuple[dict, str]:
    from fedsph.federation.crypto import generate_rsa_keypair

    private_pem, public_pem = generate_rsa_keypair()
    uri = f"http://127.0.0.1:{port}/users/sender"
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": uri, "type": "Person", "preferredUsername": "sender", "inbox": uri + "/inbox",
        "publicKey": {"id": uri + "#main-key", "owner": uri, "publicKeyPem": public_pem},
    }, private_pem


def _signed(workdir: Path, name: str, job: dict) -> Path:
    """The requests of `job`, signed by another process into a file."""
    job_file, out = workdir / f"{name}-job.json", workdir / f"{name}-requests.json"
    job_file.write_text(json.dumps({**job, "run": f"{name}-{uuid.uuid4().hex[:8]}"}))
    started = time.monotonic()
    run_json([PYTHON, "-m", "bench.inbox_load", "sign", str(job_file), str(out)])
    print(f"  signed {name} requests in {time.monotonic() - started:.1f}s", flush=True)
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_post(pid: int, url: str, requests_file: Path) -> tuple[dict, float]:
    """_post, and the CPU seconds the server `pid` spent meanwhile."""
    before = _cpu_seconds(pid)
    result = _post(url, requests_file)
    return result, _cpu_seconds(pid) - before


def _post(url: str, requests_file: Path) -> dict:
    return run_json([PYTHON, "-m", "bench.inbox_load", "post", url, str(requests_file),
                     str(SENDERS)])


async def _inbox_rows(node: BenchNode, actor_uri: str) -> dict[str, int]:
    """activity id -> number of inbox rows with it, for the signing actor."""
    from sqlalchemy import func, select

    from fedsph.db import make_engine, make_sessionmaker
    from fedsph.models import InboxItem

    engine = make_engine(node.settings())
    try:
        async with make_sessionmaker(engine)() as db:
            rows = await db.execute(select(InboxItem.activity_uri, func.count())
                                    .where(InboxItem.actor_uri == actor_uri)
                                    .group_by(InboxItem.activity_uri))
            return {uri: count for uri, count in rows}
    finally:
        await engine.dispose()
