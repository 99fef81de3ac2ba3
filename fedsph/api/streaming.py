"""Mastodon's streaming API: the same streams over WebSocket and as server-sent events.

WebSocket (Elk, Phanpy, Tusky): GET /api/v1/streaming with an Upgrade, the token in
`access_token`, `Authorization: Bearer` or Sec-WebSocket-Protocol, an optional first `stream`
(and `tag`), then `{"type": "subscribe"|"unsubscribe", "stream": …, "tag": …}` messages; each
event is `{"stream": [name, tag?], "event": …, "payload": "<JSON or id>"}`, a refused stream
`{"error": …, "status": …}`; aiohttp pings every HEARTBEAT_SECONDS. Server-sent events
(Mastodon.py's stream_user): GET /api/v1/streaming/user, /user/notification, /public,
/public/local, /public/remote, /hashtag?tag=, /hashtag/local?tag= (or /api/v1/streaming?stream=
without an Upgrade), `event: …` / `data: …` lines and a comment line as heartbeat. Events:
`update`, `status.update`, `delete`, `notification` (docs.joinmastodon.org/methods/streaming).

Every HEARTBEAT_SECONDS an open stream asks again whether its token still holds: a revoked or
expired token, or a member who left the project, ends the stream. Where events come from and how
they reach this process: fedsph/projects/stream_events.py and fedsph/api/stream_hub.py; what
each stream gets: fedsph/api/stream_filters.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from aiohttp import WSMsgType, web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from fedsph.accounts import hash_token
from fedsph.api.errors import CORS_HEADERS, ApiError
from fedsph.api.stream_filters import (
    Stream,
    StreamError,
    followed_ids,
    matching,
    parse_stream,
    payload,
)
from fedsph.api.stream_hub import Listener, Row, StreamHub
from fedsph.api.tokens import Caller, bearer_token, caller_for
from fedsph.i18n import LANG
from fedsph.models import Actor
from fedsph.web.client_address import client_address
from fedsph.web.keys import ENGINE, READERS

log = logging.getLogger("fedsph.streaming")

HUB = web.AppKey("stream_hub", StreamHub)
HEARTBEAT_SECONDS = 15.0  # Mastodon's streaming server also beats every 15 s
# aiohttp does not stop a handler whose client left; an event stream looks this often, so a
# closed one stops counting against its token's and address's limits.
GONE_CHECK_SECONDS = 1.0
MAX_CLIENT_MESSAGE = 4096  # a subscribe message is some 60 bytes
MAX_STREAMS = 16  # per WebSocket connection
BATCH = 50
# A boost is an `update` whose status has a `reblog`; a boost taken back, a `delete` of its id.
EVENT_NAMES = {"reblog": "update", "unreblog": "delete"}
# The app went away, stopped reading (a write that waits HEARTBEAT_SECONDS) or the database
# pool had no connection for us: the stream ends, the app reconnects.
GONE = (ConnectionError, TimeoutError, PoolTimeout)
# The database failed under an open stream: logged once, the stream ends (the app reconnects).
FAILED = (SQLAlchemyError, OSError)
SSE_PATHS = {"user": "user", "user/notification": "user:notification", "public": "public",
             "public/local": "public:local", "public/remote": "public:remote",
             "hashtag": "hashtag", "hashtag/local": "hashtag:local"}


def setup(app: web.Application) -> None:
    """The hub starts with the application and closes every stream at shutdown, before the
    database does (on_shutdown runs before the cleanup contexts end)."""
    async def start(app: web.Application) -> None:
        app[HUB] = StreamHub(app[ENGINE], app[READERS])

    async def stop(app: web.Application) -> None:
        if HUB in app:
            await app[HUB].close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)


def add_routes(app: web.Application) -> None:
    """GET only: a HEAD of a stream would hold its connection open with nothing to send."""
    app.router.add_route("GET", "/api/v1/streaming/health", health)
    app.router.add_route("HEAD", "/api/v1/streaming/health", health)
    app.router.add_route("GET", "/api/v1/streaming", streaming)
    app.router.add_route("GET", "/api/v1/streaming/", streaming)
    app.router.add_route("GET", "/api/v1/streaming/{path:.+}", server_sent_events)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


def _address(request: web.Request) -> str:
    """The app's address, not the reverse proxy's (FEDSPH_TRUSTED_PROXIES), as for logins."""
    return client_address(request)


async def _authenticate(request: web.Request, token: str | None) -> Caller | None:
    return await caller_for(request, token) if token else None


def _listener(request: web.Request, token: str | None, caller: Caller | None) -> Listener:
    """The stream's place, if there is room (429 otherwise); the caller adds it to the hub in
    the try whose finally removes it, so a cancelled handler never keeps its place."""
    hub = request.app[HUB]
    key = hash_token(token) if token else None
    account = caller.actor.id if caller and caller.actor else None
    if hub.closing or not hub.admits(key, _address(request), account):
        raise ApiError(429, "Too many streams open")
    return Listener(key, _address(request), account)


async def streaming(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await websocket(request)
    return await _sse(request, request.query.get("stream"))


async def server_sent_events(request: web.Request) -> web.StreamResponse:
    name = SSE_PATHS.get(request.match_info["path"].rstrip("/"))
    if name is None:
        raise ApiError(400, "Unknown stream type")
    return await _sse(request, name)


class Connection:
    """One open stream: who it is for, what it subscribed to, its token checked again."""

    def __init__(self, request: web.Request, token: str | None, caller: Caller | None):
        self.request, self.token, self.caller = request, token, caller
        self.streams: list[Stream] = []
        self.checked = time.monotonic()
        self.followed: frozenset[int] | None = None  # reloaded after each token check

    @property
    def me(self) -> Actor | None:
        return self.caller.actor if self.caller else None

    def parse(self, name: str | None, tag: str | None) -> Stream:
        return parse_stream(name, tag, self.me, self.caller.scopes if self.caller else [])

    async def still_allowed(self) -> bool:
        """Every HEARTBEAT_SECONDS: the token still valid (a revoked one ends the stream)."""
        if self.token is None or time.monotonic() - self.checked < HEARTBEAT_SECONDS:
            return True
        self.checked = time.monotonic()
        self.followed = None
        try:
            self.caller = await caller_for(self.request, self.token)
            for stream in self.streams:  # the scopes or the account may have changed
                self.parse(stream.name, stream.tag)
        except ApiError:
            return False
        return True

    async def events(self, rows: list[Row]) -> list[tuple[list[str], str, str]]:
        """(stream label, event, payload) for each row and each stream that wants it."""
        hub, out = self.request.app[HUB], []
        # Few streams read at once (hub.render); a session reads only if something needs it.
        async with hub.render, self.request.app[READERS]() as db:
            if self.followed is None:
                self.followed = await followed_ids(db, self.me)
            for row in rows:
                wanted, boosted = await matching(db, row, self.streams, self.me, self.followed)
                if not wanted:
                    continue
                if self.me is None:  # the same for every stream without an account (and language)
                    data = await hub.anonymous_payload(
                        (row.id, self.request.get(LANG, "en")),
                        lambda row=row: payload(self.request, db, row, None))
                else:
                    data = await payload(self.request, db, row, self.me, boosted)
                if data is not None:
                    out.extend((s.label, EVENT_NAMES.get(row.kind, row.kind), data)
                               for s in wanted)
        return out


async def _next_rows(listener: Listener, timeout: float) -> list[Row]:
    """The rows waiting (up to BATCH), after waiting at most `timeout` for the first."""
    rows = []
    with contextlib.suppress(TimeoutError):
        first = await asyncio.wait_for(listener.queue.get(), timeout)
        if first is not None:
            rows.append(first)
    while len(rows) < BATCH and not listener.queue.empty():
        row = listener.queue.get_nowait()
        if row is not None:
            rows.append(row)
    return rows


async def _sse(request: web.Request, name: str | None) -> web.StreamResponse:
    token = bearer_token(request)
    caller = await _authenticate(request, token)
    connection = Connection(request, token, caller)
    connection.streams.append(connection.parse(name, request.query.get("tag")))
    listener = _listener(request, token, caller)
    try:
        await request.app[HUB].add(listener)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no", **CORS_HEADERS})  # nginx: pass each event at once
        await response.prepare(request)
        await _write(response, b":)\n")
        beat = time.monotonic()
        while not listener.overflowed and await connection.still_allowed():
            rows = await _next_rows(listener, GONE_CHECK_SECONDS)
            if request.transport is None or request.transport.is_closing():
                break  # the app went away: its place counts no longer
            if not rows:
                if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                    await _write(response, b":thump\n")
                    beat = time.monotonic()
                continue
            for _, event, data in await connection.events(rows):
                await _write(response, f"event: {event}\ndata: {data}\n\n".encode())
    except GONE:
        pass
    except FAILED as exc:
        log.warning("stream ended: %r", exc)
    finally:
        request.app[HUB].remove(listener)
    return response


def _protocol_token(request: web.Request) -> str | None:
    """Browsers cannot set headers on a WebSocket: Mastodon takes the token as the protocol."""
    value = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[0].strip()
    return value or None


async def websocket(request: web.Request) -> web.StreamResponse:
    protocol = _protocol_token(request)
    token = bearer_token(request) or protocol
    caller = await _authenticate(request, token)
    listener = _listener(request, token, caller)
    connection = Connection(request, token, caller)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_CLIENT_MESSAGE,
                               protocols=(protocol,) if protocol else ())
    reader = None
    try:
        await request.app[HUB].add(listener)
        await ws.prepare(request)
        if "stream" in request.query:
            await _subscribe(ws, connection, request.query.get("stream"),
                             request.query.get("tag"))
        reader = asyncio.create_task(_read_client(ws, connection, listener))
        while not ws.closed and not reader.done() and not listener.overflowed:
            if not await connection.still_allowed():
                await _send(ws, {"error": "The access token was revoked", "status": 401})
                break
            rows = await _next_rows(listener, HEARTBEAT_SECONDS)
            for label, event, data in await connection.events(rows) if rows else []:
                await _send(ws, {"stream": label, "event": event, "payload": data})
    except GONE:
        pass
    except FAILED as exc:
        log.warning("stream ended: %r", exc)
    finally:
        request.app[HUB].remove(listener)
        if reader is not None:
            reader.cancel()
            # Its end retrieved, without awaiting it here (a cancelled handler stays cancelled).
            reader.add_done_callback(_retrieved)
        if ws.prepared and not ws.closed:
            with contextlib.suppress(*GONE):
                async with asyncio.timeout(GONE_CHECK_SECONDS):
                    await ws.close()
    return ws


def _retrieved(task: asyncio.Task) -> None:
    """The client reader's end: the app leaving is expected, anything else is logged."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, GONE):
        log.warning("stream reader ended: %r", exc)


