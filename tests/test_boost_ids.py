"""Boosts with status ids of their own (issue 13, item 4; fedsph/models/status_ids.py): the
wrapper's id, GET and DELETE by it, home timeline pages mixing posts and boosts, the migration
that numbers existing boosts. The node runs in this process; a fake peer follows the booster."""

from __future__ import annotations

import asyncio
from datetime import datetime

import aiohttp
import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from fedsph.db import alembic_config, make_engine, migrate
from fedsph.models import Actor, Follow, Object, Reaction
from fedsph.projects import outbox, outbox_reactions
from tests.fakepeer import AS
from tests.mastodon_schema import mismatches, mismatches_of_list
from tests.support import testdb
from tests.support.db import add_remote_follower, store_remote
from tests.support.members import api, member_token
from tests.support.nodes import flush, make_settings


async def _boosts(node) -> list[Reaction]:
    async with node.readers() as db:
        return list(await db.scalars(select(Reaction).where(Reaction.type == "Announce")))


async def test_a_boost_has_its_own_id_and_its_owner_alone_deletes_it(node, peer):
    ana_token, ana = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    dan_token, _ = await member_token(node, "dan", None)
    carol = peer.add_actor("carol")
    await add_remote_follower(node, bea, carol)
    posts = []  # dan's (whom bea does not follow), then ana's
    for n, token in enumerate((dan_token, ana_token, ana_token, ana_token)):
        status, post = await api(node, token, "POST", "/api/v1/statuses",
                                 data={"status": f"post {n}"})
        assert status == 200, post
        posts.append(post)
    status, _ = await api(node, bea_token, "POST", f"/api/v1/accounts/{ana.id}/follow")
    assert status == 200

    # The oldest post boosted: its wrapper's id is new, after every post.
    status, wrapper = await api(node, bea_token, "POST", f"/api/v1/statuses/{posts[0]['id']}/reblog")
    assert status == 200 and mismatches(wrapper, "Status") == []
    assert wrapper["reblog"]["id"] == posts[0]["id"]
    assert int(wrapper["id"]) > int(posts[3]["id"]) and wrapper["account"]["id"] == str(bea.id)
    await flush(node)
    [announce] = peer.activities("Announce")

    # Its id answers the wrapper, to anyone who may see the post.
    for token in (ana_token, bea_token, dan_token):
        status, got = await api(node, token, "GET", f"/api/v1/statuses/{wrapper['id']}")
        assert status == 200 and got["id"] == wrapper["id"], got
        assert got["reblog"]["id"] == posts[0]["id"] and got["account"]["id"] == str(bea.id)

    # Home: the boost of the old post on top, then the posts; pages by max_id, since_id, min_id.
    status, home = await api(node, bea_token, "GET", "/api/v1/timelines/home")
    assert mismatches_of_list(home, "Status") == []
    ids = [wrapper["id"]] + [p["id"] for p in reversed(posts[1:])]
    assert [s["id"] for s in home] == ids
    assert home[0]["reblog"]["id"] == posts[0]["id"]
    _, first = await api(node, bea_token, "GET", "/api/v1/timelines/home?limit=2")
    assert [s["id"] for s in first] == ids[:2]
    _, second = await api(node, bea_token, "GET",
                          f"/api/v1/timelines/home?limit=2&max_id={first[-1]['id']}")
    assert [s["id"] for s in second] == ids[2:]
    _, newer = await api(node, bea_token, "GET",
                         f"/api/v1/timelines/home?limit=2&min_id={ids[-1]}")
    assert [s["id"] for s in newer] == ids[1:3]
    _, since = await api(node, bea_token, "GET",
                         f"/api/v1/timelines/home?since_id={ids[2]}")
    assert [s["id"] for s in since] == ids[:2]

    # Favouriting by the wrapper's id favourites the post, as Mastodon does.
    status, liked = await api(node, dan_token, "POST", f"/api/v1/statuses/{wrapper['id']}/favourite")
    assert status == 200 and liked["id"] == posts[0]["id"] and liked["favourited"] is True

    # Someone else's boost cannot be deleted: 404, and nothing changed or was sent.
    status, _ = await api(node, ana_token, "DELETE", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 404
    await flush(node)
    assert [b.status_id for b in await _boosts(node)] == [int(wrapper["id"])]
    assert peer.activities("Undo") == []
    async with node.readers() as db:
        assert (await db.get(Object, int(posts[0]["id"]))).deleted_at is None

    # Its owner deletes it: the wrapper comes back, the boost is undone and the Undo sent.
    status, deleted = await api(node, bea_token, "DELETE", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 200 and deleted["id"] == wrapper["id"] and mismatches(deleted, "Status") == []
    assert deleted["reblog"]["id"] == posts[0]["id"]
    await flush(node)
    [undo] = peer.activities("Undo")
    assert undo["actor"] == bea.uri and undo["object"]["type"] == "Announce"
    assert undo["object"]["id"] == announce["id"]
    assert await _boosts(node) == []
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 404
    status, post = await api(node, bea_token, "GET", f"/api/v1/statuses/{posts[0]['id']}")
    assert status == 200 and post["reblogged"] is False and post["reblogs_count"] == 0
    _, home = await api(node, bea_token, "GET", "/api/v1/timelines/home")
    assert [s["id"] for s in home] == ids[1:]


async def test_unreblog_answers_the_post_and_a_new_post_comes_after_the_boost(node):
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    _, post = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "hello"})
    _, wrapper = await api(node, bea_token, "POST", f"/api/v1/statuses/{post['id']}/reblog")
    _, later = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "later"})
    assert int(post["id"]) < int(wrapper["id"]) < int(later["id"])
    # Boosting again changes nothing: the same wrapper.
    _, again = await api(node, bea_token, "POST", f"/api/v1/statuses/{post['id']}/reblog")
    assert again["id"] == wrapper["id"]
    status, undone = await api(node, bea_token, "POST", f"/api/v1/statuses/{wrapper['id']}/unreblog")
    assert status == 200 and undone["id"] == post["id"] and undone["reblogged"] is False
    assert await _boosts(node) == []


