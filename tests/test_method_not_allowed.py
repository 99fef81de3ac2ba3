"""A method a route does not take is a 405 with `Allow` (RFC 9110 §15.5.6), in the form the
client reads: JSON for servers and apps, a page for browsers; never the CSRF form error, which
is for forms of ours (issue 13, item 8)."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import func, select

from fedsph.models import InboxItem, Object

ACTIVITY = b'{"type": "Create", "object": {"type": "Note", "content": "hi"}}'


@pytest.mark.parametrize("method, path, headers, kind", [
    ("POST", "/actors/coop/outbox", {"Content-Type": "application/activity+json"}, "json"),
    ("PUT", "/actors/coop/outbox", {"Accept": "application/activity+json"}, "json"),
    ("POST", "/actors/coop", {"Content-Type": "application/ld+json"}, "json"),
    ("POST", "/actors/coop/outbox", {"Accept": "text/html"}, "html"),
    ("PATCH", "/hub", {"Accept": "text/html"}, "html"),
])
async def test_a_method_no_route_takes_is_405_with_allow(node, method, path, headers, kind):
    await node.create_actor("coop")
    async with (aiohttp.ClientSession() as http,
                http.request(method, node.base + path, data=ACTIVITY, headers=headers) as resp):
        body = await resp.text()
        assert resp.status == 405, body
        assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD"}
        assert resp.content_type == ("text/html" if kind == "html" else "application/json")
        assert "could not be accepted" not in body  # the CSRF refusal of forms
    async with node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(InboxItem)) == 0
        assert await db.scalar(select(func.count()).select_from(Object)) == 0


async def test_the_client_api_says_405_as_mastodon_does_with_allow(node):
    async with (aiohttp.ClientSession() as http,
                http.post(f"{node.base}/api/v1/instance", json={}) as resp):
        assert resp.status == 405
        assert "GET" in resp.headers["Allow"].split(",")
        assert await resp.json() == {"error": "Method not allowed"}
