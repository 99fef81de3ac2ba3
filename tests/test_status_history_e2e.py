"""Issue 13 end to end, with real `fedsph serve` processes and Mastodon.py clients: a post's
source and edit history (item 5), and the smaller items 9 (notifications that go with a
deleted post, last_status_at, the CLI's hashtags, a Note's replies/likes/shares collections).
"""

from __future__ import annotations

import io

import pytest
import requests
from mastodon import Mastodon, MastodonNotFoundError
from PIL import Image

from tests.mastodon_client import PASSWORD, logged_in, start_server, stop_server
from tests.processes import NodeProcess, wait_for

pytestmark = pytest.mark.e2e

AS2 = {"Accept": "application/activity+json"}


def png(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("status-history"))
    yield server
    stop_server(server)


def test_an_app_edits_twice_and_reads_the_source_and_the_history(server):
    ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
    red = ana.media_post(png((200, 30, 30)), mime_type="image/png", description="Red wall")
    blue = ana.media_post(png((30, 30, 200)), mime_type="image/png", description="Blue door")
    posted = ana.status_post("Pintamos la pared #Obra", media_ids=[red], spoiler_text="pintura")
    assert ana.status_history(posted.id)[0].content == posted.content  # one version, unedited
    ana.status_update(posted.id, "Pintamos la pared de rojo #Obra", spoiler_text="pintura")
    edited = ana.status_update(posted.id, "Y la puerta de azul", spoiler_text="",
                               media_ids=[blue])
    assert edited.edited_at is not None and "azul" in edited.content

    source = ana.status_source(posted.id)
    assert (source.id, source.text, source.spoiler_text) == (posted.id, "Y la puerta de azul", "")
    history = ana.status_history(posted.id)
    assert len(history) == 3
    assert "Pintamos la pared" in history[0].content and "rojo" not in history[0].content
    assert "rojo" in history[1].content and "azul" in history[2].content
    assert [h.spoiler_text for h in history] == ["pintura", "pintura", ""]
    assert [[m.description for m in h.media_attachments] for h in history] == [
        ["Red wall"], ["Red wall"], ["Blue door"]]
    assert history[0].created_at == posted.created_at
    assert history[-1].created_at == edited.edited_at == ana.status(posted.id).edited_at
    assert [h.account.acct for h in history] == ["ana"] * 3
    # bea sees the public post and its history, never its source; nothing changes for that.
    assert len(bea.status_history(posted.id)) == 3
    with pytest.raises(MastodonNotFoundError):
        bea.status_source(posted.id)
    with pytest.raises(MastodonNotFoundError):
        ana.status_source(99999999)
    with pytest.raises(MastodonNotFoundError):
        ana.status_history(99999999)
    assert ana.status_source(posted.id).text == "Y la puerta de azul"
    assert len(ana.status_history(posted.id)) == 3
    # A followers-only post's history is no more visible than the post.
    private = ana.status_post("Solo para quien me sigue", visibility="private")
    ana.status_update(private.id, "Solo para quien me sigue (editado)")
    with pytest.raises(MastodonNotFoundError):
        bea.status_history(private.id)
    assert len(ana.status_history(private.id)) == 2


def test_notifications_go_with_the_post_and_last_status_at_is_filled(server):
    ana, bea = logged_in(server, "ana"), logged_in(server, "bea")
    posted = ana.status_post("Se borrará pronto")
    assert ana.account_verify_credentials().last_status_at is not None
    bea.status_favourite(posted.id)
    bea.status_reblog(posted.id)
    wait_for(lambda: {"favourite", "reblog"} <= {n.type for n in ana.notifications()
                                                 if n.status and n.status.id == posted.id},
             what="ana's favourite and reblog notifications")
    ana.status_delete(posted.id)
    raw = requests.get(f"{server.base}/api/v1/notifications", timeout=10,
                       headers={"Authorization": f"Bearer {ana.access_token}"}).json()
    assert [n for n in raw if n["type"] in ("favourite", "reblog", "mention")
            and not n.get("status")] == []
    me = ana.account_verify_credentials()
    assert str(me.last_status_at)[:10] == posted.created_at.date().isoformat()


