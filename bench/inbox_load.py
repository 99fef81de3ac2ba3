"""The processes of the inbox ingest benchmark (bench/ingest.py), each run on its own:

`python -m bench.inbox_load peer PORT ACTOR.json`: serves one actor document (the signer's key)
    at its path, as the sending server would, so fedsph can fetch the key on loopback.
`python -m bench.inbox_load sign JOB.json OUT`: signs every request beforehand (draft-cavage, as
    Mastodon does) and writes them to OUT, so the load generator only POSTs.
`python -m bench.inbox_load post URL REQUESTS SENDERS`: POSTs the requests to URL from SENDERS
    concurrent senders (each its own keep-alive connection and its own requests); prints
    {"seconds", "statuses", "accepted": [activity ids answered 202]}.
`python -m bench.inbox_load bare PORT`: the baseline, a bare aiohttp handler that reads the body
    and answers 202.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections import Counter

import aiohttp
import orjson
from aiohttp import web

from fedsph.federation.httpsig import sign_request

AS = "https://www.w3.org/ns/activitystreams"


def peer(port: int, actor_file: str) -> None:
    with open(actor_file, "rb") as f:
        document = orjson.loads(f.read())
    body = orjson.dumps(document)
    path = document["id"].split(f":{port}", 1)[1]

    async def actor(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/activity+json")

    app = web.Application()
    app.router.add_get(path, actor)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def sign(job_file: str, out_file: str) -> None:
    """JOB: inbox, actor (uri), key_id, private_pem, senders, per_sender, run (a tag that keeps
    ids unique across runs). Each request is a Create of a Note with its own activity id."""
    with open(job_file) as f:
        job = json.load(f)
    requests = []
    for sender in range(job["senders"]):
        for n in range(job["per_sender"]):
            note_id = f"{job['actor']}/notes/{job['run']}-{sender}-{n}"
            body = orjson.dumps({
                "@context": AS, "id": note_id + "/activity", "type": "Create",
                "actor": job["actor"], "to": [f"{AS}#Public"],
                "object": {"id": note_id, "type": "Note", "attributedTo": job["actor"],
                           "to": [f"{AS}#Public"], "content": f"<p>note {sender}-{n}</p>",
                           "published": "2026-01-01T00:00:00Z"}})
            headers = sign_request("POST", job["inbox"], job["key_id"], job["private_pem"],
                                   body=body)
            requests.append({"sender": sender, "id": note_id + "/activity", "headers": headers,
                             "body": base64.b64encode(body).decode()})
    with open(out_file, "wb") as f:
        f.write(orjson.dumps(requests))


async def post(url: str, requests: list[dict], senders: int) -> dict:
    queues: list[list[tuple[str, dict, bytes]]] = [[] for _ in range(senders)]
    for request in requests:
        queues[request["sender"] % senders].append(
            (request["id"], request["headers"], base64.b64decode(request["body"])))
    statuses: Counter[str] = Counter()
    accepted: list[str] = []
    connector = aiohttp.TCPConnector(limit=senders)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender(queue):
            for activity_id, headers, body in queue:
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        statuses[str(resp.status)] += 1
                        if resp.status == 202:
                            accepted.append(activity_id)
                except aiohttp.ClientError as exc:
                    statuses[type(exc).__name__] += 1

        started = time.monotonic()
        await asyncio.gather(*(sender(queue) for queue in queues))
        seconds = time.monotonic() - started
    return {"seconds": seconds, "statuses": dict(statuses), "accepted": accepted}


def bare(port: int) -> None:
    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202, text="")

    async def up(_request: web.Request) -> web.Response:
        return web.Response(text="up")

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    app.router.add_get("/", up)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main(argv: list[str]) -> None:
    command = argv[0]
    if command == "peer":
        peer(int(argv[1]), argv[2])
    elif command == "sign":
        sign(argv[1], argv[2])
        print("{}")
    elif command == "post":
        with open(argv[2], "rb") as f:
            requests = orjson.loads(f.read())
        print(json.dumps(asyncio.run(post(argv[1], requests, int(argv[3])))))
    elif command == "bare":
        bare(int(argv[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
