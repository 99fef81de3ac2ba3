"""A fetched document that arrives in pieces is read whole (a bug found behind Caddy, see
tests/test_deploy_caddy.py): aiohttp's StreamReader.read(n) returns what has arrived so far,
so fedsph read the first TLS record of an actor document and called it "not JSON"."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from fedsph.errors import FetchError
from fedsph.federation import remote as remote_module
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.remote import MAX_FETCH_BYTES, Remote, Signer, make_client_session
from tests.fakepeer import free_port


async def _pieces(request: web.Request) -> web.StreamResponse:
    """The document in three writes with pauses between them; `big` pads past the limit."""
    document = json.dumps({"id": "x", "padding": "p" * (
        MAX_FETCH_BYTES if request.query.get("big") else 5000)}).encode()
    response = web.StreamResponse(headers={"Content-Type": "application/activity+json"})
    await response.prepare(request)
    third = len(document) // 3
    for start in (0, third, 2 * third):
        await response.write(document[start:start + third if start < 2 * third else None])
        await asyncio.sleep(0.05)
    await response.write_eof()
    return response


async def _refusal_in_pieces(request: web.Request) -> web.StreamResponse:
    """An inbox's refusal, its explanation (3000 bytes) in three writes with pauses."""
    await request.read()
    response = web.StreamResponse(status=400, headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for letter in "abc":
        await response.write(letter.encode() * 1000)
        await asyncio.sleep(0.05)
    await response.write_eof()
    return response


async def _accepted_then_cut(request: web.Request) -> web.StreamResponse:
    """A 202 whose Content-Length promises 100 bytes; the connection closes after 5."""
    await request.read()
    response = web.StreamResponse(status=202, headers={"Content-Length": "100"})
    await response.prepare(request)
    await response.write(b"hello")
    request.transport.close()
    return response


async def _accepted_then_trickled(request: web.Request) -> web.StreamResponse:
    """A 202 whose body comes a byte at a time, slower than anyone should wait for."""
    await request.read()
    response = web.StreamResponse(status=202, headers={"Content-Length": "100"})
    await response.prepare(request)
    for _ in range(100):
        await response.write(b"x")
        await asyncio.sleep(0.2)
    return response


@pytest.fixture
async def server():
    app = web.Application()
    app.router.add_get("/doc", _pieces)
    app.router.add_post("/doc", _refusal_in_pieces)
    app.router.add_post("/cut", _accepted_then_cut)
    app.router.add_post("/trickle", _accepted_then_trickled)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/doc"
    await runner.cleanup()


async def test_a_document_in_pieces_is_read_whole_and_a_long_one_refused(server):
    private_pem, _ = generate_rsa_keypair()
    async with make_client_session(allow_private=True, timeout=10) as session:
        remote = Remote(session, Signer("https://node.example/actor#main-key", private_pem),
                        allow_private=True)
        document = await remote.fetch_json(server)
        assert document["id"] == "x" and len(document["padding"]) == 5000
        with pytest.raises(FetchError, match="larger than"):
            await remote.fetch_json(server + "?big=1")


async def test_a_delivery_answer_in_pieces_is_kept_up_to_its_limit(server):
    """post_signed keeps the first 2048 bytes of an inbox's answer (for the delivery's log),
    not only the part that had arrived when it read."""
    private_pem, _ = generate_rsa_keypair()
    async with make_client_session(allow_private=True, timeout=10) as session:
        remote = Remote(session, Signer("https://node.example/actor#main-key", private_pem),
                        allow_private=True)
        result = await remote.post_signed(server, b"{}", remote.instance_signer)
        assert result.status == 400 and result.text == "a" * 1000 + "b" * 1000 + "c" * 48


async def test_an_accepted_delivery_whose_answer_is_cut_short_stays_accepted(server):
    """The status decides a delivery: a 202 whose body ends before its Content-Length is still a
    202 (an error here would retry, i.e. deliver twice); what arrived is kept, marked as cut."""
    private_pem, _ = generate_rsa_keypair()
    async with make_client_session(allow_private=True, timeout=10) as session:
        remote = Remote(session, Signer("https://node.example/actor#main-key", private_pem),
                        allow_private=True)
        result = await remote.post_signed(server.replace("/doc", "/cut"), b"{}",
                                          remote.instance_signer)
    assert result.status == 202, result
    assert result.text.startswith("hello [answer cut: ClientPayloadError"), result.text


async def test_an_accepted_delivery_whose_answer_trickles_does_not_hold_the_worker(
        server, monkeypatch):
    """A body trickled a byte at a time is given ANSWER_READ_SECONDS, not the session's whole
    timeout: the 202 stands, with the bytes that came."""
    monkeypatch.setattr(remote_module, "ANSWER_READ_SECONDS", 0.5)
    private_pem, _ = generate_rsa_keypair()
    async with make_client_session(allow_private=True, timeout=30) as session:
        remote = Remote(session, Signer("https://node.example/actor#main-key", private_pem),
                        allow_private=True)
        started = time.monotonic()
        result = await remote.post_signed(server.replace("/doc", "/trickle"), b"{}",
                                          remote.instance_signer)
        took = time.monotonic() - started
    # well under the unpatched 10 s and the whole trickle's 20 s, with room for a loaded machine
    assert result.status == 202 and took < 8, (result, took)
    assert result.text.startswith("x") and result.text.endswith("[answer cut: TimeoutError]")
