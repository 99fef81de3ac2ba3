"""Nothing a stranger or a member writes runs in a browser (issue 10, "Output").

The corpus in tests/hostile/xss.py goes in through every door: signed Creates from another server,
rows as another server's data may leave them, the members' web forms, the command line's service
and the client API. Every page that shows it is parsed with html5lib and must have no script, no
event handler and no link outside http(s), relative paths and mailto:.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import aiohttp
import html5lib
from sqlalchemy import select

from fedsph.core.safe_links import http_url
from fedsph.federation.activitystreams import PUBLIC
from fedsph.models import Actor, Object
from fedsph.projects.notes import text_to_html
from fedsph.projects.outbox import publish_post
from fedsph.web.render import safe_href
from tests.hostile.xss import PAYLOADS, problems
from tests.support.images import jpeg
from tests.support.members import CSRF_RE, browser, login, make_user, multipart

# What the old linkifier stored for 'https://x.example/"onmouseover="alert(1)"'.
LEGACY_XSS = ('<p><a href="https://x.example/"onmouseover="alert(1)" rel="nofollow">x</a>'
              "<script>alert(2)</script></p>")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
AS = "https://www.w3.org/ns/activitystreams"


async def page(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Accept": "text/html"}) as r:
        assert r.status == 200, (url, r.status)
        return await r.text()


async def assert_pages_safe(node, paths: list[str]) -> dict[str, str]:
    pages = {}
    for path in paths:
        body = await page(node.base + path)
        assert problems(body) == [], path
        pages[path] = body
    return pages


def remote(kind: str, uri: str) -> str:
    return f"/remote/{kind}?uri={quote(uri, safe='')}"


# -- the one rule in the templates -------------------------------------------------------------

URL_ATTRIBUTE = re.compile(r'\b(href|src|srcset|action|formaction)="\{\{(.*?)\}\}"')
# Builders that only ever return a path on this site or a fixed https URL of our own making.
LOCAL_BUILDERS = ("osm_url(",)
# Our own uploads' renditions (fedsph.projects.media.srcset builds them from this node's URLs).
KNOWN_LOCAL = {"srcset": {"image.srcset"}}


def test_every_template_url_goes_through_safe_href():
    """A new `href="{{ x }}"` that bypasses the filter fails here, so the rule stays one rule."""
    bypasses = []
    for template in sorted(TEMPLATES.glob("*.html")):
        for line_number, line in enumerate(template.read_text().splitlines(), 1):
            for attribute, expression in URL_ATTRIBUTE.findall(line):
                expression = expression.strip()
                if ("|safe_href" in expression or expression.startswith(LOCAL_BUILDERS)
                        or expression in KNOWN_LOCAL.get(attribute, ())):
                    continue
                bypasses.append(f"{template.name}:{line_number}: {attribute}={expression}")
    assert bypasses == []


async def raw_get(node, target: str) -> tuple[int, str]:
    """GET with the request target sent byte for byte (clients would normalise "//host/x")."""
    host, port = node.base.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n"
                 "Connection: close\r\n\r\n".encode())
    answer = (await reader.read()).decode()
    writer.close()
    head, _, body = answer.partition("\r\n\r\n")
    return int(head.split()[1]), body


def language_links(html: str) -> list[str]:
    tree = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)
    return [a.get("href") for a in tree.iter("a") if a.get("hreflang")]


async def test_language_links_never_repeat_the_raw_path(node):
    """`https://node//evil.example/x`: the 404 page's language links stay on this page."""
    status, html = await raw_get(node, "//evil.example/x?next=%2F%2Fevil.example")
    assert status == 404
    links = language_links(html)
    assert links and all(href.startswith("?lang=") or "&lang=" in href for href in links), links
    assert all(href.startswith("?") and "evil.example/" not in href for href in links), links


def test_safe_href_accepts_only_clean_query_only_references():
    assert safe_href("?lang=de&page=2") == "?lang=de&page=2"
    for hostile in ("?lang=de\tx", "?a\nb", "?a b", "?x\x7f", "?" + "a" * 5000, " ?lang=de"):
        assert safe_href(hostile) == "", repr(hostile)


# -- member text ---------------------------------------------------------------------------------

def test_a_quote_in_a_typed_url_cannot_add_attributes():
    """The reported stored XSS: a URL with `"` gained an event handler on the home page."""
    html = text_to_html('see https://evil.example/"onmouseover="alert(1)" now')
    assert problems(html) == []
    links = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False).findall(".//a")
    assert [sorted(a.attrib) for a in links] == [["href", "rel"]]
    assert links[0].get("href") == "https://evil.example/"
    assert 'onmouseover="alert(1)" now' in html  # the rest stays text


def test_typed_text_is_escaped_and_sanitised():
    for payload in PAYLOADS:
        html = text_to_html(payload)
        assert problems(html) == [], payload
        assert "<script" not in html.lower()