async def test_an_undone_boosts_id_is_never_given_again(node):
    """The newest status, a boost, undone; after the pool's connections are gone (a restart),
    the next post still comes after it: polling since_id finds it, the old id names nothing."""
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    _, post = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "hello"})
    _, wrapper = await api(node, bea_token, "POST", f"/api/v1/statuses/{post['id']}/reblog")
    _, home = await api(node, bea_token, "GET", "/api/v1/timelines/home")
    assert [s["id"] for s in home] == [wrapper["id"]]
    status, _ = await api(node, bea_token, "DELETE", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 200
    for sessions in (node.writers, node.readers):
        await sessions.kw["bind"].dispose()
    _, later = await api(node, bea_token, "POST", "/api/v1/statuses", data={"status": "later"})
    assert int(later["id"]) > int(wrapper["id"])
    _, since = await api(node, bea_token, "GET", f"/api/v1/timelines/home?since_id={wrapper['id']}")
    assert [s["id"] for s in since] == [later["id"]]
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{wrapper['id']}")
    assert status == 404


async def test_a_lost_counter_row_is_made_again_past_every_id(node):
    """SQLite: with the counter's row gone (SQL by hand), the next post and boost still get ids
    above every post and boost, never a number already given."""
    if node.settings.effective_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL draws from the objects' sequence, not status_counter")
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    _, post = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "hello"})
    _, wrapper = await api(node, bea_token, "POST", f"/api/v1/statuses/{post['id']}/reblog")
    async with node.writers() as db, db.begin():
        await db.execute(text("DELETE FROM status_counter"))
    _, later = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "later"})
    _, boost = await api(node, bea_token, "POST", f"/api/v1/statuses/{later['id']}/reblog")
    assert int(wrapper["id"]) < int(later["id"]) < int(boost["id"])
    assert None not in [row.status_id for row in await _boosts(node)]


