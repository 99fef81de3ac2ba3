"""Hub limits (issue 10 review): strangers' Joins of our hub and Invites of our projects are
capped per server, however its actors' URIs spell its host (hubs.MAX_PENDING_PER_DOMAIN; past
it a Join gets a Reject, an Invite is dropped, nothing stored), and the pages listing them load
at most queries.MAX_LISTED rows.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, text

from fedsph.db import CAP_LOCKS, one_at_a_time
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


# One server, spelled as its actors' URIs may spell it: the port, user info, a trailing dot.
SPELLINGS = ("http://{host}/a{n}", "http://{host}:1/b{n}", "http://x@{host}:{port}/c{n}",
             "http://{host}.:{port}/d{n}")


async def add_spelled_strangers(node, peer, count: int, state: str, **actor) -> None:
    """`count` actors of the peer's server, each URI spelled another way, with a waiting row in
    `state`; Actor.domain holds the netloc as sent, as federation stores it."""
    async with node.writers() as db, db.begin():
        hub, coop = await hubs.local_hub(db), await get_local_actor(db, "coop")
        for n in range(count):
            uri = SPELLINGS[n % len(SPELLINGS)].format(host=peer.host, port=peer.port, n=n)
            other = Actor(uri=uri, local=False, type="Group", username=f"s{n}",
                          domain=urlsplit(uri).netloc, **actor)
            db.add(other)
            await db.flush()
            pair = (hub.id, other.id) if state == "requested" else (other.id, coop.id)
            db.add(HubMembership(hub_id=pair[0], project_id=pair[1], state=state))


async def test_every_spelling_of_a_server_shares_one_cap_of_joins(hub_node, peer):
    hub = await hub_actor(hub_node)
    await add_spelled_strangers(hub_node, peer, hubs.MAX_PENDING_PER_DOMAIN, "requested")
    before = await rows(hub_node, "requested")
    late = peer.add_actor("late", "Group")  # http://127.0.0.1:<port>/users/late
    join_id = peer.new_id()
    assert (await peer.post(late, hub_node.urls.shared_inbox(), {
        "@context": AS, "id": join_id, "type": "Join", "actor": late.uri,
        "object": hub.uri}))[0] == 202
    await settle(hub_node)
    assert await rows(hub_node, "requested") == before
    assert [r["object"]["id"] for r in peer.activities("Reject")] == [join_id]


async def test_every_spelling_of_a_server_shares_one_cap_of_invitations(hub_node, peer):
    async with hub_node.readers() as db:
        coop = await get_local_actor(db, "coop")
    await add_spelled_strangers(hub_node, peer, hubs.MAX_PENDING_PER_DOMAIN, "invited",
                                document={"fedsph:hub": True})
    before = await rows(hub_node, "invited")
    late = peer.add_actor("late", "Group", **{"fedsph:hub": True})
    assert (await peer.post(late, hub_node.urls.shared_inbox(), {
        "@context": AS, "id": peer.new_id(), "type": "Invite", "actor": late.uri,
        "object": late.uri, "target": coop.uri}))[0] == 202
    await settle(hub_node)
    assert await rows(hub_node, "invited") == before


async def test_waiting_rows_are_counted_by_normalised_host(hub_node):
    async with hub_node.writers() as db, db.begin():
        hub = await hubs.local_hub(db)
        for n, uri in enumerate(("https://evil.example/a", "https://EVIL.example/b",
                                 "https://evil.example:443/c", "https://x@evil.example/d",
                                 "https://good.example/e")):
            other = Actor(uri=uri, local=False, type="Group", username=f"e{n}",
                          domain=urlsplit(uri).netloc)
            db.add(other)
            await db.flush()
            db.add(HubMembership(hub_id=hub.id, project_id=other.id, state="requested"))
    async with hub_node.readers() as db:
        hub = await hubs.local_hub(db)
        assert await hubs.waiting_from(db, "evil.example", "requested", hub) == 4
        assert await hubs.waiting_from(db, "good.example", "requested", hub) == 1
        assert await hubs.waiting_from(db, "evil.example", "invited") == 0


@pytest.mark.postgres
async def test_cap_locks_have_their_own_key_space_and_last_as_long_as_what_they_guard(hub_node):
    """A domain is a remote server's choice: its lock is of the two-int4 kind, which cannot be
    the inbox claim's single-bigint lock (INBOX_CLAIM_LOCK) whatever the domain hashes to. Taken
    in a handler's savepoint, it is kept to the commit when the savepoint is released, and goes
    with the rows it guarded when the savepoint rolls back."""
    mine = text("SELECT classid, objsubid FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()")
    async with hub_node.writers() as db, db.begin():
        async with db.begin_nested():
            await one_at_a_time(db, "hub requests from evil.example")
        assert [tuple(row) for row in await db.execute(mine)] == [(CAP_LOCKS, 2)]
    async with hub_node.writers() as db, db.begin():
        savepoint = await db.begin_nested()
        await one_at_a_time(db, "hub requests from evil.example")
        await savepoint.rollback()
        assert (await db.execute(mine)).all() == []


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
