"""Helpers for the streaming API's tests: WebSocket URL, receiving until a condition holds."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from fedsph.models import Follow
from tests.support.members import api, member_token


def ws_url(node, query: str = "") -> str:
    return "ws" + node.base[len("http"):] + "/api/v1/streaming" + (f"?{query}" if query else "")


async def receive(ws, until, timeout: float = 10) -> list[dict]:
    """Messages until `until(messages)` holds (ping/pong are handled by aiohttp)."""
    got: list[dict] = []
    async with asyncio.timeout(timeout):
        while not until(got):
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            got.append(json.loads(message.data))
    return got


def has_event(event: str, check=lambda payload: True):
    def found(messages):
        return any(m.get("event") == event and check(m["payload"]) for m in messages)
    return found


def status_with(text: str):
    return lambda payload: text in json.loads(payload)["content"]


async def accepted_follow(node, follower, followed) -> None:
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=follower.id, followed_id=followed.id, state="accepted",
                      activity_uri=f"{follower.uri}#follows/{followed.id}"))


async def boost_scene(node) -> tuple[str, str, str, dict]:
    """ana, bea (who follows ana) and carla (followed by nobody), and a post of carla's for ana
    to boost: (ana's token, bea's token, carla's token, the post)."""
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    carla_token, _carla = await member_token(node, "carla", None)
    await accepted_follow(node, bea, ana)
    _, posted = await api(node, carla_token, "POST", "/api/v1/statuses",
                          data={"status": "Carla cuenta algo"})
    return ana_token, bea_token, carla_token, posted
