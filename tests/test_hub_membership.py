"""Hub membership between in-process nodes: join (by rule or by approval), invite, reject, leave;
the hub's re-sharing of its members' public posts, and the backfill of a new member's posts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fedsph.errors import UserError
from fedsph.federation.activitystreams import PUBLIC
from fedsph.federation.actors import get_local_actor
from fedsph.hub import membership as hubs
from fedsph.models import Actor, Follow, HubMembership, Object
from fedsph.projects import outbox
from fedsph.web.keys import REMOTE
from tests.support.hub import (
    coop_handle,
    follow_hub,
    hub_actor,
    join,
    post,
    run,
    set_auto_approve,
    states,
)
from tests.support.members import browser, login, make_user, post_form
from tests.support.nodes import settle, use_data_dir
from tests.support.pages import audit


async def hub_follows_project(hub_node) -> str | None:
    async with hub_node.writers() as db:
        hub = await hubs.local_hub(db)
        return await db.scalar(select(Follow.state).where(Follow.follower_id == hub.id))


async def test_hub_mode_makes_a_hub_whose_document_says_so(nodes):
    hub_node, _ = nodes
    hub = await hub_actor(hub_node)
    assert hub is not None and hub.username == "hub" and hub.name == "Red Hub"
    async with hub_node.writers() as db:
        rules = await hubs.hub_rules(db, hub)
    assert rules.auto_approve == {}
    await run(hub_node, "hub enable", name="Hub LatAm", region="latin_america_caribbean",
              auto_approve="country:uy")
    hub = await hub_actor(hub_node)
    assert hub.name == "Hub LatAm" and hub.profile["region"] == "latin_america_caribbean"
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(
            hub.uri, headers={"Accept": "application/activity+json"}) as resp:
        document = await resp.json(content_type=None)
    assert document["fedsph:hub"] is True and document["type"] == "Group"


async def test_join_with_auto_approve(nodes):
    hub_node, project_node = nodes
    await set_auto_approve(hub_node, "all")
    await join(hub_node, project_node)
    assert await states(hub_node) == ["approved"]
    assert await states(project_node) == ["approved"]
    # The hub follows the project, accepted although the project approves follows by hand.
    assert await hub_follows_project(hub_node) == "accepted"


async def test_join_waits_for_approval_then_approved(nodes):
    hub_node, project_node = nodes
    await join(hub_node, project_node)
    assert await states(hub_node) == ["requested"]
    assert await states(project_node) == ["requested"]
    assert await hub_follows_project(hub_node) is None
    await run(hub_node, "hub approve", project=coop_handle(project_node))
    await settle(hub_node, project_node)
    assert await states(hub_node) == ["approved"] and await states(project_node) == ["approved"]
    assert await hub_follows_project(hub_node) == "accepted"


async def test_region_rule_matches_the_project_profile(nodes):
    hub_node, project_node = nodes
    async with project_node.writers() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        coop.profile = {"country": "UY"}
    await set_auto_approve(hub_node, "country:UY")
    await join(hub_node, project_node)
    assert await states(hub_node) == ["approved"]


async def test_reject_removes_the_request_on_both_sides(nodes):
    hub_node, project_node = nodes
    await join(hub_node, project_node)
    await run(hub_node, "hub reject", project=coop_handle(project_node))
    await settle(hub_node, project_node)
    assert await states(hub_node) == [] and await states(project_node) == []


async def test_invite_then_accept(nodes):
    hub_node, project_node = nodes
    await run(hub_node, "hub invite", project=coop_handle(project_node))
    await settle(hub_node, project_node)
    assert await states(hub_node) == ["invited"] and await states(project_node) == ["invited"]
    hub = await hub_actor(hub_node)
    await run(project_node, "hub accept-invite", slug="coop", hub=hub.uri)
    await settle(hub_node, project_node)
    assert await states(hub_node) == ["approved"] and await states(project_node) == ["approved"]
    assert await hub_follows_project(hub_node) == "accepted"


async def test_leave_ends_the_membership_and_the_follow(nodes):
    hub_node, project_node = nodes
    await set_auto_approve(hub_node, "all")
    await join(hub_node, project_node)
    hub = await hub_actor(hub_node)
    await run(project_node, "hub leave", slug="coop", hub=hub.uri)
    await settle(hub_node, project_node)
    assert await states(hub_node) == [] and await states(project_node) == []
    assert await hub_follows_project(hub_node) is None
    async with project_node.writers() as db:  # the project no longer has the hub as follower
        assert await db.scalar(select(func.count(Follow.id))) == 0


async def test_remove_by_the_hub(nodes):
    hub_node, project_node = nodes
    await set_auto_approve(hub_node, "all")
    await join(hub_node, project_node)
    await run(hub_node, "hub remove", project=coop_handle(project_node))
    await settle(hub_node, project_node)
    assert await states(hub_node) == [] and await states(project_node) == []
    async with project_node.writers() as db:
        assert await db.scalar(select(func.count(Follow.id))) == 0


async def test_same_node_join_approve_reshare_and_leave(node, peer):
    """Project and hub on one node: one shared row goes through the same states."""
    await run(node, "hub enable", name="Hub", region=None, auto_approve=None)
    await node.create_actor("coop", manually_approves=True)
    hub = await hub_actor(node)
    await run(node, "hub join", slug="coop", hub=hub.uri)
    await settle(node)
    assert await states(node) == ["requested"]
    await run(node, "hub approve", project="coop")
    await settle(node)
    assert await states(node) == ["approved"]
    assert await hub_follows_project(node) == "accepted"
    await follow_hub(node, peer)
    note = await post(node, "Desde el mismo nodo")
    await settle(node)
    assert sorted(str(type(a["object"]).__name__) for a in peer.activities("Announce")) == [
        "dict", "str"]
    assert [a["object"]["object"]["id"] for a in peer.activities("Announce")
            if isinstance(a["object"], dict)] == [note.uri]
    await run(node, "hub leave", slug="coop", hub=hub.uri)
    await settle(node)
    assert await states(node) == [] and await hub_follows_project(node) is None


async def test_member_posts_reach_hub_followers_as_both_announces(nodes, peer):
    hub_node, project_node = nodes
    await set_auto_approve(hub_node, "all")
    await join(hub_node, project_node)
    await follow_hub(hub_node, peer)
    note = await post(project_node, "Primera piedra")
    hidden = await post(project_node, "Solo para seguidores", visibility="followers")
    await settle(project_node, hub_node)
    announces = peer.activities("Announce")
    embedded = [a for a in announces if isinstance(a["object"], dict)]
    bare = [a for a in announces if isinstance(a["object"], str)]
    assert [a["object"]["object"]["id"] for a in embedded] == [note.uri]
    assert embedded[0]["object"]["type"] == "Create"
    assert [a["object"] for a in bare] == [note.uri]
    assert all(PUBLIC in a["to"] for a in announces)
    assert hidden.uri not in str(announces)  # followers-only is never re-shared
    # The deletion follows: Announce{Delete} and the boost undone.
    async with project_node.writers() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        await outbox.delete_post(db, project_node.urls, coop, await db.get(Object, note.id))
    await settle(project_node, hub_node)
    assert any(isinstance(a["object"], dict) and a["object"]["type"] == "Delete"
               for a in peer.activities("Announce"))
    # Both boosts are undone: Mastodon keeps whichever Announce it saw first (hub/reshare.py).
    undone = sorted(u["object"]["object"] if isinstance(u["object"]["object"], str)
                    else u["object"]["object"]["id"] for u in peer.activities("Undo"))
    assert undone == sorted([note.uri, embedded[0]["object"]["id"]])


async def test_a_non_member_is_not_reshared(nodes, peer):
    hub_node, project_node = nodes
    await follow_hub(hub_node, peer)
    hub = await hub_actor(hub_node)
    async with project_node.writers() as db, db.begin():  # the hub follows, but no membership
        coop = await get_local_actor(db, "coop")
        coop.manually_approves = False
    async with hub_node.writers() as db, db.begin():
        remote_coop = await db.get(type(hub), await _resolve(hub_node, project_node))
        await outbox.follow(db, hub_node.urls, hub, remote_coop)
    await settle(hub_node, project_node)
    await post(project_node, "No soy miembro")
    await settle(project_node, hub_node)
    async with hub_node.writers() as db:  # stored (the hub follows it) but not announced
        assert await db.scalar(select(func.count(Object.id))) == 1
    assert peer.activities("Announce") == []


async def _resolve(hub_node, project_node) -> int:
    from fedsph.federation.actors import resolve_actor

    return await resolve_actor(hub_node.writers, hub_node.app[REMOTE],
                               project_node.urls.actor("coop"))


async def test_backfill_stores_earlier_posts_without_announcing(nodes, peer):
    hub_node, project_node = nodes
    await follow_hub(hub_node, peer)
    first = await post(project_node, "Antes de unirnos")
    await post(project_node, "Privado", visibility="followers")
    await settle(project_node)
    await set_auto_approve(hub_node, "all")
    await join(hub_node, project_node)
    async with hub_node.writers() as db:
        stored = list(await db.scalars(select(Object.uri)))
    assert stored == [first.uri]
    assert peer.activities("Announce") == []


@pytest.mark.parametrize("args, message", [
    (["hub", "join", "nobody", "http://127.0.0.1:9/users/x"], "no project called 'nobody'"),
    (["hub", "join", "demo", "ghost@127.0.0.1:9"], "cannot find ghost@127.0.0.1:9"),
    (["hub", "join", "demo", "demo"], "is not a hub"),
    (["hub", "approve", "demo"], "this node is not a hub"),
    (["hub", "enable", "--auto-approve", "sometimes"], "--auto-approve must be"),
    (["hub", "enable", "--region", "atlantis"], "'atlantis' is not a known region"),
])
def test_cli_bad_input_is_one_line(tmp_path, monkeypatch, capsys, args, message):
    from fedsph.cli import main

    use_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setenv("FEDSPH_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.delenv("FEDSPH_HUB", raising=False)
    assert main(["bootstrap"]) == 0
    capsys.readouterr()
    assert main(args) == 1
    out = capsys.readouterr()
    lines = (out.out + out.err).strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_bootstrap_in_hub_mode_makes_the_hub(tmp_path, monkeypatch, capsys):
    from fedsph.cli import main

    use_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setenv("FEDSPH_HUB", "1")
    monkeypatch.setenv("FEDSPH_HUB_NAME", "Hub Europa")
    assert main(["bootstrap"]) == 0
    assert "hub @hub@" in capsys.readouterr().out
    assert main(["hub", "members"]) == 0


async def test_member_profile_updates_are_announced(nodes, peer):
    from fedsph.projects.profile import set_profile

    hub_node, project_node = nodes
    await set_auto_approve(hub_node, "all")
    await join(hub_node, project_node)
    await follow_hub(hub_node, peer)
    async with project_node.writers() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        await set_profile(db, project_node.urls, coop, {"country": "UY"})
    await settle(project_node, hub_node)
    [announce] = peer.activities("Announce")
    assert announce["object"]["type"] == "Update"
    assert announce["object"]["object"]["id"] == project_node.urls.actor("coop")


async def test_manage_page_approves_with_csrf(nodes):
    hub_node, project_node = nodes
    await join(hub_node, project_node)
    await make_user(hub_node, "admin", admin=True)
    async with browser() as client:
        async with client.get(f"{hub_node.base}/hub/manage", allow_redirects=False) as resp:
            assert resp.status == 303  # log in first
        await login(client, hub_node, "admin")
        async with client.get(f"{hub_node.base}/hub/manage") as resp:
            page = await resp.text()
        assert resp.status == 200 and "Coop" in page and "Approve" in page
        assert audit(page) == []
        async with client.post(f"{hub_node.base}/hub/manage",
                               data={"action": "approve", "project": "1"}) as resp:
            assert resp.status == 403  # no CSRF token
        async with hub_node.writers() as db:
            project_id = await db.scalar(select(HubMembership.project_id))
        response = await post_form(client, f"{hub_node.base}/hub/manage",
                                   {"action": "approve", "project": str(project_id)})
        assert response.status == 303
        response = await post_form(client, f"{hub_node.base}/hub/manage",
                                   {"action": "approve", "project": "nope"})
        assert response.status == 400
        # An invitation withdrawn says so (not "request turned down").
        other = await hub_node.create_actor("otra")
        async with hub_node.writers() as db, db.begin():
            db.add(HubMembership(hub_id=(await hubs.local_hub(db)).id, project_id=other.id,
                                 state="invited"))
        response = await post_form(client, f"{hub_node.base}/hub/manage",
                                   {"action": "withdraw", "project": str(other.id)})
        assert response.status == 303 and response.headers["Location"].endswith("done=withdraw")
        async with client.get(f"{hub_node.base}/hub/manage?done=withdraw") as resp:
            assert "Invitation withdrawn." in await resp.text()
    await settle(hub_node, project_node)
    assert await states(project_node) == ["approved"]


async def test_hub_takes_another_name_when_hub_is_taken(node):
    await node.create_actor("hub")  # a project that was there first
    await run(node, "hub enable", name="Hub Europa", region="europe", auto_approve="region:europe")
    hub = await hub_actor(node)
    assert hub.username == "hub_2" and hub.profile == {"hub": True, "region": "europe"}
    async with node.writers() as db:
        assert (await hubs.hub_rules(db, hub)).auto_approve == {"regions": ["europe"]}


def test_an_auto_approve_rule_may_name_several_regions_and_countries():
    rule = hubs.parse_auto_approve("region:europe, country:uy,country:SN")
    assert rule == {"regions": ["europe"], "countries": ["UY", "SN"]}
    assert hubs.auto_approves(rule, Actor(profile={"country": "SN"}))
    assert not hubs.auto_approves(rule, Actor(profile={"country": "AR", "region": "africa"}))
    with pytest.raises(UserError, match="region:<region>"):
        hubs.parse_auto_approve("region:europe,planet:mars")


# -- what other servers may not do ---------------------------------------------------------------

AS = "https://www.w3.org/ns/activitystreams"


async def test_only_projects_join_and_only_from_their_own_server(nodes, peer):
    hub_node, _ = nodes
    await set_auto_approve(hub_node, "all")
    hub = await hub_actor(hub_node)
    person = peer.add_actor("someone")
    group = peer.add_actor("grupo", "Group")
    # Not a project: accepted at the inbox, ignored by the handler.
    status, _ = await peer.post(person, hub_node.urls.shared_inbox(), {
        "@context": AS, "id": peer.new_id(), "type": "Join", "actor": person.uri,
        "object": hub.uri})
    assert status == 202
    # An id on another server (it would become the membership's key): refused at the inbox.
    status, text = await peer.post(group, hub_node.urls.shared_inbox(), {
        "@context": AS, "id": "https://elsewhere.example/activities/1", "type": "Join",
        "actor": group.uri, "object": hub.uri})
    assert status == 400 and "another server" in text
    await settle(hub_node)
    assert await states(hub_node) == []


async def test_a_hub_cannot_answer_its_own_invitation_for_the_project(nodes, peer):
    _, project_node = nodes
    hub = peer.add_actor("hub", "Group", **{"fedsph:hub": True})
    async with project_node.writers() as db:
        coop = await get_local_actor(db, "coop")
    inbox = project_node.urls.shared_inbox()
    invite = {"@context": AS, "id": peer.new_id(), "type": "Invite", "actor": hub.uri,
              "object": hub.uri, "target": coop.uri}
    assert (await peer.post(hub, inbox, invite))[0] == 202
    await settle(project_node)
    assert await states(project_node) == ["invited"]
    # The hub pretends the project asked and approves it: still only invited.
    forged = {"@context": AS, "id": peer.new_id(), "type": "Accept", "actor": hub.uri,
              "object": {"id": peer.new_id(), "type": "Join", "actor": coop.uri,
                         "object": hub.uri}}
    assert (await peer.post(hub, inbox, forged))[0] == 202
    await settle(project_node)
    assert await states(project_node) == ["invited"]


async def test_other_servers_cannot_queue_our_own_work(nodes, peer):
    hub_node, _ = nodes
    someone = peer.add_actor("someone", "Group")
    status, text = await peer.post(someone, hub_node.urls.shared_inbox(), {
        "@context": AS, "id": peer.new_id(), "type": "fedsph:Backfill", "actor": someone.uri,
        "items": []})
    assert status == 400 and "fedsph:Backfill" in text
