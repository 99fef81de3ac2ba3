"""Drives a real bovine-herd server for tests/test_peers_bovine.py.

Runs with the peers python (.venv-peers), never imported by the fedsph test suite. Subcommands:

  serve    --db FILE --port N                 bovine-herd (quart) under hypercorn on 127.0.0.1:N
  register --db FILE --base URL --handle H    new user; prints {"actor_id", "secret"} as JSON
  follow   --base URL --secret S TARGET       outbox gets Follow{TARGET}
  accept-follows --base URL --secret S        the user accepts every Follow in its inbox
  post     --base URL --secret S TEXT         outbox gets a public Create{Note} (cc followers)
  post-direct --base URL --secret S TO TEXT   outbox gets a Create addressed (on the activity
                                              only) to TO, its Note unaddressed
  inbox    --base URL --secret S              prints the user's inbox activities as a JSON list

Client commands authenticate with Moo-Auth-1 (an Ed25519 did:key added to the user at
registration), the way bovine's own clients talk to their server. The server builds its ids
from the request URL, so serving plain http on 127.0.0.1:N gives http://127.0.0.1:N/... ids.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys


def serve(db: str, port: int) -> None:
    from bovine_herd import BovineHerd
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from quart import Quart

    # bovine logs why it drops a request or a delivery at INFO; the test prints this log on failure.
    logging.basicConfig(level=logging.INFO)
    app = Quart("bovine_peer")
    BovineHerd(app, db_url=f"sqlite://{db}")
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = "-"
    asyncio.run(hypercorn_serve(app, config))


async def register(db: str, base: str, handle: str) -> dict:
    from bovine.crypto import generate_ed25519_private_key, private_key_to_did_key
    from bovine_store import bovine_admin_store
    from tortoise import Tortoise

    # `base` carries the scheme, so the user's endpoints are http://127.0.0.1:N/endpoints/...
    async with bovine_admin_store(db_url=f"sqlite://{db}", domain=base) as store:
        await Tortoise.generate_schemas(safe=True)
        bovine_name = await store.register(handle)
        secret = generate_ed25519_private_key()
        did_key = private_key_to_did_key(secret)
        await store.add_identity_string_to_actor(bovine_name, "client", did_key)
        actor = await store.actor_for_name(bovine_name)
        actor_id = actor.actor_id
        if actor.session:
            await actor.session.close()
    return {"actor_id": actor_id, "secret": secret, "bovine_name": bovine_name}


async def with_client(base: str, secret: str, action):
    from bovine import BovineClient

    # domain with scheme: the did:key webfinger lookup goes to http://, not https://
    async with BovineClient(domain=base, secret=secret) as client:
        return await action(client)


async def outbox_post(client, activity: dict) -> dict:
    response = await client.send_to_outbox(activity)
    if response.status != 201:
        raise SystemExit(f"outbox answered {response.status}: {await response.text()}")
    return {"location": response.headers.get("location")}


async def inbox_items(client) -> list:
    """Every activity in the user's inbox, resolved through the server's proxyUrl endpoint."""
    # Fewer than 10 items come inline; the tests never put more in one inbox.
    collection = await client.get(client.information["inbox"])
    activities = []
    for item in collection.get("orderedItems", collection.get("items", [])):
        activities.append(item if isinstance(item, dict) else await client.proxy(item))
    return activities


def id_of(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


async def follow(client, target: str) -> dict:
    return await outbox_post(client, client.activity_factory.follow(target).build())


async def accept_follows(client) -> dict:
    accepted = []
    for activity in await inbox_items(client):
        # proxyUrl answers with "actor" and "object" resolved to documents, hence id_of
        if activity.get("type") == "Follow" and id_of(activity.get("object")) == client.actor_id:
            accept = client.activity_factory.accept(activity).build()
            await outbox_post(client, accept)
            accepted.append(id_of(activity.get("actor")))
    return {"accepted": accepted}


async def post(client, text: str) -> dict:
    activity_factory, object_factory = client.factories
    # Public (to Public, cc followers): fedsph's home page lists public and unlisted posts only.
    note = object_factory.note(content=text).as_public().build()
    return await outbox_post(client, activity_factory.create(note).build())


async def post_direct(client, target: str, text: str) -> dict:
    """A Create whose Note carries no addressing: only the activity is addressed, to `target`
    (issue 13: some servers address the activity alone). bovine delivers by the activity's."""
    note = {"type": "Note", "attributedTo": client.actor_id, "content": text}
    activity = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
                "actor": client.actor_id, "to": [target], "object": note}
    return await outbox_post(client, activity)


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve")
    p.add_argument("--db", required=True)
    p.add_argument("--port", type=int, required=True)
    p = commands.add_parser("register")
    p.add_argument("--db", required=True)
    p.add_argument("--base", required=True)
    p.add_argument("--handle", required=True)
    for name in ("follow", "accept-follows", "post", "inbox", "post-direct"):
        p = commands.add_parser(name)
        p.add_argument("--base", required=True)
        p.add_argument("--secret", required=True)
        if name in ("follow", "post", "post-direct"):
            p.add_argument("argument")
        if name == "post-direct":
            p.add_argument("text")
    args = parser.parse_args()

    if args.command == "serve":
        serve(args.db, args.port)
        return
    if args.command == "register":
        result = asyncio.run(register(args.db, args.base, args.handle))
    else:
        actions = {
            "follow": lambda client: follow(client, args.argument),
            "accept-follows": accept_follows,
            "post": lambda client: post(client, args.argument),
            "post-direct": lambda client: post_direct(client, args.argument, args.text),
            "inbox": inbox_items,
        }
        result = asyncio.run(with_client(args.base, args.secret, actions[args.command]))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