# -- from another server -----------------------------------------------------------------------

async def test_corpus_through_the_inbox(node, peer):
    project = await node.create_actor("coop", "Group")
    alice = peer.add_actor("alice", name=PAYLOADS[0], summary="".join(PAYLOADS),
                           url="javascript:alert('actor url')",
                           icon={"type": "Image", "url": "javascript:alert('icon')"},
                           image={"type": "Image", "url": "data:text/html,<script>x</script>"})
    uris = []
    for number, payload in enumerate(PAYLOADS):
        uri = peer.new_id("objects")
        uris.append(uri)
        note = {"id": uri, "type": "Note", "attributedTo": alice.uri, "to": [PUBLIC, project.uri],
                "content": payload, "name": payload, "summary": payload,
                "url": "javascript:alert('object url')" if number % 2 else uri,
                "attachment": [{"type": "Document", "mediaType": "image/png", "name": payload,
                                "url": "javascript:alert('attachment')"}],
                "tag": [{"type": "Hashtag", "name": f"#{number}", "href": "javascript:alert(1)"}]}
        status, text = await peer.post(alice, f"{node.base}/inbox", {
            "@context": AS, "id": peer.new_id(), "type": "Create", "actor": alice.uri,
            "to": note["to"], "object": note})
        assert status == 202, text
    await node.run_worker()
    async with node.readers() as db:
        stored = set(await db.scalars(select(Object.uri).where(Object.local.is_(False))))
    assert stored, "no post was stored: the test would prove nothing"
    paths = [remote("objects", uri) for uri in uris if uri in stored]
    await assert_pages_safe(node, [*paths, remote("actors", alice.uri), "/", "/actors/coop"])
    await assert_stored_urls_are_http(node, alice.uri)
    assert (await assert_api_safe(node, alice.uri))["url"] == alice.uri


async def assert_stored_urls_are_http(node, actor_uri: str) -> None:
    """The rows themselves keep only http(s) URLs (fedsph.core.safe_links), whatever was sent."""
    async with node.readers() as db:
        actor = await db.scalar(select(Actor).where(Actor.uri == actor_uri))
        posts = list(await db.scalars(select(Object).where(Object.actor_id == actor.id)))
    assert (actor.url, actor.icon_url, actor.header_url) == (actor_uri, None, None)
    for post in posts:
        assert http_url(post.url), post.url
        assert all(http_url(item.get("url")) for item in post.attachments or []), post.attachments
        assert all(http_url(tag.get("href", "http://x.example/")) for tag in post.tags or [])


async def api_get(node, path: str):
    async with aiohttp.ClientSession() as http, http.get(node.base + path) as response:
        assert response.status == 200, (path, response.status)
        return await response.json()


def assert_entity_safe(entity: dict) -> None:
    """An Account or Status entity as apps get it: its HTML safe, its URLs http(s)."""
    for html in (entity.get("content"), entity.get("note"),
                 *(field["value"] for field in entity.get("fields", []))):
        assert problems(html or "") == [], html
    for key in ("url", "avatar", "header"):
        assert key not in entity or http_url(entity[key]), entity[key]
    for mention in entity.get("mentions", []):
        assert http_url(mention["url"]), mention
    for nested in (entity.get("account"), *entity.get("media_attachments", [])):
        if nested:
            assert_entity_safe(nested)


async def assert_api_safe(node, actor_uri: str) -> dict:
    """The actor's Account, its statuses, the public timeline and each Status are safe."""
    async with node.readers() as db:
        actor = await db.scalar(select(Actor).where(Actor.uri == actor_uri))
    account = await api_get(node, f"/api/v1/accounts/{actor.id}")
    assert_entity_safe(account)
    statuses = await api_get(node, f"/api/v1/accounts/{actor.id}/statuses")
    assert statuses, "no status reached the API: the test would prove nothing"
    for status in statuses + await api_get(node, "/api/v1/timelines/public"):
        assert_entity_safe(status)
        assert_entity_safe(await api_get(node, f"/api/v1/statuses/{status['id']}"))
    return account


async def test_stored_remote_urls_are_never_links(node):
    """Whatever ends up stored, a page links only http(s): the template side of the rule."""
    async with node.writers() as db, db.begin():
        other = Actor(uri="https://evil.example/actors/x", local=False, type="Group",
                      username="x", domain="evil.example", name='"><img src=x onerror=alert(1)>',
                      url="javascript:alert('actor')", icon_url="javascript:alert('icon')",
                      header_url="data:image/svg+xml,<svg onload=alert(1)>",
                      profile={"links": [{"kind": "website", "url": "javascript:alert('link')",
                                          "title": "<script>alert(1)</script>"}],
                               "partners": [{"name": "P", "url": "vbscript:msgbox(1)"}]})
        db.add(other)
        await db.flush()
        db.add(Object(uri="https://evil.example/objects/1", type="Note", actor_id=other.id,
                      local=False, url="JAVASCRIPT:alert('object')", content=LEGACY_XSS,
                      attachments=[{"type": "Image", "url": "javascript:alert('img')",
                                    "name": '" onerror="alert(1)'}]))
    pages = await assert_pages_safe(node, [remote("actors", other.uri),
                                           remote("objects", "https://evil.example/objects/1")])
    assert "See it there" in pages[remote("actors", other.uri)]  # shown as text, not as a link