async def test_the_migration_numbers_existing_boosts_after_every_post(tmp_path):
    settings = make_settings(tmp_path, database_url=testdb.empty_database_url(tmp_path))
    url = settings.effective_database_url
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0013_directory_facet_statistics")
    engine = make_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO actors (uri, local, type, username, domain, manually_approves, "
                "hold_replies, created_at) VALUES ('https://p.example/u/eva', false, 'Person', "
                "'eva', 'p.example', false, false, '2026-01-01')"))
            for n in range(1, 4):
                await conn.execute(text(
                    "INSERT INTO objects (uri, type, actor_id, local, visibility, published, "
                    "hidden, approved) VALUES (:uri, 'Note', 1, false, 'public', '2026-01-01', "
                    "false, true)"), {"uri": f"https://p.example/n/{n}"})
            # Two boosts, the later one stored first; and a like.
            for kind, activity, when in (("Announce", "b2", datetime(2026, 1, 3)),
                                         ("Announce", "b1", datetime(2026, 1, 2)),
                                         ("Like", "l1", datetime(2026, 1, 4))):
                await conn.execute(text(
                    "INSERT INTO reactions (type, actor_id, object_uri, activity_uri, created_at) "
                    "VALUES (:kind, 1, 'https://p.example/n/1', :activity, :when)"),
                    {"kind": kind, "activity": f"https://p.example/a/{activity}", "when": when})
        await asyncio.to_thread(migrate, url)
        async with engine.connect() as conn:
            numbered = dict((await conn.execute(text(
                "SELECT activity_uri, status_id FROM reactions"))).all())
        assert numbered == {"https://p.example/a/b1": 4, "https://p.example/a/b2": 5,
                            "https://p.example/a/l1": None}
        # Posts stored after the upgrade come after the boosts.
        async with async_sessionmaker(engine)() as db, db.begin():
            note = Object(uri="https://p.example/n/4", type="Note", actor_id=1, local=False)
            db.add(note)
            boost = Reaction(type="Announce", actor_id=1, object_uri=note.uri,
                             activity_uri="https://p.example/a/b3")
            db.add(boost)
            await db.flush()
            assert (note.id, boost.status_id) in ((6, 7), (7, 6))
    finally:
        await engine.dispose()


async def test_a_post_boosted_twice_shows_once_in_home_as_its_latest_boost(node):
    tokens = {}
    for name in ("ana", "bea", "cai", "dan"):
        tokens[name], actor = await member_token(node, name, None)
        tokens[name + "_id"] = actor.id
    for followed in ("ana", "cai"):
        status, _ = await api(node, tokens["bea"], "POST",
                              f"/api/v1/accounts/{tokens[followed + '_id']}/follow")
        assert status == 200
    await flush(node)  # the follows accepted
    _, post = await api(node, tokens["dan"], "POST", "/api/v1/statuses", data={"status": "dan's"})
    _, first = await api(node, tokens["ana"], "POST", f"/api/v1/statuses/{post['id']}/reblog")
    _, second = await api(node, tokens["cai"], "POST", f"/api/v1/statuses/{post['id']}/reblog")
    _, home = await api(node, tokens["bea"], "GET", "/api/v1/timelines/home")
    assert [(s["id"], s["account"]["username"]) for s in home] == [(second["id"], "cai")]
    # The latest boost undone, the earlier one shows; that undone too, nothing is left.
    await api(node, tokens["cai"], "DELETE", f"/api/v1/statuses/{second['id']}")
    _, home = await api(node, tokens["bea"], "GET", "/api/v1/timelines/home")
    assert [s["id"] for s in home] == [first["id"]]
    await api(node, tokens["ana"], "POST", f"/api/v1/statuses/{post['id']}/unreblog")
    _, home = await api(node, tokens["bea"], "GET", "/api/v1/timelines/home")
    assert home == []


async def test_posts_and_boosts_made_at_once_never_share_an_id(node):
    """Concurrent writers (each its own transaction): every status id is taken once."""
    ana_token, ana = await member_token(node, "ana", None)
    boosters = [(await member_token(node, f"b{n}", None))[1] for n in range(6)]
    _, post = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "first"})

    async def write_post(n: int) -> None:
        async with node.writers() as db, db.begin():
            await outbox.publish_post(db, node.urls, await db.get(Actor, ana.id),
                                      contents={"": f"<p>post {n}</p>"})

    async def boost(actor) -> None:
        async with node.writers() as db, db.begin():
            await outbox_reactions.announce_object(db, node.urls, await db.get(Actor, actor.id),
                                                   await db.get(Object, int(post["id"])))

    await asyncio.gather(*(write_post(n) for n in range(6)), *(boost(b) for b in boosters))
    async with node.readers() as db:
        posts = list(await db.scalars(select(Object.id)))
        boosts = list(await db.scalars(select(Reaction.status_id).where(
            Reaction.type == "Announce")))
    assert len(posts) == 7 and len(boosts) == 6 and None not in boosts
    assert len(set(posts) | set(boosts)) == 13