def test_the_cli_post_carries_its_hashtag_and_the_note_its_collections(server):
    server.cli("post", "casa", "--text", "Cosecha de hoy #Huerta")
    note = requests.get(server.base + "/actors/casa/outbox?page=1", headers=AS2,
                        timeout=10).json()["orderedItems"][0]["object"]
    assert "Cosecha de hoy" in note["content"]
    assert {"type": "Hashtag", "name": "#Huerta",
            "href": f"{server.base}/tags/huerta"} in note["tag"]
    # `replies` embedded with its first page (as Mastodon sends it), the others by URL.
    assert note["replies"]["id"] == f"{note['id']}/replies"
    assert note["replies"]["first"]["items"] == []
    for name in ("replies", "likes", "shares"):
        url = f"{note['id']}/{name}"
        assert name == "replies" or note[name] == url
        collection = requests.get(url, headers=AS2, timeout=10).json()
        assert collection["type"] == "Collection" and collection["totalItems"] == 0
    # The client API sees the same tag.
    ana = logged_in(server, "ana")
    found = ana.timeline_hashtag("huerta")
    assert [s.uri for s in found] == [note["id"]]


@pytest.fixture
def two_nodes(tmp_path):
    a, b = NodeProcess(tmp_path / "a"), NodeProcess(tmp_path / "b")
    a.cli("migrate")
    a.cli("user", "create", "ana", "--password-stdin", stdin=PASSWORD + "\n")
    b.cli("migrate")
    b.cli("user", "create", "rosa", "--password-stdin", stdin=PASSWORD + "\n")
    try:
        for node in (a, b):
            node.start()
        yield a, b
    finally:
        for node in (a, b):
            node.stop()
        for node in (a, b):
            assert "Traceback" not in node.server_log()


def test_a_remote_edit_shows_in_history_and_a_remote_delete_takes_its_notification(two_nodes):
    a, b = two_nodes
    ana, rosa = logged_in(a, "ana"), logged_in(b, "rosa")
    [remote_rosa] = ana.search_v2(f"rosa@{b.domain}", resolve=True).accounts
    ana.account_follow(remote_rosa.id)
    wait_for(lambda: ana.account_relationships(remote_rosa.id)[0].following, timeout=30,
             what="B to accept ana's follow")

    posted = rosa.status_post("Taller de carpintería el sábado")
    arrived = wait_for(lambda: next((s for s in ana.timeline_home() if s.uri == posted.uri),
                                    None), timeout=30, what="rosa's post to reach A")
    assert len(ana.status_history(arrived.id)) == 1
    rosa.status_update(posted.id, "Taller de carpintería el domingo", spoiler_text="cambio")
    history = wait_for(lambda: [h for h in [ana.status_history(arrived.id)] if len(h) == 2],
                       timeout=30, what="rosa's edit to reach A")[0]
    assert "sábado" in history[0].content and "domingo" in history[1].content
    assert [h.spoiler_text for h in history] == ["", "cambio"]
    assert history[-1].created_at == ana.status(arrived.id).edited_at
    assert ana.account(remote_rosa.id).last_status_at is not None

    mention = rosa.status_post(f"@ana@{a.domain} ¿vienes?")
    wait_for(lambda: [n for n in ana.notifications() if n.type == "mention"], timeout=30,
             what="rosa's mention to notify ana on A")
    rosa.status_delete(mention.id)
    wait_for(lambda: not [n for n in ana.notifications() if n.type == "mention"], timeout=30,
             what="rosa's Delete to take the mention notification on A")
    raw = requests.get(f"{a.base}/api/v1/notifications", timeout=10,
                       headers={"Authorization": f"Bearer {ana.access_token}"}).json()
    assert [n for n in raw if n["type"] != "follow" and not n.get("status")] == []


def test_mastodon_py_sees_the_source_entity(server):
    """Mastodon.py's own types parse the entities (it reads them into StatusSource/StatusEdit)."""
    ana = logged_in(server, "ana")
    posted = ana.status_post("Tipos")
    assert type(ana.status_source(posted.id)).__name__ == "StatusSource"
    assert type(ana.status_history(posted.id)[0]).__name__ == "StatusEdit"
    assert isinstance(ana, Mastodon)
