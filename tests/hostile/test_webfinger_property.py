"""WebFinger's `resource` is the first thing a stranger sends us: its parser only ever answers
with this server's names and URLs or a 4xx, whatever the input (fedsph/web/wellknown.py)."""

from __future__ import annotations

from urllib.parse import unquote

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedsph.core.urls import URLs
from fedsph.errors import BadRequest, NotFound
from fedsph.web.wellknown import parse_resource

DOMAIN = "coop.example"
URLS = URLs("https://coop.example")

resources = st.one_of(
    st.text(max_size=80),
    st.builds(lambda user, host: f"acct:{user}@{host}", st.text(max_size=20),
              st.sampled_from([DOMAIN, "COOP.example", "evil.example", "coop.example.evil", ""])),
    st.builds(lambda tail: f"https://coop.example{tail}", st.text(max_size=40)),
    st.builds(lambda tail: f"https://coop.example.evil{tail}", st.text(max_size=40)),
)


@given(resources)
def test_the_resource_parser_answers_only_for_this_server(resource):
    try:
        kind, value = parse_resource(resource, DOMAIN, URLS.is_local)
    except (BadRequest, NotFound):
        return
    if kind == "acct":
        assert "@" not in value and value == value.lower() and value.isprintable()
        assert unquote(resource).lower().endswith("@" + DOMAIN)
    else:
        assert kind == "url" and URLS.is_local(value)
        assert value == "https://coop.example" or value.startswith("https://coop.example/")


@pytest.mark.parametrize("resource", [
    "acct:coop@evil.example", "acct:coop@coop.example.evil", "acct:@coop.example", "acct:coop",
    "https://coop.example.evil/actors/coop", "javascript:alert(1)", "acct:co\x00op@coop.example",
    "acct:" + "a" * 5000 + "@coop.example", "https://coop.example\\@evil.example/actors/coop",
])
def test_hostile_resources_are_refused(resource):
    with pytest.raises((BadRequest, NotFound)):
        parse_resource(resource, DOMAIN, URLS.is_local)


async def test_hostile_resources_get_4xx_from_a_running_node(node):
    await node.create_actor("coop", "Group")
    async with aiohttp.ClientSession() as http:
        for resource in ("acct:co\x00op@" + node.settings.domain, "acct:%00@" + node.settings.domain,
                         "acct:" + "a" * 5000 + "@" + node.settings.domain, "\ud7ff", "acct:@"):
            async with http.get(f"{node.base}/.well-known/webfinger",
                                params={"resource": resource}) as response:
                assert 400 <= response.status < 500, (resource, response.status)
        async with http.get(f"{node.base}/.well-known/webfinger",
                            params={"resource": f"acct:coop@{node.settings.domain}"}) as response:
            assert response.status == 200
