"""The public pages: node home, project page, update page, remote follow; size and languages."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp import web
from markupsafe import escape
from PIL import Image

from fedsph.core import vocab
from fedsph.models import Actor, Follow, Object, utcnow
from fedsph.projects.media import save_upload
from fedsph.projects.outbox import publish_post
from tests.fakepeer import FakePeer
from tests.support.pages import fetch, make_project, publish


def jpeg(width: int = 800, height: int = 600) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 160, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


async def add_remote_actors(node, project: Actor, count: int) -> list[Actor]:
    """Remote accounts that follow the project and that it follows."""
    async with node.writers() as db, db.begin():
        others = []
        for i in range(count):
            other = Actor(uri=f"https://remote{i}.example/users/friend{i}", local=False,
                          type="Group", username=f"friend{i}", domain=f"remote{i}.example",
                          name=f"Friend project {i}", inbox=f"https://remote{i}.example/inbox")
            db.add(other)
            await db.flush()
            db.add(Follow(follower_id=other.id, followed_id=project.id, state="accepted"))
            db.add(Follow(follower_id=project.id, followed_id=other.id, state="accepted"))
            others.append(other)
    return others


async def test_project_page_with_full_profile_and_20_updates_is_under_30_kb(node):
    project = await make_project(node)
    await add_remote_actors(node, project, 20)
    start = utcnow() - timedelta(days=30)
    for i in range(20):
        async with node.writers() as db, db.begin():
            actor = await db.get(Actor, project.id)
            media = [await save_upload(db, node.settings, actor, jpeg(), f"Obra, semana {i}",
                                       "CC-BY-4.0", None)] if i < 4 else []
            await publish_post(
                db, node.urls, actor,
                contents={"es": f"Avanzamos con la obra, semana {i}. Losas y muros.",
                          "en": f"Building goes on, week {i}. Slabs and walls."},
                title_map={"es": f"Semana {i}", "en": f"Week {i}"}, kind="progress",
                hashtags=["ayudamutua"], themes=["mutual_aid"], media=media,
                published=start + timedelta(days=i))
    status, headers, body = await fetch(project.uri)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    size = len(body.encode())
    assert size < 30 * 1024, f"project page weighs {size} bytes"
    print(f"project page: {size} bytes")
    assert body.count("<article") == 20
    assert len(re.findall(r"<h1[ >]", body)) == 1
    assert f'<link rel="alternate" type="application/atom+xml" href="{project.uri}/feed.atom"' in body
    assert f'<link rel="alternate" type="application/activity+json" href="{project.uri}">' in body
    assert f'value="@coop@{node.settings.domain}"' in body
    assert 'action="/remote-follow"' in body and 'name="handle"' in body
    assert body.count('loading="lazy"') >= 4 and "srcset=" in body and 'alt="Obra, semana 3"' in body
    assert re.search(r'<img [^>]*width="\d+" height="\d+"', body)
    assert "Friend project 19" in body and "(20)" in body


async def test_profile_fields_show_with_spanish_labels(node):
    project = await make_project(node)
    status, _, body = await fetch(project.uri + "?lang=es")
    assert status == 200 and '<html lang="es">' in body
    for field, slug in [("stage", "building"), ("approach", "mutual_aid_cooperative"),
                        ("tenure", "use_rights_in_cooperative"), ("financing", "public_loan"),
                        ("settlement_type", "urban"), ("themes", "self_management"),
                        ("region", "latin_america_caribbean"), ("partner_role", "technical_support"),
                        ("link_kind", "website"), ("location_precision", "neighbourhood")]:
        spanish = vocab.label(field, slug, "es")
        assert spanish != slug, f"{field}/{slug} has no Spanish label"
        assert str(escape(spanish)) in body, f"{field}: {spanish!r} missing"
    assert "Cooperativa de vivienda por ayuda mutua" in body  # description in Spanish
    assert "Cooperativa Sur" in body and "Uruguay" in body and "español" in body
    for text in ("40", "130", "2024-01-01", "12", "2019", "2026", "Centro Cooperativo",
                 "https://coop.example/", "Sitio web", "Barrio Sur, Montevideo"):
        assert text in body
    # The same page in English: English labels and the English description and name.
    _, _, english = await fetch(project.uri + "?lang=en")
    assert vocab.label("stage", "building", "en") in english
    assert "A mutual-aid housing cooperative" in english and "South Cooperative" in english


async def test_openstreetmap_link_uses_rounded_coordinates(node):
    project = await make_project(node)
    _, _, body = await fetch(project.uri)
    assert "https://www.openstreetmap.org/?mlat=-34.91&amp;mlon=-56.19#map=14/-34.91/-56.19" in body
    assert "34.9087" not in body and "56.1876" not in body


async def test_update_shows_in_the_visitors_language_with_links_to_the_others(node):
    project = await make_project(node)
    obj = await publish(node, project, contents={"es": "Terminamos el techo.",
                                                 "en": "We finished the roof."},
                        title_map={"es": "El techo", "en": "The roof"}, kind="milestone",
                        themes=["mutual_aid"])
    _, _, english = await fetch(obj.uri, **{"Accept-Language": "en"})
    assert "We finished the roof." in english and "Terminamos el techo." not in english
    assert re.search(r'<h1 lang="en">The roof</h1>', english)
    path = obj.uri.removeprefix(node.base)
    assert f'href="{path}?show=es" hreflang="es" lang="es"' in english
    assert vocab.label("update_kind", "milestone", "en") in english
    assert vocab.label("themes", "mutual_aid", "en") in english
    _, _, spanish = await fetch(obj.uri + "?lang=es")
    assert "Terminamos el techo." in spanish and "We finished the roof." not in spanish
    assert '<div class="content" lang="es">' in spanish and f"{path}?show=en" in spanish
    # An English reader asks for the Spanish text; the page says which language it is in.
    _, _, shown = await fetch(obj.uri + "?show=es&lang=en")
    assert '<div class="content" lang="es"><p>Terminamos el techo.' in shown
    assert f"{path}?show=en" in shown
    # The home page shows the project's name in the visitor's language and the update.
    _, _, home = await fetch(node.base + "/?lang=en")
    assert "South Cooperative" in home and "We finished the roof." in home


async def test_content_warning_is_a_details_element(node):
    project = await make_project(node)
    obj = await publish(node, project, contents={"es": "Desalojo anunciado."}, kind="alert",
                        summary="Desalojo")
    _, _, body = await fetch(obj.uri)
    assert re.search(r"<details><summary>Desalojo</summary>\s*<div class=\"content\" lang=\"es\">"
                     r"<p>Desalojo anunciado.", body)


async def test_hidden_and_held_comments_are_not_shown(node):
    project = await make_project(node)
    obj = await publish(node, project, contents={"es": "¿Qué opinan?"})
    async with node.writers() as db, db.begin():
        friend = Actor(uri="https://remote.example/users/ana", local=False, type="Person",
                       username="ana", domain="remote.example", name="Ana")
        db.add(friend)
        await db.flush()
        for text, extra in [("visible comment", {}), ("hidden comment", {"hidden": True}),
                            ("held comment", {"approved": False}),
                            ("followers-only comment", {"visibility": "followers"})]:
            db.add(Object(uri=f"https://remote.example/notes/{text.split()[0]}", type="Note",
                          actor_id=friend.id, local=False, content=f"<p>{text}</p>",
                          in_reply_to=obj.uri, **extra))
    _, _, body = await fetch(obj.uri)
    assert "visible comment" in body
    assert "hidden comment" not in body and "held comment" not in body
    assert "followers-only comment" not in body


async def test_remote_project_and_update_pages(node):
    async with node.writers() as db, db.begin():
        other = Actor(uri="https://lyon.example/actors/hlm", local=False, type="Group",
                      username="hlm", domain="lyon.example", name="Habitat Lyon",
                      name_map={"fr": "Habitat Lyon"}, profile={"stage": "living", "country": "FR"})
        db.add(other)
        await db.flush()
        db.add(Object(uri="https://lyon.example/objects/1", type="Note", actor_id=other.id,
                      local=False, content="<p>Bonjour</p>", content_map={"fr": "<p>Bonjour</p>"},
                      language="fr", attachments=[{"type": "Image", "mediaType": "image/webp",
                                                   "url": "https://lyon.example/media/a.webp",
                                                   "name": "La cour", "width": 1280,
                                                   "height": 960}]))
    status, _, body = await fetch(f"{node.base}/remote/actors?uri={quote(other.uri, safe='')}&lang=fr")
    assert status == 200 and "Habitat Lyon" in body and vocab.label("stage", "living", "fr") in body
    assert "France" in body and "Bonjour" in body
    status, _, body = await fetch(f"{node.base}/remote/objects?uri="
                                  f"{quote('https://lyon.example/objects/1', safe='')}")
    assert status == 200 and "Bonjour" in body
    assert ('<img src="https://lyon.example/media/a.webp" alt="La cour" width="1280" height="960" '
            'loading="lazy"') in body
    status, _, _ = await fetch(f"{node.base}/remote/objects?uri=https%3A%2F%2Fnowhere.example%2F1")
    assert status == 404


class SubscribingPeer(FakePeer):
    """A FakePeer whose WebFinger also offers the OStatus subscribe template, as Mastodon's does."""

    async def _webfinger(self, request: web.Request) -> web.Response:
        response = await super()._webfinger(request)
        if response.status != 200:
            return response
        document = orjson.loads(response.body)
        document["links"].append({"rel": "http://ostatus.org/schema/1.0/subscribe",
                                  "template": f"{self.base}/authorize_interaction?uri={{uri}}"})
        return web.json_response(document, content_type="application/jrd+json")


