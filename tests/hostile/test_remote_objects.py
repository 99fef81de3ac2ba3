"""Objects fetched by URL are bound to the server that served them (fedsph.federation.remote_objects.
fetch_object), and only a member's token makes this node fetch at all (search resolve=true)."""

from __future__ import annotations

import json
import sqlite3

import aiohttp
import pytest
from sqlalchemy import func, select

from fedsph.accounts import hash_token
from fedsph.errors import UserError
from fedsph.events.commands import _remote_event
from fedsph.hub.backfill import fetch_backfill
from fedsph.models import Actor, OAuthApp, OAuthToken, Object, User, utcnow
from fedsph.web.keys import REMOTE
from tests.fakepeer import FakePeer

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS}#Public"


@pytest.fixture
async def attacker():
    fake = await FakePeer().start()
    yield fake
    await fake.stop()


async def _token(node, member: bool = True) -> str:
    """A read token, made directly in the database: a member's, or an app's own (no user)."""
    user = actor = None
    if member:
        actor = await node.create_actor("lector", "Person")
    async with node.writers() as db, db.begin():
        if member:
            user = User(username="lector", actor_id=actor.id)
            db.add(user)
        app = OAuthApp(client_id="test-client", client_secret_hash=hash_token("secret"),
                       name="tests", website=None, redirect_uris="urn:ietf:wg:oauth:2.0:oob",
                       scopes="read")
        db.add(app)
        await db.flush()
        db.add(OAuthToken(token_hash=hash_token("the-token"), app_id=app.id,
                          user_id=user.id if user else None, actor_id=actor.id if actor else None,
                          scopes="read", created_at=utcnow()))
    return "the-token"


async def _search(node, token: str, **params) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{node.base}/api/v2/search", params=params,
            headers={"Authorization": f"Bearer {token}"}) as answer:
        return answer.status, await answer.json()


async def _remote_rows(node) -> tuple[int, int]:
    """(remote objects, remote actors) stored."""
    async with node.readers() as db:
        objects = await db.scalar(select(func.count(Object.id)).where(Object.local.is_(False)))
        actors = await db.scalar(select(func.count(Actor.id)).where(Actor.local.is_(False)))
    return objects, actors


def _open_redirect(victim: FakePeer, attacker: FakePeer, kind: str = "Note") -> tuple[str, str]:
    """The victim's /out redirects anywhere; the attacker serves, there, a post claiming to be
    the victim's /out by the victim's alice. Returns (the URL on the victim, alice's URI)."""
    alice = victim.add_actor("alice")
    out = f"{victim.base}/out"
    victim.redirects["/out"] = attacker.serve("/forged", {
        "@context": AS, "id": out, "type": kind, "attributedTo": alice.uri, "to": [PUBLIC],
        "content": "<p>Alice never wrote this</p>", "published": "2026-01-02T03:04:05Z",
        "startTime": "2026-03-01T10:00:00Z"})
    return out, alice.uri


async def test_search_stores_no_post_forged_through_an_open_redirect(node, peer, attacker):
    out, _ = _open_redirect(peer, attacker)
    token = await _token(node)
    status, found = await _search(node, token, q=out, resolve="true")
    assert status == 200 and found["statuses"] == []
    assert "/forged" in attacker.gets()  # the redirect was followed: the binding refused it
    assert await _remote_rows(node) == (0, 0)
    status, found = await _search(node, token, q=out, type="statuses")
    assert found["statuses"] == []


async def test_search_follows_a_redirect_to_the_posts_own_id(node, peer):
    """A redirect itself is fine: the post is believed as the URL that served it."""
    eva = peer.add_actor("eva")
    note_id = f"{peer.base}/notes/1"
    peer.objects[note_id] = {"@context": AS, "id": note_id, "type": "Note", "to": [PUBLIC],
                             "attributedTo": eva.uri, "content": "<p>Hola</p>"}
    peer.redirects["/@eva/1"] = note_id
    status, found = await _search(node, await _token(node), q=f"{peer.base}/@eva/1",
                                  resolve="true")
    assert status == 200 and [s["uri"] for s in found["statuses"]] == [note_id]


async def test_an_app_token_makes_the_node_fetch_nothing(node, peer):
    """As on Mastodon, resolve=true needs a user: an app's own token acts for nobody."""
    eva = peer.add_actor("eva")
    note_id = f"{peer.base}/notes/1"
    peer.objects[note_id] = {"@context": AS, "id": note_id, "type": "Note", "to": [PUBLIC],
                             "attributedTo": eva.uri, "content": "<p>Hola</p>"}
    token = await _token(node, member=False)
    for query in (note_id, eva.uri, f"eva@{peer.domain}"):
        status, _ = await _search(node, token, q=query, resolve="true")
        assert status == 401, query
    assert peer.gets() == [] and await _remote_rows(node) == (0, 0)


