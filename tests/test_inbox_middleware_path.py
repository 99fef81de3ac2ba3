"""A POST to an inbox skips the middlewares made for people and apps (fedsph/web/middleware.py,
`servers_apart`): only the inbox routes do, decided by the route that matched, and what those
requests are refused with is unchanged."""

from __future__ import annotations

import aiohttp
import orjson

from fedsph.accounts import SESSION_COOKIE
from fedsph.core.urls import INBOX_ROUTES
from fedsph.web.activitypub import inbox_view
from fedsph.web.auth_middleware import CSRF_EXEMPT_ROUTES
from tests.support.db import inbox_items
from tests.support.inbox import follow, project_and_sender


def test_the_short_path_is_the_inbox_handler_and_nothing_else(node):
    posts = {route.resource.canonical: route.handler for route in node.app.router.routes()
             if route.method == "POST" and route.resource is not None}
    assert {path for path, handler in posts.items() if handler is inbox_view} == INBOX_ROUTES
    assert INBOX_ROUTES <= CSRF_EXEMPT_ROUTES


async def test_an_unsigned_inbox_post_from_a_browser_is_still_a_401_page(node, peer):
    project, alice, _ = await project_and_sender(node, peer)
    body = orjson.dumps(follow(peer, alice, project.uri))
    headers = {"Content-Type": "application/activity+json", "Accept": "text/html",
               "Accept-Language": "es"}
    cookies = {SESSION_COOKIE: "x" * 40, "lang": "es"}
    async with (aiohttp.ClientSession(cookies=cookies) as browser,
                browser.post(f"{node.base}/inbox?lang=es", data=body, headers=headers) as resp):
        assert resp.status == 401
        assert resp.content_type == "text/html"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in resp.headers
        assert "Set-Cookie" not in resp.headers  # no session, no CSRF token made for it
    assert await inbox_items(node) == []


async def test_look_alike_paths_take_the_long_way(node, peer):
    async with aiohttp.ClientSession() as browser:
        # Ends in "/inbox" but is the invitation form: a form POST without its CSRF token.
        async with browser.post(f"{node.base}/invite/abc%2Finbox", data={"x": "1"}) as resp:
            assert resp.status == 403
        for path in ("/inbox/", "/actors/coop/inbox/", "/actor/inbox/"):
            async with browser.post(node.base + path, data=b"{}", headers={
                    "Content-Type": "application/activity+json"}) as resp:
                assert resp.status == 404, path
    assert await inbox_items(node) == []