async def test_rows_stored_by_older_versions_are_sanitised_by_the_api(node):
    """The client API cleans stored HTML again, as pages do: old rows reach apps harmless."""
    async with node.writers() as db, db.begin():
        old = Actor(uri="https://old.example/users/o", local=False, type="Person", username="o",
                    domain="old.example", name="O", url="https://old.example/@o",
                    summary=LEGACY_XSS, document={"attachment": [
                        {"type": "PropertyValue", "name": "web", "value": LEGACY_XSS}]})
        db.add(old)
        await db.flush()
        db.add(Object(uri="https://old.example/notes/1", type="Note", actor_id=old.id,
                      local=False, url="https://old.example/@o/1", content=LEGACY_XSS,
                      visibility="public"))
    await assert_api_safe(node, old.uri)
    async with node.readers() as db:  # cleaned on the way out; the row itself is untouched
        stored = await db.scalar(select(Object).where(Object.uri == "https://old.example/notes/1"))
    assert stored.content == LEGACY_XSS


async def test_rows_stored_by_older_versions_are_sanitised_when_shown(node):
    """The stored XSS of the report is already in some databases: pages clean HTML again."""
    project = await node.create_actor("coop", "Group")
    async with node.writers() as db, db.begin():
        db.add(Object(uri=f"{project.uri}/objects/old", type="Note", actor_id=project.id,
                      local=True, content=LEGACY_XSS, visibility="public"))
    await assert_pages_safe(node, ["/", "/actors/coop"])
    async with aiohttp.ClientSession() as http, http.get(f"{project.uri}/feed.atom") as response:
        atom = ET.fromstring(await response.read())
    entries = [e.text or "" for e in atom.iter("{http://www.w3.org/2005/Atom}content")]
    assert entries and all(problems(entry) == [] for entry in entries)


# -- from members ------------------------------------------------------------------------------

async def test_corpus_through_the_web_forms(node):
    project = await node.create_actor("coop", "Group")
    await make_user(node, "ana", project)
    joined = "\n\n".join(PAYLOADS)
    async with browser() as client:
        await login(client, node, "ana")
        compose = f"{node.base}/actors/coop/compose"
        async with client.get(compose) as response:
            token = CSRF_RE.search(await response.text()).group(1)
        form = multipart(token, {"title_en": PAYLOADS[17][:200], "text_en": joined,
                                 "summary": PAYLOADS[2], "hashtags": "#casa",
                                 "place_name": PAYLOADS[19], "place_lat": "-34.9",
                                 "place_lon": "-56.1", "alt_1": PAYLOADS[20],
                                 "license_1": "CC-BY-SA-4.0", "author_1": PAYLOADS[3]},
                         {"image_1": jpeg()})
        async with client.post(compose, data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
            post_path = response.headers["Location"]
    await assert_pages_safe(node, ["/", "/actors/coop", post_path, "/tags/casa"])


async def test_corpus_through_the_publishing_service(node):
    """What `fedsph post` and the API call: text, titles, content warning, place."""
    project = await node.create_actor("coop", "Group")
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        posts = [await publish_post(db, node.urls, actor, contents={"en": payload},
                                      title_map={"en": payload[:200]}, summary=payload,
                                      place={"name": payload}) for payload in PAYLOADS[14:26]]
    paths = [post.uri[len(node.base):] for post in posts]
    await assert_pages_safe(node, ["/", "/actors/coop", "/actors/coop?page=2", *paths])


async def test_corpus_through_the_client_api(node):
    """A Mastodon app posts the corpus: the status, its page and the API's HTML are all safe."""
    await make_user(node, "ana")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{node.base}/api/v1/apps", data={
                "client_name": "App", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": "read write"}) as response:
            app = await response.json()
        async with http.post(f"{node.base}/oauth/token", data={
                "grant_type": "password", "client_id": app["client_id"],
                "client_secret": app["client_secret"], "username": "ana",
                "password": "correct horse battery", "scope": "read write"}) as response:
            token = (await response.json())["access_token"]
        async with http.post(f"{node.base}/api/v1/statuses", json={
                "status": "\n\n".join(PAYLOADS[:45]), "spoiler_text": PAYLOADS[17]},
                headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200, await response.text()
            status = await response.json()
    assert problems(status["content"]) == []
    await assert_pages_safe(node, ["/", status["url"][len(node.base):]])
