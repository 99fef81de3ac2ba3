"""Direct messages are their own visibility (issue 10, "Direct messages leak").

A post addressed to no collection (neither as:Public nor its author's followers) is `direct`:
shown to its author and the actors it addresses, and to nobody else, even to local accounts that
follow its author; served as AS2 only to signed fetches from the addressed actors' servers.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from alembic import command
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session

from fedsph.db import alembic_config, make_engine, migrate
from fedsph.errors import UserError
from fedsph.federation.actors import resolve_actor
from fedsph.hub import directory_index
from fedsph.models import (
    Actor,
    Delivery,
    Follow,
    Notification,
    Object,
    ObjectAudience,
    Reaction,
    status_ids,
)
from fedsph.projects.outbox import edit_post, editable_post_fields, publish_post
from fedsph.web.keys import REMOTE
from tests.fakepeer import AS, FakePeer
from tests.support import testdb
from tests.support.members import api, member_token
from tests.support.nodes import flush, make_settings

PUBLIC = f"{AS}#Public"
SECRET = "the door code is 4711"


@pytest.fixture
async def third_host():
    fake = await FakePeer().start()
    yield fake
    await fake.stop()


async def _follow(node, follower_id: int, followed_id: int) -> None:
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=follower_id, followed_id=followed_id, state="accepted",
                      activity_uri=f"{node.base}/follows/{follower_id}-{followed_id}"))


async def _send_note(node, peer, author, **addressing) -> dict:
    note = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": author.uri,
            "content": f"<p>{addressing.pop('text')}</p>", "published": "2026-01-02T10:00:00Z",
            **addressing}
    create = {"@context": AS, "id": peer.new_id(), "type": "Create", "actor": author.uri,
              "object": note, "to": note.get("to", []), "cc": note.get("cc", [])}
    status, text = await peer.post(author, f"{node.base}/inbox", create)
    assert status == 202, text
    await flush(node)
    return note


async def _web(node, path: str, **params) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(
            node.base + path, params=params, headers={"Accept": "text/html"}) as response:
        return response.status, await response.text()


@pytest.fixture
async def received_dm(node, peer):
    """Eva (remote) sends Ana a DM; Bea, another member, follows Eva; Eva also posts publicly."""
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    eva = peer.add_actor("eva")
    eva_id = await resolve_actor(node.writers, node.app[REMOTE], eva.uri)
    await _follow(node, bea.id, eva_id)
    public = await _send_note(node, peer, eva, text="Open day on Saturday #secret",
                              to=[PUBLIC], cc=[eva.document["followers"]],
                              tag=[{"type": "Hashtag", "name": "#secret"}])
    dm = await _send_note(node, peer, eva, text=f"{SECRET} #secret", to=[ana.uri], cc=[],
                          tag=[{"type": "Mention", "href": ana.uri, "name": "@ana"},
                               {"type": "Hashtag", "name": "#secret"}])
    async with node.writers() as db:
        dm_id = await db.scalar(select(Object.id).where(Object.uri == dm["id"]))
        public_id = await db.scalar(select(Object.id).where(Object.uri == public["id"]))
    return {"ana": (ana_token, ana), "bea": (bea_token, bea), "eva": eva, "dm": dm,
            "dm_id": dm_id, "public_id": public_id}


async def test_a_received_dm_is_stored_direct_with_its_addressee(node, received_dm):
    ana = received_dm["ana"][1]
    async with node.writers() as db:
        obj = await db.get(Object, received_dm["dm_id"])
        audience = list(await db.scalars(select(ObjectAudience.actor_uri).where(
            ObjectAudience.object_id == obj.id)))
        public = await db.get(Object, received_dm["public_id"])
    assert obj.visibility == "direct" and audience == [ana.uri]
    assert public.visibility == "public"


async def test_a_follower_of_the_author_never_sees_someone_elses_dm(node, received_dm):
    token = received_dm["bea"][0]
    dm_id, public_id = str(received_dm["dm_id"]), str(received_dm["public_id"])
    status, home = await api(node, token, "GET", "/api/v1/timelines/home")
    assert status == 200 and public_id in [s["id"] for s in home]  # the follow works
    assert dm_id not in [s["id"] for s in home]
    for path in ("/api/v1/timelines/public", "/api/v1/timelines/tag/secret"):
        status, statuses = await api(node, token, "GET", path)
        assert status == 200 and dm_id not in [s["id"] for s in statuses], path
        assert public_id in [s["id"] for s in statuses], path
    status, eva_statuses = await api(node, token, "GET",
                                     f"/api/v1/accounts/{await _eva_id(node)}/statuses")
    assert status == 200 and [s["id"] for s in eva_statuses] == [public_id]
    for path in (f"/api/v1/statuses/{dm_id}", f"/api/v1/statuses/{dm_id}/context",
                 f"/api/v1/statuses/{dm_id}/favourited_by"):
        status, body = await api(node, token, "GET", path)
        assert status == 404 and body == {"error": "Record not found"}, path
    for action in ("favourite", "reblog"):
        status, _ = await api(node, token, "POST", f"/api/v1/statuses/{dm_id}/{action}")
        assert status == 404, action
    status, found = await api(node, token, "GET", "/api/v2/search",
                              params={"q": received_dm["dm"]["id"], "type": "statuses"})
    assert status == 200 and found["statuses"] == []
    await _nothing_changed(node, received_dm)


async def _eva_id(node) -> int:
    async with node.writers() as db:
        return await db.scalar(select(Actor.id).where(Actor.username == "eva",
                                                      Actor.local.is_(False)))


async def _nothing_changed(node, received_dm) -> None:
    async with node.writers() as db:
        reactions = await db.scalar(select(func.count(Reaction.id)).where(
            Reaction.object_uri == received_dm["dm"]["id"]))
        deliveries = await db.scalar(select(func.count(Delivery.id)))
        bea_notes = await db.scalar(select(func.count(Notification.id)).where(
            Notification.recipient_id == received_dm["bea"][1].id))
        obj = await db.get(Object, received_dm["dm_id"])
    assert reactions == 0 and deliveries == 0 and bea_notes == 0
    assert obj.visibility == "direct" and SECRET in obj.content


async def test_a_received_dm_is_on_no_public_page(node, received_dm):
    pages = [await _web(node, "/"), await _web(node, "/tags/secret"),
             await _web(node, "/remote/actors", uri=received_dm["eva"].uri)]
    assert all(status == 200 for status, _ in pages)
    assert "Open day on Saturday" in pages[1][1]  # the public post is there
    assert not any(SECRET in body for _, body in pages)
    status, body = await _web(node, "/remote/objects", uri=received_dm["dm"]["id"])
    assert status == 404 and SECRET not in body


async def test_the_addressee_sees_it_labelled_direct_and_is_notified(node, received_dm):
    token, _ = received_dm["ana"]
    dm_id = str(received_dm["dm_id"])
    status, entity = await api(node, token, "GET", f"/api/v1/statuses/{dm_id}")
    assert status == 200 and entity["visibility"] == "direct" and SECRET in entity["content"]
    status, home = await api(node, token, "GET", "/api/v1/timelines/home")
    assert [s["id"] for s in home] == [dm_id]  # Ana does not follow Eva: only the DM
    status, notifications = await api(node, token, "GET", "/api/v1/notifications")
    assert [(n["type"], n["status"]["id"]) for n in notifications] == [("mention", dm_id)]
    # Mastodon refuses to boost a direct post, even for its addressee.
    status, body = await api(node, token, "POST", f"/api/v1/statuses/{dm_id}/reblog")
    assert status == 422, body
    async with node.writers() as db:
        assert await db.scalar(select(func.count(Reaction.id))) == 0
        assert await db.scalar(select(func.count(Delivery.id))) == 0


async def test_a_dm_addressed_only_in_to_without_a_mention_tag_is_direct(node, peer):
    """Addressing alone decides (Mastodon's status_parser): no Mention tag is needed."""
    token, ana = await member_token(node, "ana", None)
    eva = peer.add_actor("eva")
    note = await _send_note(node, peer, eva, text=SECRET, cc=[ana.uri])
    async with node.writers() as db:
        obj = await db.scalar(select(Object).where(Object.uri == note["id"]))
    assert obj.visibility == "direct"
    status, entity = await api(node, token, "GET", f"/api/v1/statuses/{obj.id}")
    assert status == 200 and entity["visibility"] == "direct"


async def test_followers_only_stays_followers_only(node, peer):
    _, ana = await member_token(node, "ana", None)
    eva = peer.add_actor("eva")
    eva_id = await resolve_actor(node.writers, node.app[REMOTE], eva.uri)
    await _follow(node, ana.id, eva_id)
    note = await _send_note(node, peer, eva, text="members", to=[eva.document["followers"]],
                            cc=[ana.uri])
    async with node.writers() as db:
        obj = await db.scalar(select(Object).where(Object.uri == note["id"]))
    assert obj.visibility == "followers"


# -- composing a direct message from an app -------------------------------------------------------


@pytest.fixture
async def sent_dm(node, peer, third_host):
    """Ana writes Mia (on `peer`) a DM; Fol (on the third host) and Bea (local) follow Ana."""
    token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    mia, fol = peer.add_actor("mia"), third_host.add_actor("fol")
    await resolve_actor(node.writers, node.app[REMOTE], mia.uri)
    fol_id = await resolve_actor(node.writers, node.app[REMOTE], fol.uri)
    await _follow(node, fol_id, ana.id)
    await _follow(node, bea.id, ana.id)
    status, entity = await api(node, token, "POST", "/api/v1/statuses", data={
        "status": f"@mia@{peer.domain} {SECRET}", "visibility": "direct"})
    assert status == 200, entity
    await flush(node)
    return {"token": token, "ana": ana, "bea": bea, "bea_token": bea_token, "mia": mia, "fol": fol, "entity": entity}


async def test_a_composed_dm_goes_only_to_the_mentioned_actor(node, peer, third_host, sent_dm):
    assert sent_dm["entity"]["visibility"] == "direct"
    [create] = peer.activities()
    assert create["type"] == "Create"
    assert create["object"]["to"] == [sent_dm["mia"].uri] and create["object"].get("cc") in (None, [])
    assert PUBLIC not in create["to"] + create.get("cc", [])
    assert third_host.received == []  # a follower's server gets nothing
    async with node.writers() as db:
        inboxes = list(await db.scalars(select(Delivery.inbox)))
    assert all(i.startswith(peer.base) for i in inboxes) and inboxes


async def test_a_composed_dm_is_served_only_to_the_addressed_server(node, peer, third_host,
                                                                    sent_dm):
    uri = sent_dm["entity"]["uri"]
    status, _ = await peer.get(None, uri)
    assert status == 404
    status, _ = await third_host.get(sent_dm["fol"], uri)  # a follower's server, other domain
    assert status == 404
    status, document = await peer.get(sent_dm["mia"], uri)
    assert status == 200 and SECRET in document["content"]
    status, body = await _web(node, uri.removeprefix(node.base))
    assert status == 404 and SECRET not in body
    [create] = peer.activities()
    status, _ = await third_host.get(sent_dm["fol"], create["id"])
    assert status == 410


async def test_a_composed_dm_is_not_shown_to_local_followers(node, sent_dm):
    async with node.writers() as db:
        obj_id = await db.scalar(select(Object.id).where(Object.uri == sent_dm["entity"]["uri"]))
    bea_token = sent_dm["bea_token"]
    status, home = await api(node, bea_token, "GET", "/api/v1/timelines/home")
    assert status == 200 and str(obj_id) not in [s["id"] for s in home]
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{obj_id}")
    assert status == 404
    status, body = await _web(node, sent_dm["ana"].uri.removeprefix(node.base))
    assert status == 200 and SECRET not in body
    status, own = await api(node, sent_dm["token"], "GET", f"/api/v1/statuses/{obj_id}")
    assert status == 200 and own["visibility"] == "direct"


async def test_a_dm_to_nobody_is_refused_and_nothing_is_stored(node):
    token, _ = await member_token(node, "ana", None)
    status, body = await api(node, token, "POST", "/api/v1/statuses",
                             data={"status": SECRET, "visibility": "direct"})
    assert status == 422 and "direct" in body["error"]
    async with node.writers() as db:
        assert await db.scalar(select(func.count(Object.id))) == 0
        assert await db.scalar(select(func.count(Delivery.id))) == 0


async def test_a_dm_cannot_be_edited_into_a_public_post(node, sent_dm):
    async with node.writers() as db, db.begin():
        obj = await db.scalar(select(Object).where(Object.uri == sent_dm["entity"]["uri"]))
        ana = await db.get(Actor, sent_dm["ana"].id)
        fields = await editable_post_fields(db, obj)
        fields["visibility"] = "public"
        with pytest.raises(UserError, match="direct"):
            await edit_post(db, node.urls, ana, obj, **fields)
    async with node.writers() as db:
        obj = await db.scalar(select(Object).where(Object.uri == sent_dm["entity"]["uri"]))
        deliveries = await db.scalar(select(func.count(Delivery.id)))
    assert obj.visibility == "direct" and obj.updated is None and deliveries == 1


# -- rows stored before direct existed ------------------------------------------------------------


async def test_migration_reclassifies_dms_stored_as_followers_only(tmp_path):
    """Migration 0007: a remote post stored as `followers` whose document addresses neither the
    public nor its author's followers was a DM; it becomes direct, with its addressees."""
    settings = make_settings(tmp_path, database_url=testdb.empty_database_url(tmp_path))
    url = settings.effective_database_url
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0005")
    engine = make_engine(settings)
    eva_uri = "https://peer.example/users/eva"
    documents = {
        "dm": {"to": ["https://here.example/users/ana"], "cc": [],
               "tag": [{"type": "Mention", "href": "https://here.example/users/bo"}]},
        "followers": {"to": [eva_uri + "/followers"], "cc": ["https://here.example/users/ana"]},
    }
    # Today's models write rows into the 0005 schema: the hub directory's index (0011, kept by a
    # flush hook) has no tables yet, so the hook is left out while they are written.
    event.remove(Session, "after_flush", directory_index.after_flush)
    # Nor has `reactions.status_id` (0015), which a new object's id is drawn beside.
    event.remove(Object, "before_insert", status_ids.give_object_id)
    try:
        # Inserts that name their columns: a column a later migration adds (and the models
        # have) is not in the 0005 tables.
        async with async_sessionmaker(engine)() as db, db.begin():
            eva_id = await db.scalar(insert(Actor).values(
                uri=eva_uri, local=False, type="Person", username="eva", domain="peer.example",
                followers_url=eva_uri + "/followers").returning(Actor.id))
            for name, document in documents.items():
                await db.execute(insert(Object).values(
                    uri=f"https://peer.example/notes/{name}", type="Note", actor_id=eva_id,
                    local=False, visibility="followers",
                    document={"id": f"https://peer.example/notes/{name}", **document}))
        directory_index.connect()
        status_ids.connect()
        await asyncio.to_thread(migrate, url)
        async with async_sessionmaker(engine)() as db:
            kept = dict((await db.execute(select(Object.uri, Object.visibility))).all())
            audience = list(await db.scalars(select(ObjectAudience.actor_uri)
                                             .order_by(ObjectAudience.id)))
    finally:
        directory_index.connect()
        status_ids.connect()
        await engine.dispose()
    assert kept == {"https://peer.example/notes/dm": "direct",
                    "https://peer.example/notes/followers": "followers"}
    assert audience == ["https://here.example/users/ana", "https://here.example/users/bo"]


async def test_a_dm_between_members_reaches_only_its_addressee(node):
    """Local to local: no HTTP, the same rule (Cai follows Ana and still does not see it)."""
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    cai_token, cai = await member_token(node, "cai", None)
    await _follow(node, cai.id, ana.id)
    status, entity = await api(node, ana_token, "POST", "/api/v1/statuses",
                               data={"status": f"@bea {SECRET}", "visibility": "direct"})
    assert status == 200 and entity["visibility"] == "direct", entity
    await flush(node)
    status, seen = await api(node, bea_token, "GET", f"/api/v1/statuses/{entity['id']}")
    assert status == 200 and seen["visibility"] == "direct"
    _, notifications = await api(node, bea_token, "GET", "/api/v1/notifications")
    assert [(n["type"], n["status"]["id"]) for n in notifications] == [("mention", entity["id"])]
    _, home = await api(node, cai_token, "GET", "/api/v1/timelines/home")
    assert entity["id"] not in [s["id"] for s in home]
    status, _ = await api(node, cai_token, "GET", f"/api/v1/statuses/{entity['id']}")
    assert status == 404
    _, notifications = await api(node, cai_token, "GET", "/api/v1/notifications")
    assert notifications == []
    async with node.writers() as db:
        obj = await db.get(Object, int(entity["id"]))
        assert obj.local and obj.visibility == "direct"
        assert await db.scalar(select(func.count(Delivery.id))) == 0


async def test_the_web_form_cannot_publish_a_direct_post(node):
    """The compose form has no DM choice and sends no mentions: a forged visibility=direct is
    refused by publish_post (what the form calls) and nothing is stored or sent."""
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        with pytest.raises(UserError, match="direct"):
            await publish_post(db, node.urls, actor, contents={"en": SECRET},
                                 visibility="direct")
    async with node.writers() as db:
        assert await db.scalar(select(func.count(Object.id))) == 0
        assert await db.scalar(select(func.count(Delivery.id))) == 0
