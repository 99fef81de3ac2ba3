"""Withheld posts (issue 10 review): a reply a project hid, or holds for approval, is on no
public list: tag pages, the remote-object page, Atom feeds, the public and tag API timelines.

The rule is one SQL condition, fedsph.projects.queries.shown_to_visitors (built on not_withheld).
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
from sqlalchemy import select

from fedsph.models import Object
from tests.support.pages import TAG, add_tagged_replies, fetch, make_project, publish


async def api_texts(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        assert answer.status == 200
        return " ".join(status["content"] for status in await answer.json())


async def test_hidden_and_held_replies_are_on_no_public_list(node):
    project = await make_project(node)
    update = await publish(node, project, contents={"es": f"Asamblea #{TAG}"},
                           hashtags=[TAG])
    uris = await add_tagged_replies(node, update)

    _, _, tag_page = await fetch(f"{node.base}/tags/{TAG}")
    _, _, feed = await fetch(f"{project.uri}/feed.atom", accept="application/atom+xml")
    public = await api_texts(f"{node.base}/api/v1/timelines/public")
    tagged = await api_texts(f"{node.base}/api/v1/timelines/tag/{TAG}")
    assert "visible reply" in tag_page and "visible reply" in public and "visible reply" in tagged
    for label in ("hidden", "held"):
        for shown in (tag_page, feed, public, tagged):
            assert f"{label} reply" not in shown
        status, _, page = await fetch(f"{node.base}/remote/objects?uri={quote(uris[label])}")
        assert status == 404 and f"{label} reply" not in page
    status, _, page = await fetch(f"{node.base}/remote/objects?uri={quote(uris['visible'])}")
    assert status == 200 and "visible reply" in page

    async with node.readers() as db:  # reading changed nothing: still withheld
        rows = {o.uri: (o.hidden, o.approved) for o in await db.scalars(
            select(Object).where(Object.uri.in_(uris.values())))}
    assert rows == {uris["visible"]: (False, True), uris["hidden"]: (True, True),
                    uris["held"]: (False, False)}
