"""The hub's events page (/hub/events) and the project's side of hub membership on its Manage
page (join, accept an invitation, leave), between two in-process nodes."""

from __future__ import annotations

import html

import aiohttp
from sqlalchemy import select

from fedsph.federation.actors import get_local_actor
from fedsph.models import HubMembership
from tests.support.events import MEETING, make_event
from tests.support.hub import coop_handle, hub_actor, run, set_auto_approve, states
from tests.support.members import browser, login, make_user, post_form
from tests.support.nodes import settle
from tests.support.pages import audit


async def text_of(client, url: str) -> tuple[int, str]:
    async with client.get(url) as response:
        return response.status, html.unescape(await response.text())


def hub_handle(hub_node) -> str:
    return f"hub@{hub_node.settings.domain}"


async def test_hub_events_page_lists_members_events_in_their_time_zone(nodes):
    hub_node, project_node = nodes
    await set_auto_approve(hub_node, "all")
    await run(project_node, "hub join", slug="coop", hub=(await hub_actor(hub_node)).uri)
    await settle(hub_node, project_node)
    assert await states(hub_node) == ["approved"]
    event = await make_event(project_node)
    await hub_node.create_actor("outsider")  # a project of the hub's node that is no member
    await make_event(hub_node, "outsider", name="Feria de los que no son miembros")
    await settle(project_node, hub_node)

    async with aiohttp.ClientSession(headers={"Accept": "text/html"}) as http:
        status, page = await text_of(http, f"{hub_node.base}/hub/events")
        assert status == 200
        upcoming = page.split("Upcoming events", 1)[1]
        assert MEETING["name"] in upcoming
        # 09:00 in Montevideo, as the organisers set it, with the zone named.
        assert "2027-03-10 09:00" in upcoming and "America/Montevideo" in upcoming
        assert "HUB meeting" in upcoming  # the kind's label
        assert "Coop" in upcoming and "FUCVAM" in upcoming
        assert f'href="{event.url}"' in upcoming  # a remote event links to its own page
        assert "Feria de los que no son miembros" not in page
        assert 'href="/hub/events"' in page  # in the hub's navigation
        async with http.get(f"{hub_node.base}/hub/events") as response:
            assert audit(await response.text()) == []
        status, _ = await text_of(http, f"{project_node.base}/hub/events")
        assert status == 404  # no hub there


async def test_hub_events_page_in_spanish(nodes):
    hub_node, _ = nodes
    async with aiohttp.ClientSession(headers={"Accept": "text/html"}) as http:
        status, page = await text_of(http, f"{hub_node.base}/hub/events?lang=es")
    assert status == 200 and "Próximos eventos" in page


async def manage_page(client, project_node) -> str:
    status, page = await text_of(client, f"{project_node.base}/actors/coop/manage")
    assert status == 200
    return page.split('id="hubs"', 1)[1].split('id="invite"', 1)[0]


async def logged_in_member(client, project_node) -> None:
    async with project_node.writers() as db:
        coop = await get_local_actor(db, "coop")
    await make_user(project_node, "ana", coop)
    await login(client, project_node, "ana")


async def test_manage_page_joins_a_hub_then_leaves(nodes):
    hub_node, project_node = nodes
    manage = f"{project_node.base}/actors/coop/manage"
    async with browser() as client:
        await logged_in_member(client, project_node)
        assert "no hub yet" in await manage_page(client, project_node)
        response = await post_form(client, manage,
                                   {"action": "hub_join", "handle": hub_handle(hub_node)})
        assert response.status == 303
        section = await manage_page(client, project_node)
        assert "Hub" in section and "requested" in section
        await settle(project_node, hub_node)
        assert await states(hub_node) == ["requested"]

        await run(hub_node, "hub approve", project=coop_handle(project_node))
        await settle(hub_node, project_node)
        section = await manage_page(client, project_node)
        assert "approved" in section and "requested" not in section and "Leave hub" in section

        hub = await hub_actor(hub_node)
        response = await post_form(client, manage, {"action": "hub_leave", "hub": hub.uri})
        assert response.status == 303
        await settle(project_node, hub_node)
        assert await states(project_node) == [] and await states(hub_node) == []
        assert "no hub yet" in await manage_page(client, project_node)


async def test_manage_page_accepts_an_invitation(nodes):
    hub_node, project_node = nodes
    await run(hub_node, "hub invite", project=coop_handle(project_node))
    await settle(hub_node, project_node)
    assert await states(project_node) == ["invited"]
    manage = f"{project_node.base}/actors/coop/manage"
    async with browser() as client:
        await logged_in_member(client, project_node)
        section = await manage_page(client, project_node)
        assert "invited" in section and "Accept invitation" in section
        hub = await hub_actor(hub_node)
        response = await post_form(client, manage, {"action": "hub_accept", "hub": hub.uri})
        assert response.status == 303
        await settle(project_node, hub_node)
        assert await states(project_node) == ["approved"] and await states(hub_node) == [
            "approved"]
        assert "approved" in await manage_page(client, project_node)
        # A second answer finds no invitation: a message, not a 500.
        response = await post_form(client, manage, {"action": "hub_decline", "hub": hub.uri})
        assert response.status == 400
        assert "no such membership or invitation" in html.unescape(await response.text())


async def test_manage_page_explains_bad_hub_handles(nodes):
    hub_node, project_node = nodes
    await hub_node.create_actor("outsider")
    manage = f"{project_node.base}/actors/coop/manage"
    cases = [(f"nobody@{hub_node.settings.domain}", "No hub was found"),
             ("not a handle", "No hub was found"),
             (f"outsider@{hub_node.settings.domain}", "That account is not a hub."),
             ("", "Enter a hub's handle")]
    async with browser() as client:
        await logged_in_member(client, project_node)
        for handle, message in cases:
            response = await post_form(client, manage, {"action": "hub_join", "handle": handle})
            assert response.status == 400, handle
            assert message in html.unescape(await response.text()), handle
        await set_auto_approve(hub_node, "all")
        response = await post_form(client, manage,
                                   {"action": "hub_join", "handle": hub_handle(hub_node)})
        assert response.status == 303
        await settle(project_node, hub_node)
        response = await post_form(client, manage,
                                   {"action": "hub_join", "handle": hub_handle(hub_node)})
        assert response.status == 400
        assert "already a member" in html.unescape(await response.text())
    async with project_node.writers() as db:
        assert list(await db.scalars(select(HubMembership.state))) == ["approved"]
