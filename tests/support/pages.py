"""Pages: fetching them, auditing their accessibility, and the content they show."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import aiohttp

from fedsph.models import Actor, Object
from fedsph.projects.outbox import publish_post

HTML = "text/html"


async def fetch(url: str, accept: str = HTML, redirects: bool = True, **headers):
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Accept": accept, **headers}, allow_redirects=redirects) as resp:
        return resp.status, resp.headers, await resp.text()


PROFILE = {
    "description_map": {"es": "Cooperativa de vivienda por ayuda mutua en el barrio Sur.",
                        "en": "A mutual-aid housing cooperative in the Sur neighbourhood."},
    "stage": "building",
    "stage_history": [{"stage": "planning", "date": "2019-03-01"},
                      {"stage": "building", "date": "2022-05-10"}],
    "approach": ["mutual_aid_cooperative", "self_build"],
    "tenure": ["use_rights_in_cooperative"],
    "financing": ["public_loan", "mutual_aid_labour"],
    "households": {"value": 40, "as_of": "2024-01-01"},
    "inhabitants": {"value": 130, "as_of": "2024-01-01"},
    "homes_completed": 12,
    "homes_planned": 40,
    "start_year": 2019,
    "completion_year": 2026,
    "settlement_type": "urban",
    "themes": ["mutual_aid", "self_management", "access_to_land"],
    "partners": [{"name": "Centro Cooperativo", "url": "https://partner.example/",
                  "role": "technical_support"},
                 {"name": "Federación", "role": "network"}],
    "country": "UY",
    "region": "latin_america_caribbean",
    # Stored unrounded on purpose: the page must round it whatever is in the database.
    "location": {"name": "Barrio Sur, Montevideo", "latitude": -34.908765,
                 "longitude": -56.187654, "precision": "neighbourhood"},
    "languages": ["es", "en"],
    "links": [{"kind": "website", "url": "https://coop.example/", "title": "Sitio web"},
              {"kind": "video", "url": "https://video.example/v/1"}],
}


async def make_project(node, username: str = "coop", **columns) -> Actor:
    project = await node.create_actor(username)
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        actor.profile = PROFILE
        actor.name_map = {"es": "Cooperativa Sur", "en": "South Cooperative"}
        actor.name = "Cooperativa Sur"
        actor.summary_map = {"es": "<p>Vivienda por ayuda mutua.</p>",
                             "en": "<p>Mutual-aid housing.</p>"}
        actor.summary = actor.summary_map["es"]
        for column, value in columns.items():
            setattr(actor, column, value)
    return project


async def publish(node, project: Actor, **fields) -> Object:
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        return await publish_post(db, node.urls, actor, **fields)


class PageAudit(HTMLParser):
    """Collects what the checks need while parsing a page."""

    def __init__(self):
        super().__init__()
        self.html_lang = None
        self.headings: list[int] = []
        self.images_without_alt: list[str] = []
        self.controls: list[dict] = []  # {id, aria, wrapped}
        self.label_for: set[str] = set()
        self.label_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_lang = attrs.get("lang")
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "img" and attrs.get("alt") is None:
            self.images_without_alt.append(attrs.get("src", "?"))
        elif tag == "label":
            self.label_depth += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in ("input", "select", "textarea"):
            if tag == "input" and attrs.get("type") in ("hidden", "submit", "button", "image"):
                return
            self.controls.append({"name": attrs.get("name"), "id": attrs.get("id"),
                                  "aria": attrs.get("aria-label") or attrs.get("aria-labelledby"),
                                  "wrapped": self.label_depth > 0})

    def handle_endtag(self, tag):
        if tag == "label":
            self.label_depth -= 1

    def problems(self) -> list[str]:
        found = []
        if not self.html_lang:
            found.append("<html> has no lang")
        if self.headings.count(1) != 1:
            found.append(f"{self.headings.count(1)} h1 elements")
        for before, after in zip(self.headings, self.headings[1:]):
            if after > before + 1:
                found.append(f"heading level jumps from h{before} to h{after}")
        found += [f"image without alt: {src}" for src in self.images_without_alt]
        for control in self.controls:
            if not (control["wrapped"] or control["aria"] or control["id"] in self.label_for):
                found.append(f"form control without a label: {control['name']}")
        return found


def audit(page: str) -> list[str]:
    parser = PageAudit()
    parser.feed(page)
    return parser.problems()


TAG = "minga"


REPLIES = {"visible": {}, "hidden": {"hidden": True}, "held": {"approved": False}}


async def add_tagged_replies(node, update: Object) -> dict[str, str]:
    """A remote member's three replies carrying #minga: visible, hidden, held; URI by label."""
    uris = {label: f"https://remote.example/notes/{label}" for label in REPLIES}
    async with node.writers() as db, db.begin():
        friend = Actor(uri="https://remote.example/users/ana", local=False, type="Person",
                       username="ana", domain="remote.example", name="Ana")
        db.add(friend)
        await db.flush()
        for label, extra in REPLIES.items():
            db.add(Object(uri=uris[label], type="Note", actor_id=friend.id, local=False,
                          content=f"<p>{label} reply #{TAG}</p>", in_reply_to=update.uri,
                          tags=[{"type": "Hashtag", "name": f"#{TAG}"}], **extra))
    return uris
