"""A small fediverse server for tests: hosts actors with RSA keys, signs what it sends, and
records (and verifies) everything delivered to it. Runs on loopback in the test's event loop."""

from __future__ import annotations

import itertools
import os
import socket
import ssl
import uuid
from dataclasses import dataclass, field

import aiohttp
import orjson
from aiohttp import web

from fedsph.errors import Unauthorized
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.httpsig import parse_signature_header, sign_request, verify_request

AS = "https://www.w3.org/ns/activitystreams"


# Ports are handed out from a block of their own to each pytest-xdist worker of each engine's run
# (`make test` runs both at once), below the kernel's ephemeral range (32768 up): asking the kernel
# for port 0 and closing it, as this once did, let two workers, or an outgoing connection, get the
# same port between the check and the server's bind.
PORT_BASE, PORT_BLOCK, WORKER_BLOCKS = 20000, 750, 8
_next_port = itertools.count()


def _port_block() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    engine = 1 if os.environ.get("FEDSPH_TEST_DATABASE", "").lower().startswith("p") else 0
    return engine * WORKER_BLOCKS + (int(worker) if worker.isdigit() else 0) % WORKER_BLOCKS


def free_port() -> int:
    """A loopback port nobody listens on, not handed out before by this process (until it wraps)."""
    first = PORT_BASE + _port_block() * PORT_BLOCK
    for _ in range(PORT_BLOCK):
        port = first + next(_next_port) % PORT_BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + PORT_BLOCK - 1}")


@dataclass
class PeerActor:
    username: str
    uri: str
    key_id: str
    private_pem: str
    public_pem: str
    document: dict


@dataclass
class Received:
    path: str
    headers: dict
    activity: dict
    verified: bool
    error: str | None = None


