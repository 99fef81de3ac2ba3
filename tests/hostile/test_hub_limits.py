"""Hub limits (issue 10 review): strangers' Joins of our hub and Invites of our projects are
capped per domain (hubs.MAX_PENDING_PER_DOMAIN; past it a Join gets a Reject, an Invite is
dropped, nothing stored), and the pages listing them load at most queries.MAX_LISTED rows.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from fedsph.federation.actors import get_local_actor
from fedsph.hub import membership as hubs
from fedsph.models import Actor, HubMembership
from fedsph.projects.queries import MAX_LISTED
from tests.fakepeer import AS
from tests.support.hub import hub_actor
from tests.support.members import browser, login, make_user
from tests.support.nodes import make_settings, settle, start_node, statements


@pytest.fixture
async def hub_node(tmp_path):
    running = await start_node(make_settings(tmp_path, hub=True, hub_name="Red Hub"))
    await running.create_actor("coop")
    yield running
    await running.runner.cleanup()


async def rows(node, state: str) -> set[tuple[int, int]]:
    async with node.readers() as db:
        return set((await db.execute(select(HubMembership.hub_id, HubMembership.project_id)
                                     .where(HubMembership.state == state))).all())


async def add_strangers(node, domain: str, count: int, state: str, **actor) -> None:
    """`count` remote actors on `domain`, each with a waiting row in `state` (with coop or the
    hub: whichever side is ours)."""
    async with node.writers() as db, db.begin():
        hub, coop = await hubs.local_hub(db), await get_local_actor(db, "coop")
        for n in range(count):
            other = Actor(uri=f"https://{domain}/actors/s{n}", local=False, type="Group",
                          username=f"s{n}", domain=domain, **actor)
            db.add(other)
            await db.flush()
            pair = (hub.id, other.id) if state == "requested" else (other.id, coop.id)
            db.add(HubMembership(hub_id=pair[0], project_id=pair[1], state=state))


async def stored_domain(node, uri: str) -> str:
    async with node.readers() as db:
        return await db.scalar(select(Actor.domain).where(Actor.uri == uri))


async def test_joins_past_the_cap_per_domain_get_a_reject_and_no_row(hub_node, peer):
    hub = await hub_actor(hub_node)
    inbox = hub_node.urls.shared_inbox()
    first = peer.add_actor("g0", "Group")
    assert (await peer.post(first, inbox, {"@context": AS, "id": peer.new_id(), "type": "Join",
                                           "actor": first.uri, "object": hub.uri}))[0] == 202
    await settle(hub_node)
    domain = await stored_domain(hub_node, first.uri)
    await add_strangers(hub_node, domain, hubs.MAX_PENDING_PER_DOMAIN - 1, "requested")
    before = await rows(hub_node, "requested")
    assert len(before) == hubs.MAX_PENDING_PER_DOMAIN

    late = peer.add_actor("late", "Group")
    join_id = peer.new_id()
    assert (await peer.post(late, inbox, {"@context": AS, "id": join_id, "type": "Join",
                                          "actor": late.uri, "object": hub.uri}))[0] == 202
    await settle(hub_node)
    assert await rows(hub_node, "requested") == before
    rejects = peer.activities("Reject")
    assert [r["object"]["id"] for r in rejects] == [join_id]
    # Another server still gets in line.
    await add_strangers(hub_node, "other.example", 1, "requested")
    assert len(await rows(hub_node, "requested")) == len(before) + 1


async def test_invites_past_the_cap_per_domain_are_dropped(hub_node, peer):
    async with hub_node.readers() as db:
        coop = await get_local_actor(db, "coop")
    inbox = hub_node.urls.shared_inbox()
    first = peer.add_actor("h0", "Group", **{"fedsph:hub": True})
    invite = {"@context": AS, "id": peer.new_id(), "type": "Invite", "actor": first.uri,
              "object": first.uri, "target": coop.uri}
    assert (await peer.post(first, inbox, invite))[0] == 202
    await settle(hub_node)
    domain = await stored_domain(hub_node, first.uri)
    await add_strangers(hub_node, domain, hubs.MAX_PENDING_PER_DOMAIN - 1, "invited",
                        document={"fedsph:hub": True})
    before = await rows(hub_node, "invited")
    assert len(before) == hubs.MAX_PENDING_PER_DOMAIN

    late = peer.add_actor("late", "Group", **{"fedsph:hub": True})
    assert (await peer.post(late, inbox, {**invite, "id": peer.new_id(), "actor": late.uri,
                                          "object": late.uri}))[0] == 202
    await settle(hub_node)
    assert await rows(hub_node, "invited") == before


def shown(page: str) -> int:
    """How many of the strangers' actors the page names."""
    return len(set(re.findall(r"https://n\d\.example/actors/s\d+", page)))


async def test_the_hub_manage_page_lists_at_most_max_listed_per_state(hub_node):
    for n in range(3):  # past MAX_LISTED, from several servers (each under the cap)
        await add_strangers(hub_node, f"n{n}.example", 20, "requested")
    await make_user(hub_node, "admin", admin=True)
    async with browser() as client:
        await login(client, hub_node, "admin")
        with statements(hub_node) as seen:
            async with client.get(f"{hub_node.base}/hub/manage") as response:
                page = await response.text()
    assert response.status == 200
    assert shown(page) == MAX_LISTED and f"{60 - MAX_LISTED} more not shown" in page
    listing = [s for s in seen if "FROM hub_memberships" in s and "count(" not in s]
    assert listing and all("LIMIT" in s for s in listing)
    assert len(await rows(hub_node, "requested")) == 60  # listing changed nothing


async def test_the_project_manage_page_lists_at_most_max_listed_hubs(hub_node):
    for n in range(3):
        await add_strangers(hub_node, f"n{n}.example", 20, "invited",
                            document={"fedsph:hub": True})
    async with hub_node.readers() as db:
        coop = await get_local_actor(db, "coop")
    await make_user(hub_node, "ana", coop)
    async with browser() as client:
        await login(client, hub_node, "ana")
        async with client.get(f"{hub_node.base}/actors/coop/manage") as response:
            page = await response.text()
    assert response.status == 200
    assert shown(page) == MAX_LISTED and f"{60 - MAX_LISTED} more not shown" in page
    async with hub_node.readers() as db:
        assert await db.scalar(select(func.count(HubMembership.id))) == 60
