"""What Mastodon sends besides posts and follows: account moves (Move), reports (Flag), and the
notifications our actors get for follows, favourites, reblogs and mentions."""

from __future__ import annotations

from sqlalchemy import func, select

from fedsph.admin import node as admin_node
from fedsph.cli import build_parser
from fedsph.federation.activitystreams import AS_CONTEXT, PUBLIC
from fedsph.federation.actors import get_actor_by_uri, parse_actor_document
from fedsph.models import Actor, Follow, InboxItem, Notification, Report
from fedsph.projects.outbox import publish_text_post
from fedsph.projects.queries import notifications_for
from tests.fakepeer import FakePeer
from tests.support.db import add_follow, store_remote
from tests.support.members import browser, login, make_user


def activity(peer: FakePeer, actor, activity_type: str, obj, **extra) -> dict:
    return {"@context": AS_CONTEXT, "id": peer.new_id(), "type": activity_type,
            "actor": actor.uri, "object": obj, **extra}


async def send(node, peer: FakePeer, actor, document: dict) -> InboxItem:
    """POST a signed activity to the shared inbox, run the worker, return the inbox row."""
    status, text = await peer.post(actor, node.urls.shared_inbox(), document)
    assert status == 202, text
    await node.run_worker()
    async with node.readers() as db:
        return await db.scalar(select(InboxItem).where(InboxItem.activity_uri == document["id"]))


async def follows_of(node, follower) -> dict[str, str]:
    """{followed uri: state} of a local actor."""
    async with node.readers() as db:
        rows = await db.execute(select(Actor.uri, Follow.state)
                                .join(Follow, Follow.followed_id == Actor.id)
                                .where(Follow.follower_id == follower.id))
        return dict(rows.all())


# -- Move ----------------------------------------------------------------------------------------

async def test_move_with_alias_moves_our_follow_to_the_new_account(node, peer):
    project = await node.create_actor("coop")
    old = peer.add_actor("alice")
    new = peer.add_actor("alicenew")
    await add_follow(node, project, await store_remote(node, old.document))
    # Cached before the alias was set: the worker must fetch the new account afresh.
    await store_remote(node, new.document)
    new.document["alsoKnownAs"] = [old.uri]
    old.document["movedTo"] = new.uri

    item = await send(node, peer, old, activity(peer, old, "Move", old.uri, target=new.uri))
    assert (item.status, item.last_error) == ("done", None)

    [undo] = peer.activities("Undo")
    assert undo["actor"] == project.uri
    assert undo["object"]["type"] == "Follow" and undo["object"]["object"] == old.uri
    [request] = peer.activities("Follow")
    assert request["actor"] == project.uri and request["object"] == new.uri
    assert await follows_of(node, project) == {new.uri: "pending"}
    async with node.readers() as db:
        assert (await get_actor_by_uri(db, old.uri)).moved_to == new.uri
        assert (await get_actor_by_uri(db, new.uri)).also_known_as == [old.uri]


async def test_move_to_an_account_without_the_alias_is_ignored(node, peer):
    project = await node.create_actor("coop")
    old = peer.add_actor("alice")
    impostor = peer.add_actor("mallory")  # does not list alice in alsoKnownAs
    await add_follow(node, project, await store_remote(node, old.document))

    item = await send(node, peer, old, activity(peer, old, "Move", old.uri, target=impostor.uri))
    assert item.status == "ignored" and "alsoKnownAs" in item.last_error
    await node.run_worker()
    assert peer.activities("Undo") == [] and peer.activities("Follow") == []
    assert await follows_of(node, project) == {old.uri: "accepted"}
    async with node.readers() as db:
        assert (await get_actor_by_uri(db, old.uri)).moved_to is None


async def test_move_of_another_account_is_ignored(node, peer):
    project = await node.create_actor("coop")
    old = peer.add_actor("alice")
    mallory = peer.add_actor("mallory", alsoKnownAs=[old.uri])
    await add_follow(node, project, await store_remote(node, old.document))
    item = await send(node, peer, mallory,
                      activity(peer, mallory, "Move", old.uri, target=mallory.uri))
    assert item.status == "ignored"
    assert await follows_of(node, project) == {old.uri: "accepted"}


def test_actor_documents_keep_moved_to_and_also_known_as():
    base = {"id": "https://a.example/users/x", "type": "Person", "inbox": "https://a.example/in"}
    values = parse_actor_document({**base, "movedTo": "https://b.example/users/x",
                                   "alsoKnownAs": ["https://c.example/u/x", 5, "ftp://no"]})
    assert values["moved_to"] == "https://b.example/users/x"
    assert values["also_known_as"] == ["https://c.example/u/x"]
    values = parse_actor_document(base)
    assert (values["moved_to"], values["also_known_as"]) == (None, None)


# -- Flag ----------------------------------------------------------------------------------------

async def run_reports(node, capsys, *args: str) -> str:
    parsed = build_parser().parse_args(["reports", *args])
    assert await admin_node.run(node.settings, admin_node.reports, parsed) == 0
    return capsys.readouterr().out


