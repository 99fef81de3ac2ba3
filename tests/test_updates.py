"""Project updates on the wire (issue 3): multilingual Notes with title, kind, tags, place,
content warning and images; edits; pinned updates in `featured`; comments and their moderation;
the Atom feed."""

import xml.etree.ElementTree as ET

import aiohttp
import orjson
import pytest
from sqlalchemy import select, update

from fedsph.errors import UserError
from fedsph.federation.actors import get_local_actor
from fedsph.federation.proofs import DATA_INTEGRITY_CONTEXT
from fedsph.federation.remote_objects import object_columns
from fedsph.models import Activity, Actor, Media, Object
from fedsph.projects import queries
from fedsph.projects.notes import FEDSPH_NS, html_to_text
from fedsph.projects.outbox import (
    approve_comment,
    edit_post,
    edit_post_text,
    editable_post_fields,
    hide_comment,
    pin_post,
    publish_post,
    publish_text_post,
    unpin_post,
)

ATOM = "{http://www.w3.org/2005/Atom}"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def get_json(url):
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Accept": "application/activity+json"}) as resp:
        return resp.status, orjson.loads(await resp.read())


async def sent(db, object_uri: str, kind: str) -> dict:
    """The body of the last activity of `kind` we queued for an object, as it went out."""
    body = await db.scalar(select(Activity.body).where(
        Activity.object_uri == object_uri, Activity.type == kind).order_by(Activity.id.desc()))
    return orjson.loads(body)


def make_media(project, n: int, alt: str = "Walls going up") -> Media:
    key = f"testimage{n:08d}key"
    return Media(key=key, owner_id=project.id, content_type="image/webp", width=1280, height=960,
                 blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj", alt=alt, license="CC-BY-4.0",
                 author="Ana Pérez", position=n,
                 renditions={"320": {"file": f"{key}-320.webp", "width": 320, "height": 240,
                                     "bytes": 9000},
                             "1280": {"file": f"{key}-1280.webp", "width": 1280, "height": 960,
                                      "bytes": 90000}})


async def project_with_media(node, db, count: int):
    project = await get_local_actor(db, "coop")
    media = [make_media(project, n) for n in range(count)]
    db.add_all(media)
    await db.flush()
    return project, media


BILINGUAL = {"es": "Terminamos los muros.\n\nGracias a todas & todos <3",
             "en": "We finished the walls.\n\nThanks to everyone & all <3"}