async def test_a_post_already_in_home_is_not_shown_again_as_a_boost(node):
    """bea follows ana and cai: ana's post boosted by cai, and bea's own post boosted by bea,
    show once each, as the posts (Mastodon does not repeat a post just shown either); a boost
    of dan's post (bea does not follow dan) shows as a reblog."""
    tokens = {}
    for name in ("ana", "bea", "cai", "dan"):
        tokens[name], actor = await member_token(node, name, None)
        tokens[name + "_id"] = actor.id
    for followed in ("ana", "cai"):
        status, _ = await api(node, tokens["bea"], "POST",
                              f"/api/v1/accounts/{tokens[followed + '_id']}/follow")
        assert status == 200
    await flush(node)
    _, anas = await api(node, tokens["ana"], "POST", "/api/v1/statuses", data={"status": "a"})
    _, beas = await api(node, tokens["bea"], "POST", "/api/v1/statuses", data={"status": "b"})
    _, dans = await api(node, tokens["dan"], "POST", "/api/v1/statuses", data={"status": "d"})
    for booster, post in (("cai", anas), ("bea", beas), ("cai", dans)):
        status, wrapper = await api(node, tokens[booster], "POST",
                                    f"/api/v1/statuses/{post['id']}/reblog")
        assert status == 200, wrapper
    _, home = await api(node, tokens["bea"], "GET", "/api/v1/timelines/home")
    assert [(s["reblog"] or s)["id"] for s in home] == [wrapper["reblog"]["id"], beas["id"],
                                                         anas["id"]]
    assert home[0]["id"] == wrapper["id"] and [s["reblog"] for s in home[1:]] == [None, None]


async def test_a_followers_only_boost_shows_to_the_boosters_followers_only(node, peer):
    """zoe (elsewhere) boosts ana's public post for her followers only (Misskey does): bea, who
    follows zoe, opens the wrapper by its id; ana, and anyone without a token, get a 404."""
    ana_token, _ = await member_token(node, "ana", None)
    bea_token, bea = await member_token(node, "bea", None)
    zoe = peer.add_actor("zoe")
    zoe_row = await store_remote(node, zoe.document)
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=bea.id, followed_id=zoe_row.id, state="accepted"))
    _, post = await api(node, ana_token, "POST", "/api/v1/statuses", data={"status": "hello"})
    announce = {"@context": AS, "id": peer.new_id(), "type": "Announce", "actor": zoe.uri,
                "object": post["uri"], "to": [zoe.uri + "/followers"], "cc": [post["account"]["url"]]}
    status, _ = await peer.post(zoe, f"{node.base}/inbox", announce)
    assert status == 202
    await flush(node)
    [boost] = await _boosts(node)
    assert boost.followers_only and boost.status_id > int(post["id"])
    status, wrapper = await api(node, bea_token, "GET", f"/api/v1/statuses/{boost.status_id}")
    assert status == 200 and wrapper["reblog"]["id"] == post["id"]
    _, home = await api(node, bea_token, "GET", "/api/v1/timelines/home")
    assert [s["id"] for s in home] == [str(boost.status_id)]
    status, _ = await api(node, ana_token, "GET", f"/api/v1/statuses/{boost.status_id}")
    assert status == 404
    async with aiohttp.ClientSession() as http, \
            http.get(f"{node.base}/api/v1/statuses/{boost.status_id}") as response:
        assert response.status == 404
    # Acting on the wrapper's id (thread, favourite) is as closed to others as the wrapper; the
    # post itself stays open by its own id, and the list of boosters leaves zoe out.
    for path, method in ((f"/api/v1/statuses/{boost.status_id}/context", "GET"),
                         (f"/api/v1/statuses/{boost.status_id}/favourite", "POST")):
        status, _ = await api(node, ana_token, method, path)
        assert status == 404, path
    status, _ = await api(node, bea_token, "GET", f"/api/v1/statuses/{boost.status_id}/context")
    assert status == 200
    _, boosters = await api(node, ana_token, "GET", f"/api/v1/statuses/{post['id']}/reblogged_by")
    assert boosters == []
    async with node.readers() as db:
        assert await db.scalar(select(Reaction).where(Reaction.type == "Like")) is None
