"""Basic accessibility checks on every page a visitor or member sees: a language, one h1 and no
skipped heading level, a label for every form control, alt text on every image, and colours
with enough contrast (WCAG AA, 4.5:1) against the background.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from fedsph.models import Hub, HubMembership
from fedsph.projects.outbox import publish_post
from tests.support.members import browser, login, make_user
from tests.support.pages import audit

BASE_CSS = (Path(__file__).parents[1] / "templates" / "base.html").read_text()


@pytest.fixture
async def site(node):
    """A project with a member, a full-ish profile and an update with a photo."""
    project = await node.create_actor("coop", "Group")
    await make_user(node, "ana", project)
    async with node.writers() as db, db.begin():
        project = await db.merge(project)
        project.profile = {"stage": "building", "approach": ["self_build"], "country": "UY",
                           "location": {"name": "Barrio", "latitude": -34.9, "longitude": -56.2,
                                        "precision": "city"}}
        update = await publish_post(db, node.urls, project, contents={"es": "Hola", "en": "Hi"},
                                      title_map={"es": "Título"}, hashtags=["minga"])
    hub = await node.create_actor("hub", "Group")  # the node is a hub too: its pages get checked
    async with node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
        db.add(HubMembership(hub_id=hub.id, project_id=project.id, state="approved"))
    return project, update


PUBLIC_PAGES = ["/", "/actors/coop", "UPDATE", "/login", "/tags/minga", "/nowhere",
                "/hub", "/hub/map", "/hub/stats", "/hub/feed", "/hub/links", "/hub/events",
                "/actors/coop/events",
                "/remote-follow?target=coop&handle=bad"]
MEMBER_PAGES = ["/actors/coop/compose", "/actors/coop/edit", "/actors/coop/manage",
                "/actors/coop/links", "/actors/coop/events/new"]


@pytest.mark.parametrize("lang", ["en", "es"])
async def test_pages_pass_basic_accessibility_checks(node, site, lang):
    _, update = site
    async with aiohttp.ClientSession(headers={"Accept": "text/html"}) as http:
        for path in PUBLIC_PAGES:
            url = update.uri if path == "UPDATE" else node.base + path
            async with http.get(url, params={"lang": lang}) as response:
                assert response.status < 500
                assert audit(await response.text()) == [], path
    async with browser() as client:
        await login(client, node, "ana")
        for path in MEMBER_PAGES:
            async with client.get(node.base + path, params={"lang": lang}) as response:
                assert response.status == 200
                assert audit(await response.text()) == [], path


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)] if len(hex_colour) == 7 \
        else [int(c * 2, 16) / 255 for c in hex_colour[1:]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_text_colour_contrasts_with_the_background():
    """Every `color:` in the shared stylesheet against the white page (and the grey code box)."""
    colours = set(re.findall(r"(?<![-\w])color:(#[0-9a-fA-F]{3,6})", BASE_CSS))
    assert colours, "no colours found: did the stylesheet move?"
    for background in ("#fff", "#f3f3f3"):
        for colour in colours:
            lighter, darker = sorted((_luminance(colour), _luminance(background)), reverse=True)
            ratio = (lighter + 0.05) / (darker + 0.05)
            assert ratio >= 4.5, f"{colour} on {background}: contrast {ratio:.2f} < 4.5"