async def test_bilingual_update_is_a_note_with_everything(node):
    await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        project, media = await project_with_media(node, db, 2)
        obj = await publish_post(
            db, node.urls, project, contents=BILINGUAL,
            title_map={"es": "Muros listos", "en": "Walls done"}, kind="milestone",
            stage_change="building", hashtags=["#Cooperativa", "vivienda"],
            themes=["mutual_aid"], place={"name": "Montevideo", "latitude": -34.9,
                                          "longitude": -56.16},
            summary="Obra <en> curso", media=media)
        create = await sent(db, obj.uri, "Create")
        stage = project.profile["stage"]
    note = create["object"]
    assert create["to"] == [PUBLIC] and note["to"] == [PUBLIC]
    # content is the primary language, identical to the first contentMap entry.
    assert list(note["contentMap"]) == ["es", "en"]
    assert note["content"] == note["contentMap"]["es"]
    assert note["content"].startswith("<p><strong>Muros listos</strong></p><p>Terminamos")
    assert "todas &amp; todos &lt;3" in note["content"]
    assert note["contentMap"]["en"].startswith("<p><strong>Walls done</strong></p>")
    assert note["name"] == "Muros listos"
    assert list(note["nameMap"].items()) == [("es", "Muros listos"), ("en", "Walls done")]
    # Extension terms, and a context that defines them and Mastodon's.
    assert note["updateKind"] == "milestone" and note["stageChange"] == "building"
    assert note["themes"] == ["mutual_aid"]
    terms = create["@context"][1]
    assert terms["fedsph"] == FEDSPH_NS and terms["updateKind"] == "fedsph:updateKind"
    assert terms["sensitive"] == "as:sensitive" and terms["Hashtag"] == "as:Hashtag"
    assert stage == "building"  # the milestone moved the project's profile on
    # Hashtags and themes as Hashtag tags, the hashtags also linked in every language's HTML.
    tags = {t["name"]: t for t in note["tag"]}
    assert set(tags) == {"#Cooperativa", "#vivienda", "#mutual_aid"}
    assert tags["#Cooperativa"] == {"type": "Hashtag", "name": "#Cooperativa",
                                    "href": f"{node.base}/tags/cooperativa"}
    for html in note["contentMap"].values():
        assert f'href="{node.base}/tags/vivienda" class="mention hashtag"' in html
    assert note["location"] == {"type": "Place", "name": "Montevideo", "latitude": -34.9,
                                "longitude": -56.16}
    # Content warning: summary (escaped text) and sensitive.
    assert note["summary"] == "Obra &lt;en&gt; curso" and note["sensitive"] is True
    # Images in order, as AS2 Images with alt text, size, blurhash, licence and author.
    first = note["attachment"][0]
    assert len(note["attachment"]) == 2
    assert first["type"] == "Image" and first["url"].endswith("testimage00000000key-1280.webp")
    assert first["name"] == "Walls going up" and first["mediaType"] == "image/webp"
    assert (first["width"], first["height"]) == (1280, 960) and first["blurhash"]
    assert first["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert first["author"] == "Ana Pérez"
    # The object URL serves the same Note with the same context.
    status, document = await get_json(obj.uri)
    assert status == 200 and document["contentMap"] == note["contentMap"]
    # (the Create adds the data-integrity context for its proof, FEP-8b32)
    assert [*document["@context"], DATA_INTEGRITY_CONTEXT] == create["@context"]


async def test_plain_update_has_no_extras(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        obj = await publish_text_post(db, node.urls, project, "Hello", language="en")
        note = (await sent(db, obj.uri, "Create"))["object"]
    assert note["content"] == "<p>Hello</p>" and note["contentMap"] == {"en": "<p>Hello</p>"}
    assert note["sensitive"] is False
    for absent in ("name", "nameMap", "tag", "attachment", "location", "updateKind", "summary"):
        assert absent not in note


@pytest.mark.parametrize("fields, message", [
    ({"contents": {"es": "  ", "en": ""}}, "needs some text"),
    ({"contents": {"es": "x"}, "kind": "gossip"}, "update kind"),
    ({"contents": {"es": "x"}, "kind": "progress", "stage_change": "building"}, "milestone"),
    ({"contents": {"es": "x"}, "themes": ["not_a_theme"]}, "theme"),
    ({"contents": {"es": "x"}, "hashtags": ["two words"]}, "hashtag"),
    ({"contents": {"not a language!": "x"}}, "language tag"),
    ({"contents": {"es": "x"}, "place": {"name": "X", "latitude": 120, "longitude": 0}},
     "latitude"),
])
async def test_unacceptable_fields_are_refused(node, fields, message):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        with pytest.raises(UserError, match=message):
            await publish_post(db, node.urls, project, **fields)


async def test_five_images_are_refused(node):
    await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        project, media = await project_with_media(node, db, 5)
        with pytest.raises(UserError, match="at most 4 images"):
            await publish_post(db, node.urls, project, contents={"es": "Fotos"}, media=media)


async def test_edit_sends_update_with_updated_and_new_translations(node):
    await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        project, media = await project_with_media(node, db, 2)
        obj = await publish_post(db, node.urls, project, contents=BILINGUAL,
                                   title_map={"es": "Muros"}, hashtags=["obra"], media=media)
        fields = await editable_post_fields(db, obj)
        assert fields["contents"] == BILINGUAL and fields["title_map"] == {"es": "Muros"}
        assert fields["hashtags"] == ["obra"] and [m.id for m in fields["media"]] == [
            m.id for m in media]
        fields["contents"] = {"es": "Muros terminados", "fr": "Murs terminés"}
        fields["media"] = media[1:]
        await edit_post(db, node.urls, project, obj, **fields)
        edit = await sent(db, obj.uri, "Update")
        dropped = await db.get(Media, media[0].id)
        assert dropped.object_id is None
    note = edit["object"]
    assert note["updated"] and note["id"] == obj.uri
    assert list(note["contentMap"]) == ["es", "fr"]
    assert note["content"] == note["contentMap"]["es"]
    assert "Muros terminados" in note["content"] and "Murs terminés" in note["contentMap"]["fr"]
    assert note["nameMap"] == {"es": "Muros"}  # the title was not translated:
    assert note["contentMap"]["fr"].startswith("<p><strong>Muros</strong></p>")  # shown as is
    assert len(note["attachment"]) == 1


async def test_edit_note_changes_only_the_primary_text(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        obj = await publish_post(db, node.urls, project, contents=BILINGUAL, themes=["finance"])
        await edit_post_text(db, node.urls, project, obj, "Nuevo texto")
        note = (await sent(db, obj.uri, "Update"))["object"]
    assert note["contentMap"]["es"] == "<p>Nuevo texto</p>"
    assert note["contentMap"]["en"].startswith("<p>We finished")
    assert note["themes"] == ["finance"]


def test_html_to_text_reverses_what_we_build():
    from fedsph.projects.notes import build_content

    text = "Line one\nline two https://example.org/a?b=1&c=2.\n\n<b>not bold</b> & more"
    tags = [{"type": "Hashtag", "name": "#x", "href": "https://n.example/tags/x"}]
    assert html_to_text(build_content(text, "A <title>", tags)) == text


async def test_pinned_updates_are_the_featured_collection(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        first = await publish_text_post(db, node.urls, project, "First", language="es")
        second = await publish_text_post(db, node.urls, project, "Second", language="es")
        hidden = await publish_text_post(db, node.urls, project, "Members", visibility="followers")
        await pin_post(db, project, first, urls=node.urls)
        await pin_post(db, project, second)
        with pytest.raises(UserError):
            await pin_post(db, project, hidden)
        add = await sent(db, first.uri, "Add")
    assert add["target"] == f"{project.uri}/featured" and add["object"] == first.uri
    status, actor_document = await get_json(project.uri)
    assert actor_document["featured"] == f"{project.uri}/featured"
    status, featured = await get_json(actor_document["featured"])
    assert status == 200 and featured["type"] == "OrderedCollection"
    assert featured["totalItems"] == 2
    assert [n["id"] for n in featured["orderedItems"]] == [second.uri, first.uri]
    assert featured["orderedItems"][0]["content"] == "<p>Second</p>"
    async with node.writers() as db, db.begin():
        await unpin_post(db, project, await db.merge(second), urls=node.urls)
    status, featured = await get_json(f"{project.uri}/featured")
    assert [n["id"] for n in featured["orderedItems"]] == [first.uri]


def reply(peer, alice, in_reply_to: str, text: str) -> dict:
    note_id = peer.new_id()
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": note_id + "/activity",
            "type": "Create", "actor": alice.uri, "to": [PUBLIC],
            "object": {"id": note_id, "type": "Note", "attributedTo": alice.uri, "to": [PUBLIC],
                       "inReplyTo": in_reply_to, "content": f"<p>{text}<script>x()</script></p>",
                       "published": "2025-05-01T10:00:00Z"}}


async def receive_reply(node, peer, alice, target: Object, text: str) -> Object:
    activity = reply(peer, alice, target.uri, text)
    status, _ = await peer.post(alice, f"{node.base}/inbox", activity)
    assert status == 202
    await node.run_worker()
    async with node.readers() as db:
        return await db.scalar(select(Object).where(Object.uri == activity["object"]["id"]))


async def comment_owner(db, comment: Object) -> Actor | None:
    """The local actor whose update `comment` replies to: its members may moderate it."""
    if not comment.in_reply_to:
        return None
    return await db.scalar(select(Actor).join(Object, Object.actor_id == Actor.id).where(
        Object.uri == comment.in_reply_to, Object.local.is_(True)))


async def test_replies_are_comments_that_members_moderate(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    async with node.writers() as db, db.begin():
        obj = await publish_text_post(db, node.urls, project, "Nuestra obra", language="es")
    comment = await receive_reply(node, peer, alice, obj, "¡Felicitaciones!")
    assert comment is not None and comment.approved and "<script>" not in comment.content
    async with node.writers() as db, db.begin():
        assert [c.uri for c, _ in await queries.comments_for(db, obj)] == [comment.uri]
        assert (await comment_owner(db, comment)).id == project.id
        await hide_comment(db, await db.merge(comment), True)
    async with node.readers() as db:
        assert await queries.comments_for(db, obj) == []
        assert len(await queries.comments_for(db, obj, include_hidden=True)) == 1

    # A project that holds replies shows them only once approved.
    async with node.writers() as db, db.begin():
        await db.execute(update(Actor).where(Actor.id == project.id).values(hold_replies=True))
    held = await receive_reply(node, peer, alice, obj, "Second comment")
    assert held.approved is False
    async with node.writers() as db, db.begin():
        assert await queries.comments_for(db, obj) == []
        assert len(await queries.comments_for(db, obj, include_held=True)) == 1
        await approve_comment(db, await db.merge(held))
    async with node.readers() as db:
        assert [c.uri for c, _ in await queries.comments_for(db, obj)] == [held.uri]


def test_received_fedsph_note_keeps_every_field():
    document = {
        "id": "https://other.example/objects/1", "type": "Note",
        "attributedTo": "https://other.example/actors/coop", "to": [PUBLIC],
        "name": "Muros <b>listos</b>", "nameMap": {"es": "Muros listos", "en": "Walls done"},
        "content": "<p>Hola</p>", "contentMap": {"es": "<p>Hola</p>",
                                                 "en": "<p>Hi<img src=x onerror=y></p>"},
        "summary": "Obra", "sensitive": True,
        "fedsph:updateKind": "milestone", "stageChange": "building",
        "themes": ["mutual_aid", "bogus"],
        "tag": [{"type": "Hashtag", "name": "#obra", "href": "https://other.example/tags/obra"},
                {"type": "Hashtag", "name": "#mutual_aid", "href": "https://o.example/t/m"},
                {"type": "Emoji", "name": ":x:"}],
        "location": {"type": "Place", "name": "Lyon", "latitude": 45.76, "longitude": 4.83},
        "attachment": [
            {"type": "Image", "url": "https://other.example/media/a-1280.webp",
             "mediaType": "image/webp", "name": "Walls", "width": 1280, "height": 960,
             "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
             "license": "https://creativecommons.org/licenses/by/4.0/", "author": "Ana"},
            {"type": "Image", "url": "javascript:alert(1)"},
            {"type": "Document", "url": [{"type": "Link", "href": "https://other.example/d.pdf"}]},
        ],
    }
    columns = object_columns(document)
    assert columns["name"] == "Muros listos" and columns["name_map"]["en"] == "Walls done"
    assert list(columns["content_map"]) == ["es", "en"] and "onerror" not in columns["content_map"]["en"]
    assert columns["kind"] == "milestone" and columns["stage_change"] == "building"
    assert columns["tags"] == [
        {"type": "Hashtag", "name": "#obra", "href": "https://other.example/tags/obra"},
        {"type": "theme", "name": "mutual_aid"}]
    assert columns["place"] == {"type": "Place", "name": "Lyon", "latitude": 45.76,
                                "longitude": 4.83}
    assert [a["url"] for a in columns["attachments"]] == [
        "https://other.example/media/a-1280.webp", "https://other.example/d.pdf"]
    image = columns["attachments"][0]
    assert (image["name"], image["width"], image["author"]) == ("Walls", 1280, "Ana")
    assert columns["summary"] == "Obra"


async def test_atom_feed_lists_public_updates(node):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        await publish_post(db, node.urls, project, contents={"es": "Sin título & <más>"})
        titled = await publish_post(db, node.urls, project, contents={"es": "Texto"},
                                      title_map={"es": "Con título"})
        await publish_text_post(db, node.urls, project, "Members only", visibility="followers")
    async with aiohttp.ClientSession() as http, http.get(f"{project.uri}/feed.atom") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/atom+xml"
        feed = ET.fromstring(await resp.read())
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}id").text == f"{project.uri}/feed.atom"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == ["Con título", "Sin título & <más>"]
    newest = entries[0]
    assert newest.find(f"{ATOM}id").text == titled.uri
    assert newest.find(f"{ATOM}link").get("href") == titled.url
    assert newest.find(f"{ATOM}updated").text.endswith("Z")
    content = newest.find(f"{ATOM}content")
    assert content.get("type") == "html" and content.text == "<p>Texto</p>"
    async with aiohttp.ClientSession() as http, http.get(f"{node.base}/actors/nobody/feed.atom") as resp:
        assert resp.status == 404


@pytest.mark.parametrize("precision, expected", [
    (None, (-34.91, -56.16)),  # no location set: the default, neighbourhood
    ("city", (-34.9, -56.2)),
    ("exact", (-34.90871, -56.16452)),
])
async def test_an_updates_place_is_no_more_precise_than_the_project_allows(node, precision,
                                                                         expected):
    project = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        project = await db.merge(project)
        if precision:
            project.profile = {"location": {"name": "Barrio", "latitude": -34.9,
                                            "longitude": -56.2, "precision": precision}}
        obj = await publish_post(db, node.urls, project, contents={"es": "Asamblea"},
                                   place={"name": "Salón", "latitude": -34.908712,
                                          "longitude": -56.164523})
        note = (await sent(db, obj.uri, "Create"))["object"]
    assert (note["location"]["latitude"], note["location"]["longitude"]) == expected
    assert (obj.place["latitude"], obj.place["longitude"]) == expected
