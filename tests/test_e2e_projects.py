"""Two real `fedsph serve` processes on loopback: a project profile and a bilingual update with
a photo published on node B are shown by node A with all their fields, in Spanish and in English.

B's project `beta` gets its whole profile from the CLI (`project set --file`); A's `alpha` follows
it. A member of beta logs in over HTTP and posts an update (Spanish first, then English) with a
photo through the compose form. A reply from a third server's actor (a FakePeer) shows as a
comment; an edit (web form) and a delete (CLI) reach A; a profile change (CLI) reaches A.

The test is async so that the FakePeer, which runs in the test's loop, can answer B's key fetch
while the test waits; the blocking CLI calls run in threads.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import aiohttp
import pytest
from markupsafe import escape
from PIL import Image as PILImage

from fedsph.core import vocab
from tests.processes import NodeProcess

pytestmark = pytest.mark.e2e

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"


def label(vocabulary: str, slug: str, lang: str) -> str:
    """A vocabulary label as it appears in HTML (escaped, like Jinja does)."""
    return str(escape(vocab.label(vocabulary, slug, lang)))


PASSWORD = "ana-secret-password"

PROFILE = {
    "name": {"es": "Cooperativa Beta", "en": "Beta Cooperative"},
    "summary": {"es": "Cooperativa de vivienda por ayuda mutua en Montevideo.",
                "en": "A mutual-aid housing cooperative in Montevideo."},
    "description": {"es": "Cuarenta familias construyen sus casas juntas.",
                    "en": "Forty families build their homes together."},
    "stage": "building",
    "approach": ["mutual_aid_cooperative"],
    "tenure": ["use_rights_in_cooperative"],
    "financing": ["public_loan", "member_savings"],
    "households": {"value": 38, "as_of": "2025-06-01"},
    "homes_completed": 12,
    "homes_planned": 40,
    "start_year": 2019,
    "completion_year": 2027,
    "settlement_type": "urban",
    "themes": ["mutual_aid", "self_management"],
    "partners": [{"name": "Centro Técnico Sur", "role": "technical_support",
                  "url": "https://cts.example.org/"}],
    "country": "UY",
    "region": "latin_america_caribbean",
    # The exact point: never to be seen on either node (neighbourhood precision = 2 decimals).
    "location": {"name": "Barrio Sur", "latitude": -34.91234, "longitude": -56.18765,
                 "precision": "neighbourhood"},
    "languages": ["es", "en"],
    "links": [{"kind": "website", "url": "https://beta.example.org/", "title": "Sitio de Beta"}],
}
ES_TEXT = "Terminamos el primer muro con la vecindad"
EN_TEXT = "We finished the first wall with the neighbours"
ES_TITLE, EN_TITLE = "Primer muro", "First wall"
ALT = "Vecinas levantando el primer muro de ladrillo"
REPLY = "Felicitaciones desde Lyon, compas"


@pytest.fixture
def nodes(tmp_path):
    a, b = NodeProcess(tmp_path / "a"), NodeProcess(tmp_path / "b")
    for node, slug in ((a, "alpha"), (b, "beta")):
        node.cli("migrate")
        node.cli("project", "create", slug, "--name", f"Project {slug.title()}")
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(PROFILE, ensure_ascii=False), encoding="utf-8")
    b.cli("project", "set", "beta", "--file", str(profile))
    b.cli("user", "create", "ana", "--password-stdin", "--project", "beta", stdin=PASSWORD + "\n")
    try:
        for node in (a, b):
            node.start()
        yield a, b
    finally:
        for node in (a, b):
            node.stop()


@pytest.fixture
async def http():
    # unsafe=True: the cookie jar must keep cookies of an IP host (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def eventually(check, timeout: float = 30, what: str = "condition"):
    """Await check() until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.3)


async def cli(node: NodeProcess, *args: str) -> str:
    return (await asyncio.to_thread(node.cli, *args)).stdout


async def fetch(http: aiohttp.ClientSession, url: str, accept: str = "text/html",
                **params) -> tuple[int, str]:
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params)
    async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def page(http, url: str, **params) -> str:
    status, text = await fetch(http, url, **params)
    return text if status == 200 else ""


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def photo() -> bytes:
    image = PILImage.new("RGB", (800, 600), (180, 90, 40))
    for x in range(0, 800, 40):  # some detail, so it is not a flat colour
        image.paste((240, 230, 200), (x, 0, x + 10, 600))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


