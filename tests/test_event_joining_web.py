"""Joining another server's event from the web: a member of coop on node A opens node B's event
through A's remote page, joins it as coop, B accepts, and A's page says coop is going."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from fedsph.events import commands as event_commands
from fedsph.events.service import cancel_event
from fedsph.federation.actors import get_local_actor
from fedsph.models import EventParticipant, Object
from fedsph.web.keys import REMOTE
from tests.support.events import make_event
from tests.support.members import browser, csrf_from, login, make_user, post_form
from tests.support.nodes import settle_all


@pytest.fixture
def nodes(two_nodes):
    return two_nodes


@pytest.fixture
async def remote_event(nodes):
    """obra's free event on B, known on A (fetched as `fedsph event join` would)."""
    a, b = nodes
    await b.create_actor("obra")
    coop = await a.create_actor("coop")
    await make_user(a, "ana", coop)
    await make_user(a, "eve")
    obj = await make_event(b, "obra")
    cli = SimpleNamespace(settings=a.settings, urls=a.urls, writers=a.writers,
                          remote=a.app[REMOTE])
    await event_commands._remote_event(cli, obj.uri)
    return obj.uri


def page_of(node, uri: str) -> str:
    return f"{node.base}/remote/objects?" + urlencode({"uri": uri})


async def participants(node) -> list[tuple[str, str]]:
    async with node.readers() as db:
        return [tuple(r) for r in await db.execute(
            select(EventParticipant.activity_uri, EventParticipant.state))]


async def test_member_joins_and_leaves_a_remote_event(nodes, remote_event):
    a, b = nodes
    page = page_of(a, remote_event)
    async with browser() as client:
        await login(client, a, "ana")
        async with client.get(page) as response:
            html = await response.text()
        assert response.status == 200 and "Encuentro HUB regional" in html
        assert "Join as Coop" in html and "America/Montevideo" in html
        response = await post_form(client, f"{a.base}/remote/events/join",
                                   {"uri": remote_event, "project": "coop"}, page)
        assert response.status == 303 and response.headers["Location"].startswith(
            "/remote/objects?uri=")
        async with client.get(page) as response:
            assert "waiting for the organisers" in await response.text()
        await settle_all(a, b)
        assert [state for _, state in await participants(b)] == ["accepted"]
        assert [state for _, state in await participants(a)] == ["accepted"]
        async with client.get(page) as response:
            html = await response.text()
        assert "Coop: going" in html and "Join as Coop" not in html
        response = await post_form(client, f"{a.base}/remote/events/leave",
                                   {"uri": remote_event, "project": "coop"}, page)
        assert response.status == 303
        await settle_all(a, b)
        assert await participants(a) == [] and await participants(b) == []
        async with client.get(page) as response:
            assert "Join as Coop" in await response.text()


async def test_others_are_refused_with_a_clear_message(nodes, remote_event):
    a, b = nodes
    page = page_of(a, remote_event)
    async with browser() as client:
        # Not logged in: no buttons, and the form's target sends to the login page.
        async with client.get(page) as response:
            assert "Join as" not in await response.text()
        token = await csrf_from(client, f"{a.base}/login")
        async with client.post(f"{a.base}/remote/events/join", allow_redirects=False,
                               data={"csrf": token, "uri": remote_event, "project": "coop"}) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login")
    async with browser() as client:
        await login(client, a, "eve")
        async with client.get(page) as response:
            assert "Join as" not in await response.text()
        response = await post_form(client, f"{a.base}/remote/events/join",
                                   {"uri": remote_event, "project": "coop"}, page)
        assert response.status == 403
        assert "not a member of this project" in await response.text()
    async with browser() as client:
        await login(client, a, "ana")
        for fields, status, message in (
                ({"uri": f"{b.base}/nothing", "project": "coop"}, 404, "no such event"),
                ({"uri": remote_event, "project": "nobody"}, 404, "no such project")):
            response = await post_form(client, f"{a.base}/remote/events/join", fields, page)
            assert response.status == status and message in await response.text()
        # Cancelled on B (Delete sent to nobody here): A marks it gone when it hears of it.
        async with b.writers() as db, db.begin():
            obra = await get_local_actor(db, "obra")
            stored = await db.scalar(select(Object).where(Object.uri == remote_event))
            await cancel_event(db, b.urls, obra, stored)
        async with a.writers() as db, db.begin():
            (await db.scalar(select(Object).where(Object.uri == remote_event))).deleted_at = \
                stored.deleted_at
        response = await post_form(client, f"{a.base}/remote/events/join",
                                   {"uri": remote_event, "project": "coop"},
                                   f"{a.base}/login")
        assert response.status == 410 and "cancelled" in await response.text()
    assert await participants(a) == []