async def test_flag_is_stored_once_and_listed_by_the_cli(node, peer, capsys):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Hola")
    moderator = peer.add_actor("instance", "Application")
    flag = activity(peer, moderator, "Flag", [project.uri, note.uri], content="Spam\nlinks")
    item = await send(node, peer, moderator, flag)
    assert (item.status, item.last_error) == ("done", None)
    # The same report again, under a new inbox row (its id is what makes it the same).
    async with node.writers() as db, db.begin():
        db.add(InboxItem(activity_uri=flag["id"] + "#again", type="Flag", actor_uri=moderator.uri,
                         body=item.body))
    await node.run_worker()
    async with node.readers() as db:
        [report] = list(await db.scalars(select(Report)))
    assert report.object_uris == [project.uri, note.uri]
    assert report.target_id == project.id and report.content == "Spam\nlinks"

    out = await run_reports(node, capsys)
    assert f"{report.id}\t" in out and f"by {moderator.uri}" in out
    assert f"about {project.uri}" in out and "Spam links" in out and note.uri in out
    assert "resolved report" in await run_reports(node, capsys, "--resolve", str(report.id))
    assert await run_reports(node, capsys) == ""
    assert "resolved" in await run_reports(node, capsys, "--all")


async def test_flag_about_a_post_only_targets_its_author(node, peer):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Hola")
    ana = peer.add_actor("ana")
    item = await send(node, peer, ana, activity(peer, ana, "Flag", [note.uri]))
    assert item.status == "done"
    async with node.readers() as db:
        report = await db.scalar(select(Report))
        reporter = await get_actor_by_uri(db, ana.uri)
    assert (report.target_id, report.reporter_id, report.content) == (project.id, reporter.id, None)


async def test_flag_of_nothing_here_is_ignored(node, peer):
    await node.create_actor("coop")
    ana, bob = peer.add_actor("ana"), peer.add_actor("bob")
    item = await send(node, peer, ana, activity(peer, ana, "Flag", [bob.uri]))
    assert item.status == "ignored"
    async with node.readers() as db:
        assert await db.scalar(select(Report)) is None


# -- notifications -------------------------------------------------------------------------------

async def kinds(node, actor) -> list[tuple[str, str | None]]:
    async with node.readers() as db:
        return [(n.type, n.object_uri) for n, _ in await notifications_for(db, actor)]


async def test_follow_and_follow_request_notify_the_project(node, peer):
    open_project = await node.create_actor("coop")
    closed = await node.create_actor("closed", manually_approves=True)
    ana = peer.add_actor("ana")
    request = activity(peer, ana, "Follow", open_project.uri)
    await send(node, peer, ana, request)
    await send(node, peer, ana, activity(peer, ana, "Follow", open_project.uri))  # again
    await send(node, peer, ana, activity(peer, ana, "Follow", closed.uri))
    assert await kinds(node, open_project) == [("follow", None)]
    assert await kinds(node, closed) == [("follow_request", None)]
    async with node.readers() as db:
        [(notification, sender)] = await notifications_for(db, open_project)
        assert notification.activity_uri == request["id"] and sender.uri == ana.uri
        assert await unread_notification_count(db, open_project) == 1


async def unread_notification_count(db, actor: Actor) -> int:
    """Notifications of `actor` not dismissed yet."""
    return await db.scalar(select(func.count(Notification.id)).where(
        Notification.recipient_id == actor.id, Notification.dismissed_at.is_(None))) or 0


async def test_like_announce_and_mentions_notify_the_author(node, peer):
    project = await node.create_actor("coop")
    other = await node.create_actor("other")
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Hola")
    ana = peer.add_actor("ana")
    await send(node, peer, ana, activity(peer, ana, "Like", note.uri))
    await send(node, peer, ana, activity(peer, ana, "Announce", note.uri))
    reply = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": ana.uri,
             "content": "<p>Bien</p>", "inReplyTo": note.uri, "to": [PUBLIC]}
    await send(node, peer, ana, activity(peer, ana, "Create", reply))
    mention = {"id": peer.new_id("notes"), "type": "Note", "attributedTo": ana.uri,
               "content": "<p>@coop @other</p>", "to": [PUBLIC], "cc": [project.uri, other.uri],
               "tag": [{"type": "Mention", "href": project.uri, "name": "@coop"},
                       {"type": "Mention", "href": other.uri, "name": "@other"}]}
    await send(node, peer, ana, activity(peer, ana, "Create", mention))

    assert await kinds(node, project) == [("mention", mention["id"]), ("mention", reply["id"]),
                                          ("reblog", note.uri), ("favourite", note.uri)]
    assert await kinds(node, other) == [("mention", mention["id"])]
    async with node.readers() as db:
        assert len(list(await db.scalars(select(Notification)))) == 5

    await make_user(node, "bea", project)
    async with browser() as client:
        await login(client, node, "bea")
        async with client.get(f"{node.base}/actors/coop/manage") as page:
            text = await page.text()
    assert "Mentions and replies" in text
    assert text.count("/remote/objects?uri=") == 2 and "@ana@" in text