async def log_in(http, node: NodeProcess, username: str, password: str) -> None:
    form = await page(http, f"{node.base}/login")
    data = {"csrf": csrf_of(form), "next": "/", "username": username, "password": password}
    async with http.post(f"{node.base}/login", data=data, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()


async def post_update_form(http, url: str, fields: list[tuple[str, str]],
                           image: bytes | None = None) -> str:
    """POST a compose/edit form as multipart, csrf first; returns the redirect's path."""
    form = aiohttp.FormData()
    form.add_field("csrf", csrf_of(await page(http, url)))
    for name, value in fields:
        form.add_field(name, value)
    if image is not None:
        form.add_field("image_1", image, filename="muro.jpg", content_type="image/jpeg")
    async with http.post(url, data=form, allow_redirects=False) as resp:
        assert resp.status == 303, f"{resp.status}: {await resp.text()}"
        return resp.headers["Location"]


def assert_profile_shown(html: str, lang: str) -> None:
    """Every profile field of PROFILE, with its labels in `lang`."""
    name, summary = PROFILE["name"][lang], PROFILE["summary"][lang]
    assert name in html and summary in html and PROFILE["description"][lang] in html
    for field, vocabulary in (("approach", "approach"), ("tenure", "tenure"),
                              ("financing", "financing"), ("themes", "themes")):
        for slug in PROFILE[field]:
            assert label(vocabulary, slug, lang) in html, (field, slug, lang)
    for field in ("stage", "settlement_type", "region"):
        assert label(field, PROFILE[field], lang) in html, (field, lang)
    assert label("partner_role", "technical_support", lang) in html
    assert label("location_precision", "neighbourhood", lang) in html
    assert label("link_kind", "website", lang) in html
    assert f'<html lang="{lang}">' in html  # the interface, too, is in `lang`
    for number in ("<dd>12</dd>", "<dd>40</dd>", "<dd>2019</dd>", "<dd>2027</dd>", "<dd>38 ",
                   "2025-06-01"):
        assert number in html, number
    assert "Uruguay" in html
    for url, text in (("https://cts.example.org/", "Centro Técnico Sur"),
                      ("https://beta.example.org/", "Sitio de Beta")):
        assert f'<a href="{url}" rel="nofollow noopener">{text}</a>' in html
    assert "Barrio Sur" in html
    # The location is rounded to its precision, and the exact point is nowhere.
    assert "mlat=-34.91&amp;mlon=-56.19" in html
    assert "-34.91234" not in html and "-56.18765" not in html
    assert "español" in html and "English" in html  # the project's languages


def image_srcs(html: str) -> list[str]:
    """The src of every image whose alt text is ALT."""
    return [src for src, alt in re.findall(r'<img src="([^"]+)" alt="([^"]*)"', html) if alt == ALT]


def assert_update_shown(html: str, lang: str, b: NodeProcess) -> None:
    text, title = (ES_TEXT, ES_TITLE) if lang == "es" else (EN_TEXT, EN_TITLE)
    other = EN_TEXT if lang == "es" else ES_TEXT
    assert text in html and title in html, lang
    assert other not in html, lang  # the other language is a link away, not mixed in
    assert f'lang="{lang}"' in html
    srcs = image_srcs(html)
    assert srcs and all(src.startswith(f"{b.base}/media/") for src in srcs), srcs
    assert label("update_kind", "milestone", lang) in html
    assert label("themes", "mutual_aid", lang) in html


async def test_profile_and_bilingual_update_between_two_nodes(nodes, peer, http):
    a, b = nodes
    beta_uri, alpha_uri = f"{b.base}/actors/beta", f"{a.base}/actors/alpha"
    remote_beta = f"{a.base}/remote/actors?" + urlencode({"uri": beta_uri})

    # -- A follows B and shows B's profile, all fields, in both languages -----------------------
    assert "pending" in await cli(a, "follow", "alpha", f"beta@{b.domain}")

    async def accepted():
        status, body = await fetch(http, f"{a.base}/actors/alpha/following?page=1",
                                   accept="application/activity+json")
        return status == 200 and beta_uri in json.loads(body)["orderedItems"]
    await eventually(accepted, what="B to accept A's follow")

    for lang in ("es", "en"):
        assert_profile_shown(await page(http, remote_beta, lang=lang), lang)

    # -- a member of beta posts a bilingual update with a photo from the web form ----------------
    await log_in(http, b, "ana", PASSWORD)
    location = await post_update_form(http, f"{b.base}/actors/beta/compose", [
        ("title_es", ES_TITLE), ("text_es", ES_TEXT), ("title_en", EN_TITLE), ("text_en", EN_TEXT),
        ("primary", "es"), ("kind", "milestone"), ("hashtags", "#cooperativa #ayudamutua"),
        ("themes", "mutual_aid"), ("alt_1", ALT), ("license_1", "CC-BY-4.0"),
        ("author_1", "Ana"),
    ], image=photo())
    update_uri = b.base + location
    assert re.fullmatch(r"/objects/[^/?#]+", location), location
    status, document = await fetch(http, update_uri, accept="application/activity+json")
    note = json.loads(document)
    assert status == 200 and list(note["contentMap"]) == ["es", "en"]
    assert note["attachment"][0]["name"] == ALT

    remote_update = f"{a.base}/remote/objects?" + urlencode({"uri": update_uri})
    await eventually(lambda: _contains(http, f"{a.base}/", ES_TEXT, lang="es"),
                     what="the update to reach A's home page")
    assert EN_TEXT in await page(http, f"{a.base}/", lang="en")
    for lang in ("es", "en"):
        html = await page(http, remote_update, lang=lang)
        assert_update_shown(html, lang, b)
        async with http.get(image_srcs(html)[0]) as resp:  # the photo A links to is served by B
            assert resp.status == 200 and resp.content_type.startswith("image/")
    assert EN_TEXT in await page(http, remote_update, lang="es", show="en")

    # -- a reply from a third server's actor is a comment on B (and on A, which it cc's) ---------
    carla = peer.add_actor("carla")
    reply_id = peer.new_id("notes")
    reply = {"id": reply_id, "type": "Note", "attributedTo": carla.uri, "inReplyTo": update_uri,
             "content": f"<p>{REPLY}</p><script>alert(1)</script>", "to": [PUBLIC],
             "cc": [beta_uri, alpha_uri],
             "published": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    peer.objects[reply_id] = {"@context": AS, **reply}
    create = {"@context": AS, "id": peer.new_id(), "type": "Create", "actor": carla.uri,
              "to": [PUBLIC], "cc": [beta_uri, alpha_uri], "object": reply}
    for inbox in (f"{beta_uri}/inbox", f"{alpha_uri}/inbox"):
        status, text = await peer.post(carla, inbox, create)
        assert status in (200, 202), (inbox, status, text)

    await eventually(lambda: _contains(http, update_uri, REPLY),
                     what="the reply to show as a comment on B")
    html = await page(http, update_uri)
    assert "<script>alert" not in html and "Carla" in html
    await eventually(lambda: _contains(http, remote_update, REPLY),
                     what="the reply to show as a comment on A")

    # -- an edit from the web form reaches A, photo kept ----------------------------------------
    object_id = location.rsplit("/", 1)[1]
    edit_url = f"{b.base}/actors/beta/updates/{object_id}/edit"
    keep = re.findall(r'name="keep_media" value="([^"]+)"', await page(http, edit_url))
    assert len(keep) == 1
    new_es, new_en = "Terminamos los dos primeros muros", "We finished the first two walls"
    assert await post_update_form(http, edit_url, [
        ("title_es", ES_TITLE), ("text_es", new_es), ("title_en", EN_TITLE), ("text_en", new_en),
        ("primary", "es"), ("kind", "milestone"), ("themes", "mutual_aid"), ("keep_media", keep[0]),
    ]) == location
    await eventually(lambda: _contains(http, remote_update, new_es, lang="es"),
                     what="the edit to reach A")
    html = await page(http, remote_update, lang="en")
    assert new_en in html and EN_TEXT not in html and ALT in html

    # -- a profile change from the CLI reaches A (Update of the actor, carried inline) -----------
    await cli(b, "project", "set", "beta", "stage", "living")
    for lang in ("es", "en"):
        living = label("stage", "living", lang)
        await eventually(lambda lang=lang, living=living: _contains(
            http, remote_beta, f"<dd>{living}", lang=lang),
            what=f"the new stage to reach A ({lang})")
    html = await page(http, remote_beta, lang="en")
    assert label("stage", "building", "en") not in html
    assert PROFILE["name"]["en"] in html and "Barrio Sur" in html  # the rest of the profile stays

    # -- a delete from the CLI reaches A; B answers 410 -----------------------------------------
    await cli(b, "delete", "beta", update_uri)
    await eventually(lambda: _lacks(http, f"{a.base}/", new_es, lang="es"),
                     what="the delete to reach A's home page")
    assert (await fetch(http, remote_update))[0] == 404
    assert (await fetch(http, update_uri, accept="application/activity+json"))[0] == 410

    assert "Traceback" not in a.server_log() + b.server_log()


async def _contains(http, url: str, text: str, **params) -> bool:
    return text in await page(http, url, **params)


async def _lacks(http, url: str, text: str, **params) -> bool:
    status, html = await fetch(http, url, **params)
    return status == 200 and text not in html