@pytest.fixture
async def subscribing_peer():
    fake = await SubscribingPeer().start()
    yield fake
    await fake.stop()


async def test_remote_follow_redirects_to_the_visitors_server(node, subscribing_peer):
    project = await make_project(node)
    subscribing_peer.add_actor("alice")
    handle = f"alice@{subscribing_peer.domain}"
    status, headers, _ = await fetch(
        f"{node.base}/remote-follow?handle={quote(handle)}&target={quote(project.uri, safe='')}",
        redirects=False)
    assert status == 302
    assert headers["Location"] == (f"{subscribing_peer.base}/authorize_interaction?uri="
                                   f"{quote(project.uri, safe='')}")


async def test_remote_follow_explains_when_it_cannot(node, peer):
    project = await make_project(node)
    peer.add_actor("bob")  # the plain FakePeer offers no subscribe template
    target = quote(project.uri, safe="")
    status, _, body = await fetch(f"{node.base}/remote-follow?handle=bob@{peer.domain}&target={target}")
    assert status == 404 and 'role="alert"' in body
    assert f'value="@coop@{node.settings.domain}"' in body  # the handle to copy instead
    status, _, body = await fetch(f"{node.base}/remote-follow?handle=not-a-handle&target={target}")
    assert status == 400 and 'role="alert"' in body
    status, _, _ = await fetch(f"{node.base}/remote-follow?handle=bob@{peer.domain}"
                               "&target=https%3A%2F%2Felsewhere.example%2Factors%2Fx")
    assert status == 404


