"""Hashtags and @mentions in statuses from apps: parsed from the text as Mastodon does, sent as
Hashtag and Mention tags, and the Create delivered to the mentioned actors' inboxes."""

from __future__ import annotations

import time

import pytest
import requests
from mastodon import Mastodon

from fedsph.api.text import hashtags, link_mentions, mentions, unlink_mentions
from fedsph.core.sanitize import clean_html
from fedsph.models import Object
from fedsph.projects.outbox import edit_post_text, publish_post
from tests.mastodon_client import logged_in, start_server, stop_server
from tests.support.db import store_remote


def test_hashtags_in_text():
    text = "Hi #Huerta and #123, #x_1 a#b http://x.example/#frag #huerta (#agua) #café"
    assert hashtags(text) == ["Huerta", "x_1", "agua", "café"]


def test_mentions_in_text():
    text = "@bea y @casa@127.0.0.1:8000, mail a@b.example; @bob@peer.example. @Bea again"
    assert mentions(text, "here.example") == [
        ("bea", "here.example"), ("casa", "127.0.0.1:8000"), ("bob", "peer.example")]
    assert mentions("no one here, see x.example/@page", "here.example") == []


def test_resolved_mentions_become_mastodon_links():
    html = ('<p>Hola @bea y @Casa@peer.example, @nadie@unknown.example '
            '<a href="https://x.example/@bea">https://x.example/@bea</a></p>')
    urls = {("bea", "here.example"): "https://here.example/@bea?a&b",
            ("casa", "peer.example"): "https://peer.example/actors/casa"}
    linked = link_mentions(html, urls, "here.example")
    assert linked == (
        '<p>Hola <span class="h-card" translate="no"><a href="https://here.example/@bea?a&amp;b"'
        ' class="u-url mention">@<span>bea</span></a></span> y <span class="h-card" '
        'translate="no"><a href="https://peer.example/actors/casa" class="u-url mention">'
        '@<span>Casa@peer.example</span></a></span>, @nadie@unknown.example '
        '<a href="https://x.example/@bea">https://x.example/@bea</a></p>')
    assert unlink_mentions(linked) == html  # the text typed is recovered for editing
    assert link_mentions(html, {}, "here.example") == html


def test_sanitizer_keeps_mention_markup():
    ours = link_mentions("<p>@bea</p>", {("bea", "h.example"): "https://h.example/@bea"},
                         "h.example")
    assert 'class="h-card" translate="no"' in clean_html(ours)
    assert 'class="u-url mention"' in clean_html(ours)
    # Mastodon's own markup, as received (fixtures/lemmy-assets/mastodon/objects/note_1.json).
    received = ('<p><span class="h-card" translate="no"><a href="https://mamot.fr/@retiolus" '
                'class="u-url mention">@<span>retiolus</span></a></span> hi</p>')
    assert clean_html(received) == received.replace(
        'class="u-url mention"', 'class="u-url mention" rel="nofollow noopener noreferrer"')
    # Other classes and translate values are dropped.
    assert clean_html('<span class="button h-card" translate="yes">x</span>') == \
        '<span class="h-card">x</span>'


async def test_mention_of_a_remote_actor_reaches_its_inbox(node, peer):
    project = await node.create_actor("casa")
    bob = peer.add_actor("bob")
    stored = await store_remote(node, bob.document)
    async with node.writers() as db, db.begin():
        obj = await publish_post(db, node.urls, await db.get(type(project), project.id),
                                   contents={"": "hola @bob@peer"}, mentions=[stored])
    note = obj.document
    mention = {"type": "Mention", "href": bob.uri, "name": f"@bob@{stored.domain}"}
    assert mention in note["tag"] and bob.uri in note["cc"]
    await node.run_worker()
    created = peer.activities("Create")
    assert [a["object"]["id"] for a in created] == [obj.uri]
    assert bob.uri in created[0]["cc"] and mention in created[0]["object"]["tag"]

    # An edit keeps the mention and tells the mentioned actor too.
    async with node.writers() as db, db.begin():
        await edit_post_text(db, node.urls, await db.get(type(project), project.id),
                             await db.get(Object, obj.id), "hola otra vez @bob@peer")
    await node.run_worker()
    updated = peer.activities("Update")
    assert updated and mention in updated[0]["object"]["tag"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mastodon-mentions"))
    yield server
    stop_server(server)


@pytest.mark.e2e
def test_status_from_an_app_with_hashtags_and_mentions(server):
    api: Mastodon = logged_in(server, "ana")
    domain = server.base.split("://", 1)[1]
    posted = api.status_post(f"Reunión con @bea y @casa@{domain} #Huerta #2024 "
                             "y @nadie@unknown.example")
    assert [t.name for t in posted.tags] == ["Huerta"]
    assert sorted(m.acct for m in posted.mentions) == ["bea", "casa"]
    assert all(m.id and m.url for m in posted.mentions)
    # Resolved mentions are Mastodon's links in the HTML; the unknown one stays plain text.
    bea_url = next(m.url for m in posted.mentions if m.acct == "bea")
    # (The API sanitises stored HTML again on the way out, which adds rel="nofollow …".)
    assert (f'<span class="h-card" translate="no"><a href="{bea_url}" class="u-url mention"'
            ) in posted.content
    assert '>@<span>bea</span></a></span>' in posted.content
    assert f"@<span>casa@{domain}</span></a></span>" in posted.content
    assert "@nadie@unknown.example" in posted.content
    assert [s.id for s in api.timeline_hashtag("huerta")] == [posted.id]

    note = requests.get(posted.uri, headers={"Accept": "application/activity+json"},
                        timeout=10).json()
    by_type = {}
    for tag in note["tag"]:
        by_type.setdefault(tag["type"], []).append(tag["name"])
    assert by_type["Hashtag"] == ["#Huerta"]
    assert sorted(by_type["Mention"]) == [f"@bea@{domain}", f"@casa@{domain}"]
    assert f"{server.base}/actors/bea" in note["cc"]
    assert clean_html(note["content"]) == posted.content


    # bea hears about it once the worker has handled the local delivery.
    bea = logged_in(server, "bea")
    for _ in range(150):  # up to 30 s: the worker is another process on a loaded machine
        if any(n.type == "mention" and n.status.id == posted.id for n in bea.notifications()):
            break
        time.sleep(0.2)
    else:
        pytest.fail("bea got no mention notification")

    # An edit keeps the links; delete-and-redraft gives back the text as typed.
    edited = api.status_update(posted.id, f"Otra vez @bea y @casa@{domain}")
    assert edited.content.count('class="u-url mention"') == 2
    assert api.status_delete(posted.id).text == f"Otra vez @bea y @casa@{domain}"
