"""Benchmark 2: one update fanned out to many followers on many hosts.

The database is seeded directly with remote followers (half the hosts offer a shared inbox, half
do not, so 5,000 followers on 1,000 hosts make 500 + 2,500 = 3,000 deliveries). One note is
published with fedsph.projects.outbox.publish_text_post; then fedsph's Worker sends the deliveries (in its own
process) and, after it, a bare signing client sends the same requests. Sinks check every
signature and count every (inbox, activity) pair, so lost or duplicated deliveries show.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from pathlib import Path

from bench.common import PYTHON, free_port, http_json, run_json, start, stop, wait_for
from bench.node import PROJECT, BenchNode

# 127.0.0.2 … 127.0.0.251: distinct loopback addresses, so hosts differ by address, not only port.
ADDRESSES = [f"127.0.0.{n}" for n in range(2, 252)]


class Sinks:
    """A few sink processes that between them serve `hosts` loopback hosts."""

    def __init__(self, config, key_id: str, public_pem: str, workdir: Path):
        per_address = math.ceil(config.hosts / len(ADDRESSES))
        plan, left = [], config.hosts
        for address in ADDRESSES:
            if left <= 0:
                break
            plan.append((address, min(per_address, left)))
            left -= per_address
        self.procs, self.control_ports, self.host_files = [], [], []
        for n in range(config.sink_procs):
            share = plan[n::config.sink_procs]
            if not share:
                continue
            port, hosts_file = free_port(), workdir / f"sink{n}_hosts.json"
            spec_file = workdir / f"sink{n}.json"
            spec_file.write_text(json.dumps({"addresses": share, "key_id": key_id,
                                             "public_pem": public_pem, "control_port": port,
                                             "hosts_file": str(hosts_file)}))
            self.procs.append(start([PYTHON, "-m", "bench.sinks", str(spec_file)],
                                    log=workdir / f"sink{n}.log"))
            self.control_ports.append(port)
            self.host_files.append(hosts_file)

    def wait(self) -> list[str]:
        for proc, port in zip(self.procs, self.control_ports):
            url = f"http://127.0.0.1:{port}/stats"
            wait_for(lambda url=url: _answers(url), what="sink", proc=proc)
        return [host for f in self.host_files for host in json.loads(f.read_text())]

    def reset(self) -> None:
        for port in self.control_ports:
            http_json(f"http://127.0.0.1:{port}/reset", data=b"")

    def check(self, expected_inboxes: set[str], activity_id: str) -> dict:
        """Lost, duplicated, unexpected deliveries and bad signatures across all sinks."""
        seen: dict[str, int] = {}
        unexpected = bad = 0
        examples: list[str] = []
        for port in self.control_ports:
            stats = http_json(f"http://127.0.0.1:{port}/stats")
            bad += stats["bad"]
            examples += stats["bad_examples"]
            for inbox, activity, count in stats["counts"]:
                if activity != activity_id or inbox not in expected_inboxes:
                    unexpected += count
                else:
                    seen[inbox] = seen.get(inbox, 0) + count
        return {"lost": len(expected_inboxes - seen.keys()),
                "duplicated": sum(n - 1 for n in seen.values() if n > 1),
                "unexpected": unexpected, "bad_signatures": bad, "bad_examples": examples[:3]}

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)


def _answers(url: str) -> bool:
    try:
        http_json(url)
        return True
    except OSError:
        return False


def followers_plan(hosts: list[str], followers: int) -> tuple[list[dict], set[str]]:
    """Remote actor rows, round-robin over hosts; the first half of hosts has a shared inbox."""
    shared_hosts = set(hosts[: len(hosts) // 2])
    rows, inboxes = [], set()
    for n in range(followers):
        host = hosts[n % len(hosts)]
        uri = f"http://{host}/users/u{n}"
        shared = f"http://{host}/inbox" if host in shared_hosts else None
        rows.append({"uri": uri, "local": False, "type": "Person", "username": f"u{n}",
                     "domain": host, "inbox": uri + "/inbox", "shared_inbox": shared,
                     "key_id": uri + "#main-key"})
        inboxes.add(shared or uri + "/inbox")
    return rows, inboxes


async def seed_and_publish(settings, actor_rows: list[dict]) -> dict:
    """Insert followers straight into the database, then publish one note (timed)."""
    from sqlalchemy import func, insert, select

    from fedsph.core.urls import URLs
    from fedsph.db import make_engine, make_sessionmaker
    from fedsph.federation.actors import get_local_actor
    from fedsph.models import Activity, Actor, Delivery, Follow, utcnow
    from fedsph.projects.outbox import publish_text_post

    engine = make_engine(settings)
    sessions = make_sessionmaker(engine, writer=True)
    try:
        async with sessions() as db, db.begin():
            project = await get_local_actor(db, PROJECT)
            now = utcnow()
            await db.execute(insert(Actor), [{**row, "fetched_at": now} for row in actor_rows])
            ids = (await db.scalars(select(Actor.id).where(Actor.local.is_(False)))).all()
            await db.execute(insert(Follow), [
                {"follower_id": i, "followed_id": project.id, "state": "accepted",
                 "activity_uri": f"{project.uri}#follow-{i}"} for i in ids])
        started = time.perf_counter()
        async with sessions() as db, db.begin():
            project = await get_local_actor(db, PROJECT)
            note = await publish_text_post(db, URLs(settings.base_url), project, "A benchmark update.")
        publish_seconds = time.perf_counter() - started
        async with sessions() as db:
            activity = await db.scalar(select(Activity).where(Activity.object_uri == note.uri))
            queued = await db.scalar(select(func.count()).select_from(Delivery)
                                     .where(Delivery.activity_id == activity.id))
            inboxes = (await db.scalars(select(Delivery.inbox)
                                        .where(Delivery.activity_id == activity.id))).all()
        return {"activity_uri": activity.uri, "body": activity.body, "queued": queued,
                "inboxes": list(inboxes), "publish_seconds": publish_seconds}
    finally:
        await engine.dispose()


async def delivery_statuses(settings, activity_uri: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from fedsph.db import make_engine, make_sessionmaker
    from fedsph.models import Activity, Delivery

    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db:
            rows = await db.execute(
                select(Delivery.status, func.count()).join(Activity)
                .where(Activity.uri == activity_uri).group_by(Delivery.status))
            return {status: n for status, n in rows}
    finally:
        await engine.dispose()


ENGINE_AWARE = True


def run(config, workdir: Path, database_url: str = "") -> list[dict]:
    node = BenchNode(workdir / "node", config, database_url)
    node.setup()
    key_id, private_pem, public_pem = node.project_key()
    settings = node.settings()
    sinks = Sinks(config, key_id, public_pem, workdir)
    try:
        hosts = sinks.wait()
        actor_rows, expected = followers_plan(hosts, config.followers)
        published = asyncio.run(seed_and_publish(settings, actor_rows))
        if set(published["inboxes"]) != expected:
            raise RuntimeError(f"fedsph queued {published['queued']} deliveries, "
                               f"expected {len(expected)} distinct inboxes")
        activity_id = json.loads(published["body"])["id"]

        sinks.reset()
        fedsph = run_json([PYTHON, "-m", "bench.senders", "fedsph"], env=node.env)
        fedsph_check = sinks.check(expected, activity_id)
        fedsph_check["statuses"] = asyncio.run(delivery_statuses(settings, published["activity_uri"]))

        sinks.reset()
        job = workdir / "baseline_job.json"
        job.write_text(json.dumps({"key_id": key_id, "private_pem": private_pem,
                                   "body": base64.b64encode(published["body"]).decode(),
                                   "inboxes": published["inboxes"],
                                   "concurrency": config.concurrency}))
        baseline = run_json([PYTHON, "-m", "bench.senders", "baseline", str(job)])
        baseline_check = sinks.check(expected, activity_id)
        baseline_check["statuses"] = baseline["statuses"]
    finally:
        sinks.stop()

    problems = [_problems("fedsph", fedsph_check, len(expected)),
                _problems("baseline", baseline_check, len(expected))]
    return [{
        "name": "fan-out deliveries", "unit": "deliv/s",
        "fedsph": fedsph["sent"] / fedsph["seconds"],
        "baseline": baseline["sent"] / baseline["seconds"], "target": 0.75,
        "errors": sum(p[0] for p in problems),
        "note": f"{config.followers} followers on {len(hosts)} hosts -> {len(expected)} deliveries; "
                f"fedsph {fedsph['seconds']:.2f}s, baseline {baseline['seconds']:.2f}s; "
                f"publish_text_post {published['publish_seconds'] * 1000:.0f} ms; "
                f"concurrency {config.concurrency}, batch {config.worker_batch}",
        "checks": [p[1] for p in problems],
    }]


def _problems(who: str, check: dict, expected: int) -> tuple[int, str]:
    statuses = check["statuses"]
    sent = statuses.get("sent", 0) if who == "fedsph" else sum(
        n for s, n in statuses.items() if s.startswith("2"))
    count = (check["lost"] + check["duplicated"] + check["unexpected"] + check["bad_signatures"]
             + (expected - sent))
    text = (f"{who}: {sent}/{expected} accepted, lost {check['lost']}, duplicated "
            f"{check['duplicated']}, unexpected {check['unexpected']}, bad signatures "
            f"{check['bad_signatures']}, statuses {statuses}")
    if check["bad_examples"]:
        text += f", e.g. {check['bad_examples']}"
    return count, text