async def test_project_page_pages_its_updates_with_pinned_first(node):
    project = await make_project(node)
    start = utcnow() - timedelta(days=40)
    objects = [await publish(node, project, contents={"en": f"Update number {i}."},
                             published=start + timedelta(days=i)) for i in range(22)]
    async with node.writers() as db, db.begin():
        (await db.get(Object, objects[0].id)).pinned_at = utcnow()
    _, _, first = await fetch(project.uri)
    assert first.index("Update number 0.") < first.index("Update number 21.")
    assert 'rel="next"' in first and "Update number 1." not in first
    _, _, second = await fetch(project.uri + "?page=2")
    assert "Update number 1." in second and 'rel="prev"' in second


async def test_tag_page_lists_updates_with_that_hashtag_or_theme(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        await publish_post(db, node.urls, project, contents={"es": "Minga de sábado"},
                             hashtags=["minga_2026"], themes=["mutual_aid"])
        await publish_post(db, node.urls, project, contents={"es": "Otra cosa"},
                             hashtags=["minga2026"])
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base}/tags/minga_2026?lang=es") as resp:
            assert resp.status == 200
            page = await resp.text()
        assert "Minga de sábado" in page and "Otra cosa" not in page  # _ is not a wildcard
        async with http.get(f"{node.base}/tags/mutual_aid?lang=es") as resp:
            page = await resp.text()
        assert "Minga de sábado" in page and "Ayuda mutua" in page
        async with http.get(f"{node.base}/tags/not%20a%20tag") as resp:
            assert resp.status == 404
