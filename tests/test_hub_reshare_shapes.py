"""The exact shapes a hub sends its followers when it re-shares a member's post, checked against
what Lemmy sends (community/announce.rs) and what Mastodon needs (activity/announce.rb, undo.rb).
"""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import select

from fedsph.federation.activitystreams import PUBLIC
from fedsph.federation.actors import get_local_actor
from fedsph.hub.reshare import BOOST_SUFFIX
from fedsph.models import Object
from fedsph.projects import outbox
from tests.support.hub import follow_hub, hub_actor, join, post, set_auto_approve
from tests.support.nodes import make_settings, settle, start_node


@pytest.fixture
async def hub_and_project(tmp_path):
    for name in ("hub", "project"):
        (tmp_path / name).mkdir()
    hub_node = await start_node(make_settings(tmp_path / "hub", hub=True, hub_name="Red Hub"))
    project_node = await start_node(make_settings(tmp_path / "project"))
    await project_node.create_actor("coop")
    await set_auto_approve(hub_node, "all")
    await join(hub_node, project_node)
    yield hub_node, project_node
    await project_node.runner.cleanup()
    await hub_node.runner.cleanup()


def split(announces: list[dict]) -> tuple[dict, dict]:
    [embedded] = [a for a in announces if isinstance(a["object"], dict)]
    [boost] = [a for a in announces if isinstance(a["object"], str)]
    return embedded, boost


async def fetch(uri: str) -> tuple[int, dict | None]:
    async with aiohttp.ClientSession() as http, http.get(
            uri, headers={"Accept": "application/activity+json"}) as resp:
        return resp.status, (await resp.json(content_type=None) if resp.status == 200 else None)


async def test_a_new_post_is_announced_embedded_and_as_a_boost(hub_and_project, peer):
    hub_node, project_node = hub_and_project
    await follow_hub(hub_node, peer)
    hub = await hub_actor(hub_node)
    note = await post(project_node, "Asamblea el jueves")
    await settle(project_node, hub_node)
    embedded, boost = split(peer.activities("Announce"))
    for announce in (embedded, boost):  # as Lemmy addresses a community's Announce
        assert announce["actor"] == hub.uri and "@context" in announce
        assert announce["to"] == [hub.uri, PUBLIC] and announce["cc"] == [hub.followers_url]
    create = embedded["object"]
    assert create["type"] == "Create" and create["object"]["id"] == note.uri
    assert create["actor"] == project_node.urls.actor("coop")
    assert boost["object"] == note.uri  # Mastodon fetches it from its origin: a boost
    assert boost["id"] == embedded["id"] + BOOST_SUFFIX
    status, served = await fetch(boost["id"])  # both ids resolve on the hub
    assert status == 200 and served["object"] == note.uri
    status, served = await fetch(embedded["id"])
    assert status == 200 and served["object"]["id"] == create["id"]


async def test_deleting_undoes_both_announces(hub_and_project, peer):
    """Mastodon turns whichever Announce it processes first into the boost; undo both."""
    hub_node, project_node = hub_and_project
    await follow_hub(hub_node, peer)
    note = await post(project_node, "Se borrará")
    await settle(project_node, hub_node)
    embedded, boost = split(peer.activities("Announce"))
    async with project_node.writers() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        await outbox.delete_post(db, project_node.urls, coop, await db.get(Object, note.id))
    await settle(project_node, hub_node)
    undone = {u["object"]["id"]: u["object"] for u in peer.activities("Undo")}
    assert set(undone) == {boost["id"], embedded["id"]}
    assert undone[boost["id"]]["object"] == note.uri
    assert undone[embedded["id"]]["object"] == embedded["object"]["id"]
    assert all(u["object"]["type"] == "Announce" for u in peer.activities("Undo"))
    deletes = [a["object"] for a in peer.activities("Announce")
               if isinstance(a["object"], dict) and a["object"]["type"] == "Delete"]
    assert len(deletes) == 1


async def test_an_update_is_announced_embedded_only(hub_and_project, peer):
    hub_node, project_node = hub_and_project
    await follow_hub(hub_node, peer)
    note = await post(project_node, "Primera versión")
    await settle(project_node, hub_node)
    async with project_node.writers() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        await outbox.edit_post_text(db, project_node.urls, coop, await db.get(Object, note.id),
                                    "Segunda versión")
    await settle(project_node, hub_node)
    announces = peer.activities("Announce")
    assert [a["object"]["type"] for a in announces if isinstance(a["object"], dict)] == [
        "Create", "Update"]
    assert [a["object"] for a in announces if isinstance(a["object"], str)] == [note.uri]


async def test_an_update_that_would_open_a_followers_only_post_is_not_announced(hub_and_project,
                                                                               peer):
    """The hub keeps the post as followers-only (a post's Update never widens its readers), so
    it does not re-share an Update addressed to everyone (made here by changing the project's
    own row, which its edit form would refuse)."""
    hub_node, project_node = hub_and_project
    await follow_hub(hub_node, peer)
    note = await post(project_node, "Calle Secreta 12", visibility="followers")
    await settle(project_node, hub_node)
    async with project_node.writers() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        obj = await db.get(Object, note.id)
        obj.visibility = "public"
        await outbox.edit_post_text(db, project_node.urls, coop, obj, "Calle 12")
    await settle(project_node, hub_node)
    assert peer.activities("Announce") == []
    async with hub_node.readers() as db:
        held = await db.scalar(select(Object).where(Object.uri == note.uri))
    assert held.visibility == "followers" and "Calle 12" in held.content
