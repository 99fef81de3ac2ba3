"""WebFinger, host-meta, NodeInfo and actor documents, as peers fetch them."""

import aiohttp

import orjson


async def get(url, **headers):
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as resp:
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
    self_link = [link for link in document["links"] if link["rel"] == "self"][0]
    assert self_link["href"] == project.uri
    assert self_link["type"] == "application/activity+json"
    assert any(link["rel"] == "http://webfinger.net/rel/profile-page" for link in document["links"])
    # The actor URL resolves too, to the same subject.
    status, _, body = await get(f"{node.base}/.well-known/webfinger?resource={project.uri}")
    assert status == 200 and orjson.loads(body)["subject"] == document["subject"]