async def _write(response: web.StreamResponse, data: bytes) -> None:
    """A write the app does not read for HEARTBEAT_SECONDS ends the stream (TimeoutError)."""
    async with asyncio.timeout(HEARTBEAT_SECONDS):
        await response.write(data)


async def _send(ws: web.WebSocketResponse, message: dict) -> None:
    async with asyncio.timeout(HEARTBEAT_SECONDS):
        await ws.send_str(orjson.dumps(message).decode())


async def _subscribe(ws: web.WebSocketResponse, connection: Connection, name, tag) -> None:
    try:
        stream = connection.parse(name if isinstance(name, str) else None,
                                  tag if isinstance(tag, str) else None)
    except StreamError as error:
        await _send(ws, {"error": error.error, "status": error.status})
        return
    if stream not in connection.streams:
        if len(connection.streams) >= MAX_STREAMS:
            await _send(ws, {"error": "Too many streams", "status": 400})
            return
        connection.streams.append(stream)


async def _read_client(ws: web.WebSocketResponse, connection: Connection,
                       listener: Listener) -> None:
    """Subscribe and unsubscribe messages, until the app closes; then wake the sender."""
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                body = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                body = None
            if not isinstance(body, dict) or body.get("type") not in ("subscribe", "unsubscribe"):
                await _send(ws, {"error": "Bad message", "status": 400})
                continue
            if body["type"] == "subscribe":
                await _subscribe(ws, connection, body.get("stream"), body.get("tag"))
                continue
            with contextlib.suppress(StreamError):
                gone = connection.parse(body.get("stream") if isinstance(body.get("stream"), str)
                                        else None,
                                        body.get("tag") if isinstance(body.get("tag"), str)
                                        else None)
                if gone in connection.streams:
                    connection.streams.remove(gone)
    finally:
        with contextlib.suppress(asyncio.QueueFull):
            listener.queue.put_nowait(None)

