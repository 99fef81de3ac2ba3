"""Sink servers for the fan-out benchmark: many loopback "hosts" that check every delivery.

`python -m bench.sinks SPEC.json` listens on `count` ephemeral ports of each address in
SPEC["addresses"] (127.0.0.x all reach loopback on Linux, so 250 addresses × a few ports give
1,000 distinct hosts cheaply), verifies each POST's HTTP signature against the one key expected,
and counts deliveries per (inbox URL, activity id) so lost and duplicated deliveries show. It
writes the "ip:port" hosts it got to SPEC["hosts_file"], then serves GET /stats and POST /reset on
127.0.0.1:SPEC["control_port"].
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections import Counter
from pathlib import Path

import orjson
from aiohttp import web

from fedsph.errors import Unauthorized
from fedsph.federation.httpsig import parse_signature_header, verify_request


class Sink:
    def __init__(self, key_id: str, public_pem: str):
        self.key_id = key_id
        self.public_pem = public_pem
        self.counts: Counter[tuple[str, str]] = Counter()
        self.bad: list[str] = []

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            params = parse_signature_header(request.headers.get("Signature", ""))
            if params.key_id != self.key_id:
                raise Unauthorized(f"unexpected keyId {params.key_id}")
            headers = {k.lower(): v for k, v in request.headers.items()}
            verify_request(params, self.public_pem, request.method, request.rel_url.raw_path,
                           request.rel_url.raw_query_string, headers, body)
            activity_id = orjson.loads(body)["id"]
        except (Unauthorized, ValueError, KeyError, TypeError) as exc:
            self.bad.append(f"{request.host}{request.path}: {exc}")
            return web.Response(status=401)
        self.counts[(f"http://{request.host}{request.rel_url.raw_path}", activity_id)] += 1
        return web.Response(status=202)

    async def stats(self, _request: web.Request) -> web.Response:
        counts = [[inbox, activity, n] for (inbox, activity), n in self.counts.items()]
        return web.json_response({"counts": counts, "bad": len(self.bad), "bad_examples": self.bad[:5]})

    async def reset(self, _request: web.Request) -> web.Response:
        self.counts.clear()
        self.bad.clear()
        return web.json_response({"ok": True})


def listening_socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(spec: dict) -> None:
    sink = Sink(spec["key_id"], spec["public_pem"])
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", sink.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    hosts = []
    for address, count in spec["addresses"]:
        for _ in range(count):
            sock = listening_socket(address)
            await web.SockSite(runner, sock).start()
            address, port = sock.getsockname()
            hosts.append(f"{address}:{port}")
    # Written once, before the control port answers: the runner waits for that port.
    Path(spec["hosts_file"]).write_text(json.dumps(hosts))

    control = web.Application()
    control.router.add_get("/stats", sink.stats)
    control.router.add_post("/reset", sink.reset)
    control_runner = web.AppRunner(control, access_log=None)
    await control_runner.setup()
    await web.TCPSite(control_runner, "127.0.0.1", spec["control_port"]).start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await control_runner.cleanup()
    await runner.cleanup()


if __name__ == "__main__":
    with open(sys.argv[1]) as spec_file:
        asyncio.run(serve(json.load(spec_file)))
