"""Events (issue 5): HUB meetings and workshops as Mobilizon-shaped AS2 Events, announced with a
Note, joinable with Join/Leave, received from Mobilizon, shown on pages and exported as iCal."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import orjson
import pytest
from sqlalchemy import select

from fedsph.errors import UserError
from fedsph.events import commands as event_commands
from fedsph.events.participation import answer_participant
from fedsph.events.received import event_columns
from fedsph.events.service import cancel_event, edit_event
from fedsph.federation.actors import get_local_actor
from fedsph.hub.membership import ensure_hub
from fedsph.models import Activity, Event, EventParticipant, HubMembership, Object
from tests.support.db import add_follow, add_remote_follower, store_remote
from tests.support.events import MEETING, make_event
from tests.support.members import browser, csrf_from, login, make_user, post_form
from tests.support.nodes import cli_node, use_data_dir
from tests.support.pages import audit

MOBILIZON_EVENT = Path(__file__).parent / "fixtures/lemmy-assets/mobilizon/objects/event.json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
async def sent(node, kind: str, object_type: str | None = None) -> list[dict]:
    async with node.readers() as db:
        bodies = await db.scalars(select(Activity.body).where(Activity.type == kind)
                                  .order_by(Activity.id))
    found = [orjson.loads(b) for b in bodies]
    return [a for a in found if object_type is None
            or isinstance(a.get("object"), dict) and a["object"].get("type") == object_type]


# --- the document ----------------------------------------------------------------------------

async def test_event_document_is_mobilizon_shaped_and_parses_back(node):
    project = await node.create_actor("coop")
    obj = await make_event(node)
    async with node.readers() as db:
        row = await db.get(Event, obj.id)
        stored = await db.get(Object, obj.id)
    doc = stored.document
    assert doc["type"] == "Event" and doc["attributedTo"] == project.uri
    assert doc["startTime"] == "2027-03-10T09:00:00-03:00"
    assert doc["endTime"] == "2027-03-10T17:00:00-03:00"
    assert doc["timezone"] == "America/Montevideo" and doc["joinMode"] == "free"
    assert doc["participantCount"] == 0 and doc["isOnline"] is False
    assert doc["location"]["address"] == {"type": "PostalAddress",
                                          "streetAddress": "Av. 8 de Octubre 3000"}
    assert doc["attachment"] == [{"type": "Link", "name": "Website", "mediaType": "text/html",
                                  "href": "https://meet.example.org/hub"}]
    assert doc["inLanguage"] == "es" and doc["spokenLanguages"] == ["es", "pt"]
    assert doc["interpretation"] == ["en"]
    assert doc["contacts"] == [project.uri] and doc["eventKind"] == "hub_meeting"
    assert doc["url"].endswith("/p/coop/events/" + obj.uri.rsplit("/", 1)[1])
    assert row.starts_at == datetime(2027, 3, 10, 12, 0)  # stored in UTC
    columns = event_columns(doc)
    assert columns == {c: getattr(row, c) for c in columns}


def test_received_event_columns_are_lenient():
    base = {"id": "https://m.example/events/1", "type": "Event", "startTime": "2027-01-01T10:00:00Z"}
    columns = event_columns({**base, "timezone": "Mars/Olympus", "joinMode": "odd",
                             "endTime": "nonsense", "inLanguage": "fr"})
    assert columns["timezone"] is None and columns["join_mode"] == "free"
    assert columns["ends_at"] is None and columns["languages"] == ["fr"]
    for bad in ({**base, "startTime": "soon"}, {**base, "startTime": None},
                {**base, "endTime": "2026-12-31T10:00:00Z"}):
        with pytest.raises(ValueError):
            event_columns(bad)


@pytest.mark.parametrize(("changes", "message"), [
    ({"ends_at": "2027-03-10T08:00"}, "end after it starts"),
    ({"timezone": "America/Atlantis"}, "not a known time zone"),
    ({"kind": "party"}, "not a known event kind"),
    ({"join_mode": "maybe"}, "not a known join mode"),
    ({"online_url": "ftp://x.example/"}, r"not an http\(s\) URL"),
    ({"starts_at": "tomorrow"}, "not a date and time"),
    ({"place": None, "online_url": None}, "a place or an online link"),
    ({"name": " "}, "needs a name"),
])
async def test_unacceptable_events_are_refused(node, changes, message):
    await node.create_actor("coop")
    with pytest.raises(UserError, match=message):
        await make_event(node, **changes)


# --- federation ------------------------------------------------------------------------------

async def test_followers_get_the_event_and_a_note_announcing_it(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    await add_remote_follower(node, project, alice)
    obj = await make_event(node)
    await node.run_worker()
    creates = peer.activities("Create")
    kinds = sorted(a["object"]["type"] for a in creates)
    assert kinds == ["Event", "Note"]
    event = next(a for a in creates if a["object"]["type"] == "Event")
    assert event["object"]["id"] == obj.uri and "@context" not in event["object"]
    assert any(isinstance(c, dict) and c.get("joinMode") for c in event["@context"])
    note = next(a for a in creates if a["object"]["type"] == "Note")["object"]
    assert "2027-03-10 09:00–17:00 (America/Montevideo)" in note["content"]
    assert obj.url in note["content"] and "FUCVAM" in note["content"]

    async with node.writers() as db, db.begin():
        project = await get_local_actor(db, "coop")
        await edit_event(db, node.urls, project, await db.get(Object, obj.id),
                         **{**MEETING, "starts_at": "2027-03-10T10:00"})
    await node.run_worker()
    update = next(a["object"] for a in peer.activities("Update")
                  if a["object"]["type"] == "Event")
    assert update["startTime"] == "2027-03-10T10:00:00-03:00" and "updated" in update
    async with node.writers() as db, db.begin():
        project = await get_local_actor(db, "coop")
        await cancel_event(db, node.urls, project, await db.get(Object, obj.id))
    await node.run_worker()
    # Both go: the event, and the note that announced it (it must not still invite people).
    assert {d["object"]["id"] for d in peer.activities("Delete")} == {obj.uri, note["id"]}


async def test_a_mobilizon_event_is_stored_with_its_details(node, peer):
    member = await node.create_actor("ana", "Person")
    raw = MOBILIZON_EVENT.read_text().replace("https://rendezvous.nomagic.uk/@", peer.base + "/users/")
    raw = raw.replace("https://rendezvous.nomagic.uk", peer.base)
    document = json.loads(raw)
    group = peer.add_actor("devon_caledonian_society", "Group")
    await add_follow(node, member, await store_remote(node, group.document))
    create = {"@context": document["@context"], "id": peer.new_id(), "type": "Create",
              "actor": group.uri, "to": document["to"], "object": document}
    status, _ = await peer.post(group, node.urls.shared_inbox(), create)
    assert status == 202
    await node.run_worker()
    async with node.readers() as db:
        obj = await db.scalar(select(Object).where(Object.uri == document["id"]))
        row = await db.get(Event, obj.id)
    assert obj.type == "Event" and obj.name == "Caledonian scottish dance class"
    assert row.starts_at == datetime(2022, 12, 11, 19, 0) and row.timezone == "Europe/London"
    assert row.ends_at == datetime(2022, 12, 11, 21, 0) and row.join_mode == "free"
    assert row.languages == ["en"] and row.organizers == [peer.base + "/users/emorrp1"]
    assert obj.place["name"] == "The Kenn Centre"
    assert obj.place["address"]["postalCode"] == "EX6 7TW"


async def test_join_and_leave_from_a_peer(node, peer):
    await node.create_actor("coop")
    alice = peer.add_actor("alice")
    obj = await make_event(node)
    join = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
            "type": "Join", "actor": alice.uri, "object": obj.uri}
    assert (await peer.post(alice, node.urls.shared_inbox(), join))[0] == 202
    await node.run_worker()
    await node.run_worker()
    accept = peer.activities("Accept")[-1]
    assert accept["object"]["id"] == join["id"] and accept["object"]["type"] == "Join"
    status, document = await peer.get(None, obj.uri)
    assert status == 200 and document["participantCount"] == 1
    assert document["startTime"] == "2027-03-10T09:00:00-03:00"

    leave = {**join, "id": peer.new_id(), "type": "Leave"}
    assert (await peer.post(alice, node.urls.shared_inbox(), leave))[0] == 202
    await node.run_worker()
    async with node.readers() as db:
        assert await db.scalar(select(EventParticipant)) is None
    assert (await peer.get(None, obj.uri))[1]["participantCount"] == 0


async def test_a_restricted_event_waits_for_approval(node, peer):
    await node.create_actor("coop")
    alice = peer.add_actor("alice")
    obj = await make_event(node, join_mode="restricted")
    join = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
            "type": "Join", "actor": alice.uri, "object": obj.uri}
    await peer.post(alice, node.urls.shared_inbox(), join)
    await node.run_worker()
    assert peer.activities("Accept") == []
    async with node.writers() as db, db.begin():
        row = await db.scalar(select(EventParticipant))
        assert row.state == "pending"
        await answer_participant(db, node.urls, row, accept=True)
    await node.run_worker()
    assert peer.activities("Accept")[-1]["object"]["id"] == join["id"]


async def test_our_project_joins_a_remote_event_and_gets_accepted(node, peer):
    await node.create_actor("coop")
    group = peer.add_actor("network", "Group")
    event_id = peer.base + "/events/" + "a" * 32
    peer.objects[event_id] = {"@context": "https://www.w3.org/ns/activitystreams",
                              "id": event_id, "type": "Event", "name": "Asamblea",
                              "attributedTo": group.uri, "startTime": "2027-05-01T15:00:00Z",
                              "to": [PUBLIC]}
    args = SimpleNamespace(slug="coop", event=event_id)
    assert await event_commands.join(cli_node(node), args) == 0
    await node.run_worker()
    join = peer.activities("Join")[-1]
    assert join["object"] == event_id
    accept = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
              "type": "Accept", "actor": group.uri, "object": join["id"]}
    await peer.post(group, node.urls.shared_inbox(), accept)
    await node.run_worker()
    async with node.readers() as db:
        assert (await db.scalar(select(EventParticipant))).state == "accepted"
    assert await event_commands.leave(cli_node(node), args) == 0
    await node.run_worker()
    assert peer.activities("Leave")[-1]["object"] == event_id


# --- Mobilizon interop (facts from framasoft/mobilizon's source, cited per test) ----------------

def test_our_event_has_what_mobilizon_requires():
    # converter/event.ex as_to_model_data: `uuid` is taken from the document and events/event.ex
    # requires it; `inLanguage` becomes one `language` string; `category` falls back to MEETING;
    # the online address is the Link named "Website" with mediaType text/html; visibility is
    # public when as:Public is in `to`. converter/address.ex keeps a position only from floats.
    from uuid import UUID

    from fedsph.events.document import _wire_place, build_event
    obj = SimpleNamespace(uri="https://n.example/objects/1", name="A", name_map=None,
                          content=None, content_map=None, language="es", place={
                              "type": "Place", "name": "X", "latitude": -35, "longitude": -56},
                          published=datetime(2027, 1, 1), updated=None, url=None)
    event = SimpleNamespace(languages=["es"], starts_at=datetime(2027, 3, 10, 12),
                            ends_at=None, timezone="America/Montevideo", online_url=None,
                            join_mode="restricted", interpretation=None, organizers=None,
                            related_projects=None, kind="workshop")
    actor = SimpleNamespace(uri="https://n.example/actors/coop",
                            followers_url="https://n.example/actors/coop/followers")
    doc = build_event(obj, event, actor)
    assert UUID(doc["uuid"]) and doc["uuid"] == build_event(obj, event, actor)["uuid"]
    assert doc["inLanguage"] == "es" and "spokenLanguages" not in doc
    assert doc["category"] == "LEARNING" and doc["joinMode"] == "restricted"
    assert doc["startTime"] == "2027-03-10T09:00:00-03:00" and PUBLIC in doc["to"]
    assert isinstance(doc["location"]["latitude"], float) and obj.place["latitude"] == -35
    assert doc["actor"] == doc["attributedTo"] == actor.uri and "isOnline" in doc
    assert _wire_place(None) is None


def test_mobilizon_join_modes_links_and_languages_are_read():
    # converter/event.ex: the online address is the "Website" Link (other attachments are
    # banners and PropertyValue metadata); `externalParticipationUrl` events sign people up
    # elsewhere, so a Join would go unanswered.
    base = {"id": "https://m.example/events/1", "type": "Event", "startTime": "2027-01-01T10:00:00Z",
            "attachment": [{"type": "Link", "href": "https://m.example/other", "name": "Ticket"},
                           {"type": "Link", "href": "https://visio.example/r", "name": "Website",
                            "mediaType": "text/html"}]}
    columns = event_columns({**base, "joinMode": "external", "inLanguage": "fr"})
    assert columns["join_mode"] == "invite" and columns["online_url"] == "https://visio.example/r"
    assert columns["languages"] == ["fr"]
    assert event_columns({**base, "spokenLanguages": ["es", "pt"], "inLanguage": "es"})[
        "languages"] == ["es", "pt"]
    assert event_columns({**base, "joinMode": "restricted"})["join_mode"] == "restricted"


async def test_mobilizon_answers_our_join_as_organiser_or_moderator(node, peer):
    # types/events.ex: a free event's Join is accepted at once with `actor` = the organiser
    # (the event's `actor`, a person, even when a group is `attributedTo`); actions/accept.ex and
    # converter/participant.ex: the Accept embeds the Join {type, id, actor, object}, its id being
    # the participant's url, i.e. our Join's id (transmogrifier.ex stores `url: id`).
    # graphql/api/participations.ex: a restricted event's Join is answered by the moderator who
    # approves or rejects it, another person of the group.
    await node.create_actor("coop")
    await node.create_actor("taller")
    group = peer.add_actor("network", "Group")
    organiser, moderator = peer.add_actor("ana"), peer.add_actor("mod")
    event_id = peer.base + "/events/" + "b" * 32
    peer.objects[event_id] = {"@context": "https://www.w3.org/ns/activitystreams", "id": event_id,
                              "type": "Event", "name": "Asamblea", "actor": organiser.uri,
                              "attributedTo": group.uri, "startTime": "2027-05-01T15:00:00Z",
                              "joinMode": "restricted", "to": [PUBLIC]}
    for slug in ("coop", "taller"):
        assert await event_commands.join(cli_node(node), SimpleNamespace(slug=slug,
                                                                         event=event_id)) == 0
    await node.run_worker()
    joins = {j["actor"].rsplit("/", 1)[1]: j for j in peer.activities("Join")}
    assert joins["coop"]["object"] == event_id and joins["coop"]["type"] == "Join"
    for n, (answer, by, slug) in enumerate([("Accept", organiser, "coop"),
                                            ("Reject", moderator, "taller")]):
        join = {k: joins[slug][k] for k in ("type", "id", "actor", "object")}
        await peer.post(by, node.urls.shared_inbox(), {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{peer.base}/{answer.lower()}/join/{n}", "type": answer, "actor": by.uri,
            "object": join, "to": [join["actor"], group.uri]})
    await node.run_worker()
    async with node.readers() as db:
        rows = list(await db.scalars(select(EventParticipant)))
    assert [(r.activity_uri, r.state) for r in rows] == [(joins["coop"]["id"], "accepted")]


async def test_a_mobilizon_join_of_our_event_gets_the_answer_it_expects(node, peer):
    # transmogrifier.ex handle_incoming Join: id, actor, object (our event's id) and an optional
    # participationMessage; it then finds the participant by the id of the Join embedded in our
    # Accept, and checks that the Accept's actor is the event's organiser (can_manage_event?).
    # actions/leave.ex: Leave {actor, object: event url, id ".../leave/event/<n>"}.
    project = await node.create_actor("coop")
    person = peer.add_actor("ana")
    obj = await make_event(node)
    join = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Join",
            "id": f"{peer.base}/join/event/0b6f3a9e", "actor": person.uri, "object": obj.uri,
            "participationMessage": "Hola", "to": [person.uri, project.uri], "cc": []}
    assert (await peer.post(person, node.urls.shared_inbox(), join))[0] == 202
    await node.run_worker()
    await node.run_worker()
    accept = peer.activities("Accept")[-1]
    assert accept["actor"] == project.uri and accept["object"] == {
        "id": join["id"], "type": "Join", "actor": person.uri, "object": obj.uri}
    leave = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Leave",
             "id": f"{peer.base}/leave/event/1", "actor": person.uri, "object": obj.uri}
    assert (await peer.post(person, node.urls.shared_inbox(), leave))[0] == 202
    await node.run_worker()
    assert (await peer.get(None, obj.uri))[1]["participantCount"] == 0


async def test_a_mobilizon_group_event_sent_by_its_organiser_is_kept(node, peer):
    # types/events.ex create + utils.ex make_create_data: the Create's `actor` is the event's
    # `actor`, the organiser (a person); the group is only the Event's `attributedTo`, as in the
    # fixture event.json. Group followers are in the audience (audience.ex).
    member = await node.create_actor("ana", "Person")
    group = peer.add_actor("network", "Group")
    organiser = peer.add_actor("emorrp1")
    await add_follow(node, member, await store_remote(node, group.document))
    document = {"id": peer.base + "/events/" + "c" * 32, "type": "Event", "name": "Asamblea",
                "actor": organiser.uri, "attributedTo": group.uri, "to": [PUBLIC],
                "cc": [group.uri + "/followers"], "startTime": "2027-05-01T15:00:00Z"}
    create = {"@context": "https://www.w3.org/ns/activitystreams", "id": document["id"] +
              "/activity", "type": "Create", "actor": organiser.uri, "to": document["to"],
              "cc": document["cc"], "object": document}
    assert (await peer.post(organiser, node.urls.shared_inbox(), create))[0] == 202
    await node.run_worker()
    async with node.readers() as db:
        assert await db.scalar(select(Object).where(Object.uri == document["id"])) is not None


# --- iCal ------------------------------------------------------------------------------------

async def test_ical_feeds_of_a_project_and_of_the_hub(node):
    project = await node.create_actor("coop")
    obj = await make_event(node)
    async with peer_session() as http, http.get(f"{node.base}/p/coop/events.ics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/calendar; charset=utf-8"
        calendar = icalendar.Calendar.from_ical(await resp.read())
    (vevent,) = calendar.walk("VEVENT")
    assert str(vevent["UID"]) == obj.uri and str(vevent["SUMMARY"]) == MEETING["name"]
    start = vevent.decoded("DTSTART")
    assert start == datetime(2027, 3, 10, 9, 0, tzinfo=ZoneInfo("America/Montevideo"))
    assert vevent["DTSTART"].params["TZID"] == "America/Montevideo"
    assert vevent.decoded("DTEND").hour == 17 and "FUCVAM" in str(vevent["LOCATION"])
    assert str(vevent["URL"]) == obj.url

    async with peer_session() as http, http.get(f"{node.base}/hub/events.ics") as resp:
        assert resp.status == 404  # not a hub yet
    async with node.writers() as db, db.begin():
        hub = await ensure_hub(db, node.urls, node.settings.domain, name="Hub LatAm")
        db.add(HubMembership(hub_id=hub.id, project_id=project.id, state="approved"))
    await make_event(node, "hub", name="Webinar", kind="webinar", place=None)
    async with peer_session() as http, http.get(f"{node.base}/hub/events.ics") as resp:
        calendar = icalendar.Calendar.from_ical(await resp.read())
    assert sorted(str(v["SUMMARY"]) for v in calendar.walk("VEVENT")) == [
        MEETING["name"], "Webinar"]


def peer_session():
    return aiohttp.ClientSession()


# --- the CLI and the web -----------------------------------------------------------------------

def test_event_commands(tmp_path, monkeypatch, capsys):
    from fedsph.cli import main

    use_data_dir(monkeypatch, tmp_path / "data")
    assert main(["migrate"]) == 0
    assert main(["project", "create", "coop", "--name", "Cooperativa"]) == 0
    capsys.readouterr()
    assert main(["event", "create", "coop", "--name", "Taller de autoconstrucción",
                 "--start", "2027-03-10T09:00", "--end", "2027-03-10T12:00",
                 "--tz", "America/Montevideo", "--kind", "workshop", "--place", "Salón comunal",
                 "--languages", "es", "--text", "Traer guantes"]) == 0
    uri = capsys.readouterr().out.strip()
    assert uri.startswith("http://127.0.0.1:8080/objects/")
    assert main(["event", "list", "coop"]) == 0
    out = capsys.readouterr().out
    assert "2027-03-10 09:00 America/Montevideo\tTaller de autoconstrucción\t" + uri in out
    assert main(["event", "participants", "coop", uri]) == 0
    assert main(["event", "create", "coop", "--name", "X", "--start", "2027-03-10T09:00",
                 "--tz", "Nowhere/Land", "--place", "Aquí"]) == 1
    assert "'Nowhere/Land' is not a known time zone" in capsys.readouterr().err
    assert main(["event", "cancel", "coop", uri]) == 0
    assert capsys.readouterr().out == f"cancelled {uri}\n"
    assert main(["event", "list", "coop"]) == 0
    assert uri not in capsys.readouterr().out


async def test_members_create_events_from_the_web(node):
    project = await node.create_actor("coop")
    await make_user(node, "ana", project)
    await make_user(node, "bea")
    form = {"name": "Asamblea general", "lang": "es", "start": "2027-04-02T18:30",
            "end": "2027-04-02T20:00", "tz": "America/Sao_Paulo", "kind": "assembly",
            "place": "Sede", "address": "Rua das Flores 10", "online": "",
            "languages": "es pt", "interpretation": "", "join_mode": "free", "related": "",
            "text": "Todas invitadas"}
    async with browser() as client:
        await login(client, node, "bea")
        async with client.get(f"{node.base}/p/coop/events/new") as resp:
            assert resp.status == 403
    async with browser() as client:
        await login(client, node, "ana")
        page = f"{node.base}/p/coop/events/new"
        response = await post_form(client, page, {**form, "tz": "Mars/Base"})
        assert response.status == 400 and "not a known time zone" in await response.text()
        response = await post_form(client, page, form)
        assert response.status == 303
        location = response.headers["Location"]
        assert location.startswith("/p/coop/events/")
        async with client.get(node.base + location) as resp:
            html = await resp.text()
        assert resp.status == 200 and html.count("<h1") == 1
        assert "2027-04-02 18:30" in html and "20:00" in html and "America/Sao_Paulo" in html
        assert "Rua das Flores 10" in html and "Todas invitadas" in html
        async with client.get(f"{node.base}/p/coop/events") as resp:
            listing = await resp.text()
        assert "Asamblea general" in listing and "/p/coop/events.ics" in listing
        async with client.get(f"{node.base}/actors/coop") as resp:
            project_page = await resp.text()
        assert "Asamblea general" in project_page and "/p/coop/events" in project_page
        async with client.get(node.base + location,
                              headers={"Accept": "application/activity+json"}) as resp:
            document = await resp.json(content_type=None)
        assert document["type"] == "Event" and document["timezone"] == "America/Sao_Paulo"
        async with node.readers() as db:
            obj = await db.scalar(select(Object).where(Object.type == "Event"))
        async with client.get(obj.uri, headers={"Accept": "application/activity+json"}) as resp:
            assert (await resp.json(content_type=None))["startTime"] == "2027-04-02T18:30:00-03:00"
        token = await csrf_from(client, node.base + location)
        response = await client.post(node.base + location + "/cancel", data={"csrf": token},
                                     allow_redirects=False)
        assert response.status == 303
        async with client.get(node.base + location) as resp:
            assert resp.status == 410


async def test_event_pages_pass_the_accessibility_audit(node):
    project = await node.create_actor("coop")
    await make_user(node, "ana", project)
    obj = await make_event(node)
    async with browser() as client:
        await login(client, node, "ana")
        for path in ("/p/coop/events", obj.url[len(node.base):], "/p/coop/events/new",
                     "/actors/coop"):
            async with client.get(node.base + path) as resp:
                assert resp.status == 200, path
                assert audit(await resp.text()) == [], path