async def test_joining_an_event_forged_through_an_open_redirect_fails(node, peer, attacker):
    """`fedsph event join URL` fetches the event: it must be the one its URL's server has."""
    out, _ = _open_redirect(peer, attacker, kind="Event")

    class Cli:  # what fedsph.cli hands the event commands
        writers, remote = node.writers, node.app[REMOTE]

    with pytest.raises(UserError):
        await _remote_event(Cli, out)
    assert await _remote_rows(node) == (0, 0)


async def test_backfill_ignores_an_outbox_redirected_to_another_server(node, peer, attacker):
    """A hub backfills a project's posts from its outbox only as that project's server has it."""
    project = peer.add_actor("coop", "Group")
    peer.redirects["/users/coop/outbox"] = attacker.serve("/outbox", {
        "@context": AS, "id": project.document["outbox"], "type": "OrderedCollection",
        "orderedItems": [{"type": "Create", "actor": project.uri, "to": [PUBLIC], "object": {
            "id": f"{peer.base}/notes/forged", "type": "Note", "attributedTo": project.uri,
            "to": [PUBLIC], "content": "forged"}}]})
    activity = {"actor": project.uri, "object": project.document["outbox"]}
    await fetch_backfill(node.app[REMOTE], activity)
    assert "/outbox" in attacker.gets() and activity["items"] == []


# -- URLs stored by older versions ---------------------------------------------------------------

OLD_ACTOR = ("INSERT INTO actors (id, uri, local, type, username, domain, manually_approves, "
             "created_at, url, icon_url, header_url, outbox, also_known_as, profile) VALUES "
             "(?, ?, ?, 'Person', ?, 'old.example', 0, '2026-01-01', ?, ?, ?, ?, ?, ?)")
OLD_OBJECT = ("INSERT INTO objects (id, uri, type, actor_id, local, visibility, published, url, "
              "attachments, tags) VALUES (?, ?, 'Event', ?, ?, 'public', '2026-01-01', ?, ?, ?)")


def _insert_old_rows(path) -> None:
    good_image = {"type": "Image", "url": "https://old.example/a.png",
                  "license": "javascript:alert(4)"}
    with sqlite3.connect(path) as db:
        db.executemany(OLD_ACTOR, [
            (1, "https://old.example/users/o", 0, "o", "javascript:alert(1)",
             "javascript:alert(2)", "https://old.example/h.png", "https://old.example/out",
             json.dumps(["https://old.example/users/p", "data:,x"]),
             json.dumps({"links": [{"kind": "website", "url": "vbscript:x"},
                                   {"kind": "website", "url": "https://old.example/"}],
                         "partners": [{"name": "P", "url": "javascript:alert(3)"}]})),
            (2, "http://127.0.0.1:1/actors/us", 1, "us", "https://ours.example/", None, None,
             None, None, None)])
        db.executemany(OLD_OBJECT, [
            (1, "https://old.example/notes/1", 1, 0, "JAVASCRIPT:alert(1)",
             json.dumps([{"type": "Image", "url": "javascript:alert(2)"}, good_image]),
             json.dumps([{"type": "Hashtag", "name": "#a", "href": "javascript:alert(3)"}])),
            (2, "https://old.example/notes/2", 1, 0, "https://old.example/@o/2", None, None)])
        db.execute("INSERT INTO events (object_id, starts_at, join_mode, online_url) "
                   "VALUES (1, '2026-03-01', 'free', 'java\tscript:alert(5)')")


@pytest.mark.sqlite  # the old rows are written through SQLite's own driver
def test_the_migration_cleans_urls_stored_by_older_versions(tmp_path):
    from alembic import command

    from fedsph.db import alembic_config

    path = tmp_path / "old.sqlite3"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0007")
    _insert_old_rows(path)
    command.upgrade(config, "head")
    with sqlite3.connect(path) as db:
        actors = {row[0]: row[1:] for row in db.execute(
            "SELECT id, url, icon_url, header_url, outbox, also_known_as, profile FROM actors")}
        objects = {row[0]: row[1:] for row in db.execute(
            "SELECT id, url, attachments, tags FROM objects")}
        online = db.execute("SELECT online_url FROM events").fetchone()[0]
    url, icon, header, outbox, aliases, profile = actors[1]
    assert (url, icon, header, outbox) == ("https://old.example/users/o", None,
                                           "https://old.example/h.png", "https://old.example/out")
    assert json.loads(aliases) == ["https://old.example/users/p"]
    assert json.loads(profile) == {"links": [{"kind": "website", "url": "https://old.example/"}],
                                   "partners": [{"name": "P"}]}
    assert actors[2][0] == "https://ours.example/"  # our own actors are not touched
    url, attachments, tags = objects[1]
    assert url == "https://old.example/notes/1"
    assert json.loads(attachments) == [{"type": "Image", "url": "https://old.example/a.png"}]
    assert json.loads(tags) == [{"type": "Hashtag", "name": "#a"}]
    assert objects[2] == ("https://old.example/@o/2", None, None) and online is None