@dataclass
class FakePeer:
    """An ActivityPub server on 127.0.0.1:<port> with actors at /users/<name>."""

    shared_inbox: bool = True
    host: str = "127.0.0.1"  # another loopback address (127.0.0.2) is another host to block
    require_signed_get: bool = False
    port: int = field(default_factory=free_port)
    actors: dict[str, PeerActor] = field(default_factory=dict)
    objects: dict[str, dict] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    key_lookup: dict[str, str] = field(default_factory=dict)  # key id -> PEM of remote senders
    # Hostile-peer tests: any document at any path, redirects, and every request seen.
    documents: dict[str, dict] = field(default_factory=dict)  # path -> JSON served at it
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    tls: ssl.SSLContext | None = None  # serve HTTPS with this server context (tests/support/tls.py)

    def __post_init__(self):
        self.base = f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"
        self.domain = f"{self.host}:{self.port}"
        self._runner: web.AppRunner | None = None
        self.http: aiohttp.ClientSession | None = None

    # -- actors --------------------------------------------------------------------------------

    def add_actor(self, username: str, actor_type: str = "Person", **extra) -> PeerActor:
        private_pem, public_pem = generate_rsa_keypair()
        uri = f"{self.base}/users/{username}"
        document = {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": uri,
            "type": actor_type,
            "preferredUsername": username,
            "name": username.title(),
            "inbox": f"{uri}/inbox",
            "outbox": f"{uri}/outbox",
            "followers": f"{uri}/followers",
            "following": f"{uri}/following",
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": public_pem},
            **extra,
        }
        if self.shared_inbox:
            document["endpoints"] = {"sharedInbox": f"{self.base}/inbox"}
        actor = PeerActor(username, uri, f"{uri}#main-key", private_pem, public_pem, document)
        self.actors[username] = actor
        return actor

    def serve(self, path: str, document: dict) -> str:
        """Serve `document` at `path` (whatever its id says); returns the absolute URL."""
        self.documents[path] = document
        return self.base + path

    def gets(self) -> list[str]:
        """Paths of every GET this server answered (what the node fetched from it)."""
        return [path for method, path in self.requests if method == "GET"]

    def rotate_key(self, actor: PeerActor) -> None:
        """New key pair under the same key id (what a key rotation looks like to others)."""
        actor.private_pem, actor.public_pem = generate_rsa_keypair()
        actor.document["publicKey"]["publicKeyPem"] = actor.public_pem

    def new_id(self, kind: str = "activities") -> str:
        return f"{self.base}/{kind}/{uuid.uuid4().hex}"

    # -- HTTP out ------------------------------------------------------------------------------

    async def post(self, actor: PeerActor, inbox: str, activity: dict | bytes,
                   extra_headers: dict | None = None) -> tuple[int, str]:
        body = activity if isinstance(activity, bytes) else orjson.dumps(activity)
        headers = sign_request("POST", inbox, actor.key_id, actor.private_pem, body=body)
        headers.update(extra_headers or {})
        async with self.http.post(inbox, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def get(self, actor: PeerActor | None, url: str, accept: str = "application/activity+json"):
        headers = {"Accept": accept}
        if actor is not None:
            headers.update(sign_request("GET", url, actor.key_id, actor.private_pem))
        async with self.http.get(url, headers=headers) as resp:
            text = await resp.text()
            return resp.status, (orjson.loads(text) if text and resp.content_type.endswith("json") else text)

    # -- HTTP in -------------------------------------------------------------------------------

    async def _actor(self, request: web.Request) -> web.Response:
        actor = self.actors.get(request.match_info["name"])
        if actor is None:
            return web.Response(status=404)
        if self.require_signed_get and "Signature" not in request.headers:
            return web.Response(status=401)
        self.fetched.append(actor.uri)
        return web.Response(body=orjson.dumps(actor.document), content_type="application/activity+json")

    async def _object(self, request: web.Request) -> web.Response:
        document = self.objects.get(f"{self.base}{request.path}")
        if document is None:
            return web.Response(status=404)
        return web.Response(body=orjson.dumps(document), content_type="application/activity+json")

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        activity = orjson.loads(body)
        verified, error = False, None
        try:
            params = parse_signature_header(headers["signature"])
            pem = self.key_lookup.get(params.key_id) or await self._fetch_key(params.key_id)
            verify_request(params, pem, request.method, request.rel_url.raw_path,
                           request.rel_url.raw_query_string, headers, body)
            verified = True
        except (Unauthorized, KeyError, aiohttp.ClientError) as exc:
            error = str(exc)
        self.received.append(Received(request.path, headers, activity, verified, error))
        return web.Response(status=202 if verified else 401)

    async def _fetch_key(self, key_id: str) -> str:
        async with self.http.get(key_id.split("#")[0], headers={"Accept": "application/activity+json"}) as resp:
            document = await resp.json(content_type=None)
        pem = document["publicKey"]["publicKeyPem"]
        self.key_lookup[key_id] = pem
        return pem

    async def _webfinger(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource", "")
        name = resource.removeprefix("acct:").split("@")[0]
        actor = self.actors.get(name)
        if actor is None:
            return web.Response(status=404)
        return web.json_response({
            "subject": f"acct:{name}@{self.domain}",
            "links": [{"rel": "self", "type": "application/activity+json", "href": actor.uri}],
        }, content_type="application/jrd+json")

    def activities(self, activity_type: str | None = None) -> list[dict]:
        return [r.activity for r in self.received
                if r.verified and (activity_type is None or r.activity.get("type") == activity_type)]

    @web.middleware
    async def _hostile(self, request: web.Request, handler):
        self.requests.append((request.method, request.path))
        if request.method == "GET" and request.path in self.redirects:
            raise web.HTTPFound(self.redirects[request.path])
        if request.method == "GET" and request.path in self.documents:
            return web.Response(body=orjson.dumps(self.documents[request.path]),
                                content_type="application/activity+json")
        return await handler(request)

    async def start(self) -> FakePeer:
        app = web.Application(middlewares=[self._hostile])
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/{kind}/{id}", self._object)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls).start()
        self.http = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self.http:
            await self.http.close()
        if self._runner:
            await self._runner.cleanup()
