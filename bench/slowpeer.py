"""A slow fediverse server for the joins benchmark: `python -m bench.slowpeer PORT DELAY COUNT`.

Serves COUNT project (Group) actors at /users/p<n> with their outboxes, and answers every GET
after DELAY seconds (a remote server under load, far away); POSTs to an inbox are accepted at
once (the hub's Accept and Follow). GET /_stats (not delayed, not counted) gives the number of
delayed GETs answered so far, which is what a sequential worker would have waited for.
All actors share one public key: the benchmark puts their Joins straight into the hub's queue,
so no signature is checked (key generation would otherwise dominate the setup).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web

from fedsph.federation.crypto import generate_rsa_keypair

AS = "https://www.w3.org/ns/activitystreams"


class SlowPeer:
    def __init__(self, base: str, delay: float, count: int):
        self.base, self.delay, self.count = base, delay, count
        self.public_pem = generate_rsa_keypair()[1]
        self.gets = self.posts = 0
        self.waiting = self.most_waiting = 0  # GETs being answered at once: the worker's overlap

    def actor(self, name: str) -> dict:
        uri = f"{self.base}/users/{name}"
        return {"@context": [AS, "https://w3id.org/security/v1"], "id": uri, "type": "Group",
                "preferredUsername": name, "name": f"Project {name}", "inbox": f"{uri}/inbox",
                "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
                "endpoints": {"sharedInbox": f"{self.base}/inbox"},
                "publicKey": {"id": f"{uri}#main-key", "owner": uri,
                              "publicKeyPem": self.public_pem}}

    async def get(self, request: web.Request) -> web.Response:
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.waiting -= 1
        self.gets += 1
        name, _, rest = request.match_info["tail"].partition("/")
        if not name.startswith("p") or not name[1:].isdigit() or int(name[1:]) >= self.count:
            return web.Response(status=404)
        if rest == "outbox":
            uri = f"{self.base}/users/{name}/outbox"
            document = {"@context": AS, "id": uri, "type": "OrderedCollection", "totalItems": 0,
                        "orderedItems": []}
        elif rest == "":
            document = self.actor(name)
        else:
            return web.Response(status=404)
        return web.json_response(document, content_type="application/activity+json")

    async def post(self, _request: web.Request) -> web.Response:
        self.posts += 1
        return web.Response(status=202)

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response({"gets": self.gets, "posts": self.posts,
                                  "most_waiting": self.most_waiting})


async def serve(port: int, delay: float, count: int) -> None:
    peer = SlowPeer(f"http://127.0.0.1:{port}", delay, count)
    app = web.Application()
    app.router.add_get("/_stats", peer.stats)
    app.router.add_get("/users/{tail:.*}", peer.get)
    app.router.add_post("/{tail:.*}", peer.post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
