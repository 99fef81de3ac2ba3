"""Browser rules on every response, and forms that store only http(s) links (issue 10, "Output")."""

from __future__ import annotations

import aiohttp
import orjson
from sqlalchemy import func, select, update

from fedsph.models import Actor, Event, OAuthApp
from fedsph.web.headers import content_security_policy, form_source
from tests.support.members import CSRF_RE, browser, login, make_user, multipart

HTML_PAGES = ["/", "/login", "/actors/coop", "/tags/casa", "/no-such-page"]


async def get(url: str, accept: str = "text/html"):
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Accept": accept},
                                                         allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers


def directives(policy: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in policy.split("; ")}


async def test_every_html_page_sends_the_csp_and_frame_rules(node):
    await node.create_actor("coop", "Group")
    for path in HTML_PAGES:
        status, headers = await get(node.base + path)
        assert status in (200, 404), path
        policy = directives(headers["Content-Security-Policy"])
        assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'", path
        assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'", path
        assert "script-src" not in policy, path  # default-src 'none' refuses every script
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path


async def test_json_and_redirects_are_nosniff_too(node):
    await node.create_actor("coop", "Group")
    for path, accept in (("/actors/coop", "application/activity+json"),
                         ("/.well-known/nodeinfo", "application/json"),
                         ("/api/v1/instance", "application/json"),
                         ("/actors/coop/compose", "text/html")):  # a redirect to the login page
        status, headers = await get(node.base + path, accept)
        assert status in (200, 302, 303), (path, status)
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path


def test_form_targets_cannot_widen_the_policy_beyond_one_origin():
    assert form_source("https://app.example/callback?x=1") == "https://app.example:443"
    assert form_source("http://127.0.0.1:8080/cb") == "http://127.0.0.1:8080"
    assert form_source("com.example.app:/oauth") == "com.example.app:"
    for hostile in ("javascript:alert(1)", "data:text/html,x", "https://a.example;script-src *",
                    "x y:/", "https://a.example, https://b.example", "urn:ietf:wg:oauth:2.0:oob"[:0]):
        source = form_source(hostile)
        assert source is None or (";" not in source and "," not in source and " " not in source)
    assert form_source("javascript:alert(1)") is None
    policy = directives(content_security_policy(["https://app.example:443"]))
    assert policy["form-action"] == "'self' https://app.example:443"


async def test_oauth_consent_page_lets_its_form_reach_the_app_only(node):
    """Chromium applies form-action to the redirect after the consent form: the app's origin."""
    project = await node.create_actor("coop", "Group")
    await make_user(node, "ana", project)
    async with aiohttp.ClientSession() as http, http.post(f"{node.base}/api/v1/apps", data={
            "client_name": "App", "redirect_uris": "https://app.example/cb",
            "scopes": "read", "website": "https://app.example/"}) as response:
        app = orjson.loads(await response.read())
    # The API refuses such a website now (test_oauth.py); a row stored before that still renders
    # as text, never as a link.
    async with node.writers() as db, db.begin():
        await db.execute(update(OAuthApp).where(OAuthApp.client_id == app["client_id"])
                         .values(website="javascript:alert(1)"))
    async with browser() as client:
        await login(client, node, "ana")
        async with client.get(f"{node.base}/oauth/authorize", params={
                "client_id": app["client_id"], "redirect_uri": "https://app.example/cb",
                "response_type": "code", "scope": "read"}) as response:
            assert response.status == 200
            body = await response.text()
            policy = directives(response.headers["Content-Security-Policy"])
    assert policy["form-action"] == "'self' https://app.example:443"
    assert policy["frame-ancestors"] == "'none'"
    assert "javascript:alert(1)" in body and 'href="javascript:' not in body


async def test_profile_form_refuses_script_links_and_stores_nothing(node):
    project = await node.create_actor("coop", "Group")
    await make_user(node, "ana", project)
    async with browser() as client:
        await login(client, node, "ana")
        edit = f"{node.base}/actors/coop/edit"
        for field, value in (("link_url_0", "javascript:alert(1)"),
                             ("link_url_0", "https://ok.example/\\@evil.example"),
                             ("partner_url_0", "data:text/html,<script>x</script>"),
                             ("icon_url", "JAVASCRIPT:alert(1)")):
            async with client.get(edit) as response:
                token = CSRF_RE.search(await response.text()).group(1)
            fields = {"link_kind_0": "website", "link_title_0": "Site",
                      "partner_name_0": "P", field: value}
            async with client.post(edit, data=multipart(token, fields),
                                   allow_redirects=False) as response:
                assert response.status == 400, (field, value)
                assert "is not an http(s) URL" in await response.text()
    async with node.readers() as db:
        stored = await db.get(Actor, project.id)
    assert not (stored.profile or {}).get("links") and not (stored.profile or {}).get("partners")
    assert stored.icon_url is None


async def test_event_form_refuses_a_script_online_link_and_stores_nothing(node):
    project = await node.create_actor("coop", "Group")
    await make_user(node, "ana", project)
    async with browser() as client:
        await login(client, node, "ana")
        new = f"{node.base}/actors/coop/events/new"
        # A backslash: browsers read https://ok.example\@evil.example/ as a link to evil.example.
        for online in ("javascript:alert(1)", "https://ok.example\\@evil.example/"):
            async with client.get(new) as response:
                token = CSRF_RE.search(await response.text()).group(1)
            async with client.post(new, allow_redirects=False, data={
                    "csrf": token, "name": "Asamblea", "lang": "es", "start": "2030-05-01T18:00",
                    "tz": "UTC", "online": online}) as response:
                assert response.status == 400, online
    async with node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(Event)) == 0
