"""WebFinger, host-meta, NodeInfo and actor documents, as peers and browsers fetch them."""

import aiohttp
import orjson
import pytest

from fedsph.projects.outbox import publish_text_post


async def get(url, **headers):
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        body = await resp.read()
        return resp.status, resp.headers, body


async def test_webfinger_round_trip(node):
    project = await node.create_actor("coop")
    status, headers, body = await get(
        f"{node.base}/.well-known/webfinger?resource=acct:coop@{node.settings.domain}")
    assert status == 200
    assert headers["Content-Type"].startswith("application/jrd+json")
    assert headers["Access-Control-Allow-Origin"] == "*"
    document = orjson.loads(body)
    assert document["subject"] == f"acct:coop@{node.settings.domain}"
    self_link = next(link for link in document["links"] if link["rel"] == "self")
    assert self_link["href"] == project.uri
    assert self_link["type"] == "application/activity+json"
    assert any(link["rel"] == "http://webfinger.net/rel/profile-page" for link in document["links"])
    # The actor URL resolves too, to the same subject.
    status, _, body = await get(f"{node.base}/.well-known/webfinger?resource={project.uri}")
    assert status == 200 and orjson.loads(body)["subject"] == document["subject"]


@pytest.mark.parametrize("resource, status", [
    ("", 400),
    ("coop", 400),
    ("acct:coop", 400),
    ("mailto:coop@example.org", 404),  # RFC 7033 §4.5: well formed, of another scheme
    ("foo://bar/baz", 404),
    ("xmpp:coop@{domain}", 404),
    ("1abc:coop", 400),  # a scheme begins with a letter
    ("ACCT:coop", 400),  # acct:, whatever its case
    ("ACCT:nobody@{domain}", 404),
    ("coop@{domain}", 400),
    ("acct:nobody@{domain}", 404),
    ("acct:coop@elsewhere.example", 404),
    ("https://elsewhere.example/actors/coop", 404),
])
async def test_webfinger_refusals_are_400_or_404_with_cors(node, resource, status):
    await node.create_actor("coop")
    resource = resource.format(domain=node.settings.domain)
    got, headers, body = await get(f"{node.base}/.well-known/webfinger?resource={resource}")
    assert got == status, body
    assert headers["Access-Control-Allow-Origin"] == "*"


async def test_webfinger_finds_the_instance_actor(node):
    await node.create_actor("coop")  # the instance actor exists once the app has started
    status, _, body = await get(
        f"{node.base}/.well-known/webfinger?resource=acct:{node.settings.domain}@{node.settings.domain}")
    assert status == 200
    assert orjson.loads(body)["links"][0]["href"] == f"{node.base}/actor"


async def test_host_meta_as_xrd_and_json(node):
    status, headers, body = await get(f"{node.base}/.well-known/host-meta")
    assert status == 200 and headers["Content-Type"].startswith("application/xrd+xml")
    assert f'template="{node.base}/.well-known/webfinger?resource={{uri}}"' in body.decode()
    status, headers, body = await get(f"{node.base}/.well-known/host-meta.json")
    assert status == 200
    assert orjson.loads(body)["links"][0]["rel"] == "lrdd"


async def test_nodeinfo_20_and_21_count_what_is_there(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        await publish_text_post(db, node.urls, project, "Primera piedra", language="es")
        await publish_text_post(db, node.urls, project, "Segunda piedra", language="es")
    status, _, body = await get(f"{node.base}/.well-known/nodeinfo")
    links = orjson.loads(body)["links"]
    assert status == 200 and [link["href"].rsplit("/", 1)[1] for link in links] == ["2.0", "2.1"]
    for link in links:
        status, headers, body = await get(link["href"])
        document = orjson.loads(body)
        assert status == 200
        assert link["rel"] in headers["Content-Type"]
        assert document["software"]["name"] == "fedsph"
        assert document["protocols"] == ["activitypub"]
        assert document["usage"]["localPosts"] == 2
        assert document["metadata"]["projects"] == 1
    assert (await get(f"{node.base}/nodeinfo/1.0"))[0] == 404


@pytest.mark.parametrize("accept, html", [
    ("", False),
    ("*/*", False),
    ("application/activity+json", False),
    ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
])
async def test_actor_document_by_content_negotiation(node, accept, html):
    project = await node.create_actor("coop")
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession(skip_auto_headers=["Accept"]) as http, \
            http.get(project.uri, headers=headers) as resp:
        body = await resp.read()
        assert resp.status == 200
        assert "Accept" in resp.headers["Vary"]
        if html:
            assert resp.content_type == "text/html"
            assert b"Coop" in body
            return
        assert resp.content_type == "application/activity+json"
    document = orjson.loads(body)
    assert document["type"] == "Group"
    assert document["id"] == project.uri
    assert document["inbox"] == f"{project.uri}/inbox"
    assert document["endpoints"]["sharedInbox"] == f"{node.base}/inbox"
    assert document["publicKey"]["owner"] == project.uri
    assert document["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert document["preferredUsername"] == "coop"


async def test_member_is_a_person_and_instance_actor_an_application(node):
    member = await node.create_actor("ana", "Person")
    _, _, body = await get(member.uri)
    assert orjson.loads(body)["type"] == "Person"
    status, _, body = await get(f"{node.base}/actor")  # unsigned: it must be fetchable so
    assert status == 200  # that others can verify the GETs it signs
    assert orjson.loads(body)["type"] == "Application"
    assert (await get(f"{node.base}/actors/nobody"))[0] == 404
