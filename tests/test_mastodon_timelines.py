"""Reading from Mastodon apps: home, public and hashtag timelines, notifications, markers and
preferences, driven by Mastodon.py against a real `fedsph serve` process (with its worker, which
hands local follows to the local inbox).
"""

from __future__ import annotations

import aiohttp
import pytest
import requests
from mastodon import Mastodon, MastodonNotFoundError

from fedsph.projects.outbox import publish_post
from tests.mastodon_client import logged_in, start_server, stop_server
from tests.processes import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mastodon-timelines"))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def ana(server) -> Mastodon:
    return logged_in(server, "ana")


@pytest.fixture(scope="module")
def bea(server) -> Mastodon:
    return logged_in(server, "bea")


def _follow(follower: Mastodon, target: Mastodon) -> None:
    target_id = target.account_verify_credentials().id
    follower.account_follow(target_id)
    wait_for(lambda: follower.account_relationships(target_id)[0].following,
             what="the local follow to be accepted")


def test_home_shows_own_and_followed_posts_with_pagination(server, ana, bea):
    own = [ana.status_post(f"Ana escribe {n}") for n in range(3)]
    server.cli("post", "casa", "--text", "Casa habla, pero ana no la sigue")
    bea_before = bea.status_post("Bea antes de que ana la siga")
    _follow(ana, bea)
    bea_private = bea.status_post("Solo para quien me sigue", visibility="private")

    home = ana.timeline_home()
    ids = [s.id for s in home]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert {s.id for s in own} | {bea_before.id, bea_private.id} == set(ids)
    assert all("Casa habla" not in s.content for s in home)
    assert next(s for s in home if s.id == bea_private.id).visibility == "private"

    first = ana.timeline_home(limit=2)
    assert [s.id for s in first] == ids[:2]
    second = ana.fetch_next(first)
    assert [s.id for s in second] == ids[2:4]
    assert [s.id for s in ana.timeline_home(since_id=ids[2])] == ids[:2]
    assert [s.id for s in ana.timeline_home(min_id=ids[2], limit=1)] == [ids[1]]

    # Other accounts do not see bea's followers-only post in public timelines.
    public_ids = [s.id for s in ana.timeline_public(local=True)]
    assert bea_before.id in public_ids and bea_private.id not in public_ids
    assert all(s.id != bea_private.id for s in ana.timeline_public(remote=True))


def test_public_local_timeline_without_token(server, ana):
    posted = ana.status_post("Un post público para todo el mundo")
    answer = requests.get(f"{server.base}/api/v1/timelines/public?local=true&limit=1", timeout=10)
    assert answer.ok and [s["id"] for s in answer.json()] == [str(posted.id)]
    assert 'rel="next"' in answer.headers["Link"]
    assert requests.get(f"{server.base}/api/v1/timelines/public?remote=true",
                        timeout=10).json() == []


async def test_hashtag_timeline(node):
    # Hashtags come with updates written on the site (the API does not parse them from text).
    project = await node.create_actor("huerta")
    async with node.writers() as db, db.begin():
        author = await db.get(type(project), project.id)
        tagged = await publish_post(db, node.urls, author, contents={"": "Sembramos hoy"},
                                      hashtags=["Huerta_Viva"])
        await publish_post(db, node.urls, author, contents={"": "Sin etiqueta"})
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base}/api/v1/timelines/tag/huerta_viva") as answer:
            assert answer.status == 200
            hits = await answer.json()
        async with http.get(f"{node.base}/api/v1/timelines/tag/huertaxviva") as answer:
            assert await answer.json() == []  # `_` is literal, not a LIKE wildcard
    assert [s["id"] for s in hits] == [str(tagged.id)]
    assert [t["name"] for t in hits[0]["tags"]] == ["Huerta_Viva"]


def test_follow_notification_then_dismiss_and_clear(ana, bea):
    _follow(bea, ana)
    bea_id = bea.account_verify_credentials().id
    notes = wait_for(lambda: ana.notifications(types=["follow"]), what="the follow notification")
    [note] = notes
    assert note.type == "follow" and note.account.id == bea_id and note.status is None
    assert ana.notifications(id=note.id).id == note.id
    assert ana.notifications(exclude_types=["follow"]) == []
    assert ana.notifications(types=["mention"]) == []
    with pytest.raises(MastodonNotFoundError):
        bea.notifications(id=note.id)  # not bea's

    ana.notifications_dismiss(note.id)
    assert ana.notifications() == []
    with pytest.raises(MastodonNotFoundError):
        ana.notifications(id=note.id)
    ana.notifications_clear()
    assert ana.notifications() == []


def test_markers_are_stored_and_survive_a_restart(server, ana, bea):
    assert ana.markers_get(["home", "notifications"]) == {}
    newest = ana.timeline_home(limit=1)[0]
    saved = ana.markers_set(["home"], [newest.id])
    assert saved.home.last_read_id == str(newest.id) and saved.home.version == 1
    again = ana.markers_get(["home"])
    assert again.home.last_read_id == str(newest.id)
    assert ana.markers_set(["home"], [newest.id]).home.version == 2
    assert bea.markers_get(["home"]) == {}  # markers are per account

    # JSON bodies (as Elk sends them) set both timelines at once; bad ids get a clear 422.
    url, auth = f"{server.base}/api/v1/markers", {"Authorization": f"Bearer {ana.access_token}"}
    both = requests.post(url, headers=auth, timeout=10, json={
        "home": {"last_read_id": str(newest.id)}, "notifications": {"last_read_id": "7"}}).json()
    assert both["home"]["version"] == 3 and both["notifications"] == {
        "last_read_id": "7", "version": 1, "updated_at": both["notifications"]["updated_at"]}
    bad = requests.post(url, headers=auth, timeout=10, json={"home": {"last_read_id": {}}})
    assert bad.status_code == 422 and "last_read_id" in bad.json()["error"]

    server.stop()
    server.start()
    after = ana.markers_get(["home", "notifications"])
    assert after.home.last_read_id == str(newest.id) and after.home.version == 3
    assert after.notifications.last_read_id == "7"
    assert ana.markers_get(["notifications"]).keys() == {"notifications"}


def test_preferences(ana):
    preferences = ana.preferences()
    assert preferences["posting:default:visibility"] == "public"
    assert preferences["posting:default:sensitive"] is False
    assert preferences["reading:expand:spoilers"] is False
