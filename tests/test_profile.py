"""Project profiles (issue 3): validation, `fedsph project set`, the Group document on the wire
(extension context, PropertyValue fields, a blurred Place), Update(actor) to followers, and the
profile of another fedsph node's actor read back."""

import json
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from fedsph.errors import UserError
from fedsph.federation.actors import parse_actor_document
from fedsph.models import Actor
from fedsph.projects import profile, profile_wire
from tests.support import testdb
from tests.support.db import add_remote_follower

AP = {"Accept": "application/activity+json"}
# A point that must never leave the node once its precision is blurred.
EXACT_LAT, EXACT_LON = -34.901234, -56.164567


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field, raw, message", [
    ("stage", "bulding", "stage: 'bulding' is not one of initiating, planning"),
    ("approach", ["self_build", "squatting"], "approach: 'squatting' is not one of"),
    ("homes_planned", -1, "not a whole number from 0"),
    ("homes_planned", "many", "not a whole number from 0"),
    ("homes_completed", True, "not a whole number"),
    ("start_year", 1750, "not a year from 1800 to 2100"),
    ("completion_year", "20x6", "not a year"),
    ("households", {"value": 42, "as_of": "2026-13-01"}, "households as_of: '2026-13-01' is not a date"),
    ("country", "XX", "not an ISO 3166-1 alpha-2 code"),
    ("country", "EU", "not an ISO 3166-1 alpha-2 code"),
    ("languages", ["es", "english"], "'english' is not a language tag"),
    ("location", {"latitude": 91, "longitude": 0}, "latitude 91 is not a number from -90 to 90"),
    ("location", {"latitude": 0, "longitude": "east"}, "longitude 'east' is not a number"),
    ("location", {"latitude": 0, "longitude": 0, "precision": "street"}, "precision 'street'"),
    ("links", [{"kind": "website", "url": "ftp://x.org"}], "is not an http(s) URL"),
    ("links", [{"kind": "blog", "url": "https://x.org"}], "link kind: 'blog' is not one of"),
    ("partners", [{"name": "CCU", "role": "friend"}], "partner role: 'friend' is not one of"),
    ("partners", [{"role": "architect"}], "partner name: needs some text"),
    ("region", "oceania", "region: 'oceania' is not one of"),
    ("settlement_type", "suburb", "settlement_type: 'suburb'"),
    ("stage_history", [{"stage": "building"}], "stage_history date: None is not a date"),
])
def test_bad_values_are_refused_with_a_clear_message(field, raw, message):
    with pytest.raises(UserError) as error:
        profile.validate_field(field, raw)
    assert message in str(error.value)


def test_values_are_normalised():
    assert profile.validate_field("country", " uy ") == "UY"
    assert profile.validate_field("languages", ["ES", "pt-br", "zh-hant-tw", "es"]) == [
        "es", "pt-BR", "zh-Hant-TW"]
    assert profile.validate_field("approach", "self_build") == ["self_build"]
    assert profile.validate_field("homes_planned", "40") == 40
    assert profile.validate_field("themes", []) is None
    assert profile.validate_field("stage_history", [
        {"stage": "living", "date": "2020-05-01"}, {"stage": "building", "date": "2018-02-01"},
    ]) == [{"stage": "building", "date": "2018-02-01"}, {"stage": "living", "date": "2020-05-01"}]


@pytest.mark.parametrize("precision, lat, lon, radius", [
    ("exact", -34.90123, -56.16457, None),
    ("neighbourhood", -34.9, -56.16, 1500),
    ("city", -34.9, -56.2, 15000),
    ("country", -35, -56, 300000),
])
def test_location_is_rounded_when_it_is_set_and_when_it_is_sent(precision, lat, lon, radius):
    stored = profile.validate_field("location", {"name": "Montevideo", "latitude": EXACT_LAT,
                                                 "longitude": EXACT_LON, "precision": precision})
    assert (stored["latitude"], stored["longitude"]) == (lat, lon)
    # Even a profile stored unrounded (say, by an older version) is rounded on the wire.
    place = profile_wire.place({"latitude": EXACT_LAT, "longitude": EXACT_LON, "precision": precision})
    assert (place["latitude"], place["longitude"], place.get("radius")) == (lat, lon, radius)
    assert place["type"] == "Place" and place["locationPrecision"] == precision


def test_a_location_without_precision_is_blurred_to_the_neighbourhood():
    stored = profile.validate_field("location", {"latitude": EXACT_LAT, "longitude": EXACT_LON})
    assert stored == {"latitude": -34.9, "longitude": -56.16, "precision": "neighbourhood"}


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def fedsph(fedsph):
    """The shared in-process `fedsph` (tests/conftest.py), on a migrated node with a project."""
    fedsph("migrate")
    fedsph("project", "create", "coop", "--name", "Coop")
    return fedsph


def stored_actor(tmp_path, username: str = "coop") -> dict:
    columns = ("name", "name_map", "summary", "summary_map", "profile", "icon_url")
    row, = testdb.sql(tmp_path / "data", f"SELECT {', '.join(columns)} FROM actors "
                      "WHERE username = :username", username=username)
    # A JSON column comes back parsed from PostgreSQL, as text from SQLite.
    return {key: json.loads(value) if key.endswith(("map", "profile")) and isinstance(value, str)
            else value
            for key, value in zip(columns, row, strict=True)}


def test_cli_sets_lists_numbers_locations_and_translations(fedsph, tmp_path):
    for args in (
        ["languages", "es", "en"],
        ["approach", "mutual_aid_cooperative", "self_build"],
        ["households", "42", "2026-01-01"],
        ["homes_completed", "12"],
        ["start_year", "2019"],
        ["stage", "building", "2021-03-01"],
        ["country", "uy"],
        ["location", "Montevideo", str(EXACT_LAT), str(EXACT_LON), "neighbourhood"],
        ["name:es", "Cooperativa de vivienda"],
        ["name:en", "Housing co-op"],
        ["summary:fr", "Une coopérative"],
        ["description", "Construimos", "juntas"],
        ["partners", "Centro Cooperativo|technical_support|https://ccu.example",
         "Intendencia|public_authority"],
        ["links", "website|https://coop.example", "video|https://v.example/1|Asamblea"],
    ):
        code, out = fedsph("project", "set", "coop", *args)
        assert code == 0, out
        assert "updated" in out
    actor = stored_actor(tmp_path)
    stored = actor["profile"]
    assert stored["approach"] == ["mutual_aid_cooperative", "self_build"]
    assert stored["households"] == {"value": 42, "as_of": "2026-01-01"}
    assert stored["homes_completed"] == 12 and stored["start_year"] == 2019
    assert stored["stage"] == "building"
    assert stored["stage_history"] == [{"stage": "building", "date": "2021-03-01"}]
    assert stored["country"] == "UY"
    assert stored["location"] == {"name": "Montevideo", "latitude": -34.9, "longitude": -56.16,
                                  "precision": "neighbourhood"}
    assert stored["description_map"] == {"es": "Construimos juntas"}
    assert stored["partners"] == [
        {"name": "Centro Cooperativo", "role": "technical_support", "url": "https://ccu.example"},
        {"name": "Intendencia", "role": "public_authority"}]
    assert stored["links"][1] == {"kind": "video", "url": "https://v.example/1", "title": "Asamblea"}
    # Spanish is the primary language: the plain name is the Spanish one.
    assert actor["name"] == "Cooperativa de vivienda"
    assert actor["name_map"] == {"es": "Cooperativa de vivienda", "en": "Housing co-op"}
    assert actor["summary_map"] == {"fr": "<p>Une coopérative</p>"}
    # No values clear a field.
    assert fedsph("project", "set", "coop", "start_year")[0] == 0
    assert "start_year" not in stored_actor(tmp_path)["profile"]


def test_a_stage_change_without_a_date_is_dated_today_in_the_history():
    today = datetime.now(UTC).date().isoformat()
    actor = Actor(name="Coop", profile={"stage": "planning", "stage_history": [
        {"stage": "planning", "date": "2019-05-01"}]})
    profile.apply_changes(actor, {"stage": "Building"})
    assert actor.profile["stage"] == "building"
    assert actor.profile["stage_history"] == [{"stage": "planning", "date": "2019-05-01"},
                                              {"stage": "building", "date": today}]
    profile.apply_changes(actor, {"stage": "building"})  # no change: no new entry
    assert len(actor.profile["stage_history"]) == 2
    profile.apply_changes(actor, {"stage": {"stage": "living", "date": "2024-06-30"}})
    assert {"stage": "living", "date": "2024-06-30"} in actor.profile["stage_history"]
    profile.apply_changes(actor, {"stage": None})  # clearing the stage keeps the history
    assert "stage" not in actor.profile and len(actor.profile["stage_history"]) == 3
    with pytest.raises(profile.ProfileError, match="stage: 'bulding' is not one of"):
        profile.apply_changes(actor, {"stage": "bulding"})


def test_cli_stage_without_a_date_adds_a_history_entry(fedsph, tmp_path):
    assert fedsph("project", "set", "coop", "stage", "living")[0] == 0
    assert fedsph("project", "set", "coop", "stage", "living")[0] == 0
    stored = stored_actor(tmp_path)["profile"]
    assert stored["stage"] == "living"
    assert stored["stage_history"] == [{"stage": "living",
                                        "date": datetime.now(UTC).date().isoformat()}]


def test_cli_sets_a_whole_profile_from_a_file(fedsph, tmp_path):
    fedsph("project", "set", "coop", "themes", "mutual_aid")
    data = {
        "name": {"es": "Cooperativa", "en": "Co-op"},
        "summary": "Vivienda por ayuda mutua",
        "description": {"es": "Texto largo", "pt": "Texto longo"},
        "stage": "living", "approach": ["housing_cooperative"], "tenure": ["use_rights_in_cooperative"],
        "financing": ["public_loan", "mutual_aid_labour"], "inhabitants": {"value": 150},
        "homes_planned": 40, "completion_year": 2024, "settlement_type": "urban",
        "region": "latin_america_caribbean", "languages": ["es"],
        "location": {"name": "Barrio Sur", "latitude": EXACT_LAT, "longitude": EXACT_LON,
                     "precision": "city"},
        "icon": "https://coop.example/logo.png",
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(data))
    code, out = fedsph("project", "set", "coop", "--file", str(path))
    assert code == 0, out
    actor = stored_actor(tmp_path)
    assert actor["name"] == "Cooperativa" and actor["name_map"] == data["name"]
    assert actor["summary"] == "<p>Vivienda por ayuda mutua</p>"
    assert actor["icon_url"] == "https://coop.example/logo.png"
    stored = actor["profile"]
    assert "themes" not in stored  # the file is the whole profile
    assert stored["description_map"] == data["description"]
    assert stored["inhabitants"] == {"value": 150}
    assert stored["location"] == {"name": "Barrio Sur", "latitude": -34.9, "longitude": -56.2,
                                  "precision": "city"}


@pytest.mark.parametrize("args, message", [
    (["stage", "bulding"], "stage: 'bulding' is not one of"),
    (["homes_planned", "-3"], "not a whole number"),
    (["start_year", "1492"], "not a year from 1800 to 2100"),
    (["country", "Uruguay"], "not an ISO 3166-1 alpha-2 code"),
    (["location", "Montevideo", "-134.9", "-56.1"], "latitude"),
    (["location", "Montevideo"], "location takes NAME LATITUDE LONGITUDE [PRECISION]"),
    (["partners", "CCU"], "write each value as NAME|ROLE|URL"),
    (["links", "website|www.coop.example"], "is not an http(s) URL"),
    (["name"], "a project needs a name"),
    (["colour", "red"], "unknown field 'colour'"),
    (["stage:es", "building"], "unknown field 'stage:es'"),
    ([], "give either FIELD VALUE... or --file"),
    (["--file", "/nonexistent/profile.json"], "cannot read /nonexistent/profile.json"),
])
def test_cli_mistakes_get_one_line_and_exit_code_1(fedsph, args, message):
    code, out = fedsph("project", "set", "coop", *args)
    assert code == 1, out
    assert message in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_cli_refuses_a_file_with_unknown_fields(fedsph, tmp_path):
    path = tmp_path / "profile.json"
    path.write_text('{"stage": "living", "colour": "red"}')
    code, out = fedsph("project", "set", "coop", "--file", str(path))
    assert code == 1 and "unknown field(s) colour" in out
    path.write_text("{not json")
    code, out = fedsph("project", "set", "coop", "--file", str(path))
    assert code == 1 and "is not valid JSON" in out


# -- on the wire --------------------------------------------------------------------------------

FULL = {
    "languages": ["es", "en"],
    "name:es": "Cooperativa Esperanza", "name:en": "Hope co-op",
    "summary": "Viviendas por ayuda mutua",
    "description": {"es": "Somos 42 familias.", "en": "We are 42 families."},
    "stage": {"stage": "building", "date": "2021-03-01"},
    "approach": ["mutual_aid_cooperative", "self_build"],
    "tenure": ["use_rights_in_cooperative"], "financing": ["public_loan"],
    "households": {"value": 42, "as_of": "2026-01-01"}, "inhabitants": {"value": 130},
    "homes_completed": 12, "homes_planned": 42, "start_year": 2019, "completion_year": 2027,
    "settlement_type": "urban", "themes": ["mutual_aid", "self_management"],
    "partners": [{"name": "Centro Cooperativo", "role": "technical_support",
                  "url": "https://ccu.example"}],
    "country": "UY", "region": "latin_america_caribbean",
    "location": {"name": "Montevideo", "latitude": EXACT_LAT, "longitude": EXACT_LON,
                 "precision": "neighbourhood"},
    "links": [{"kind": "website", "url": "https://esperanza.example/"},
              {"kind": "press", "url": "https://diario.example/nota", "title": "Nota"}],
    "icon": "https://esperanza.example/logo.png", "header": "https://esperanza.example/obra.jpg",
}


async def project_with_profile(node, changes: dict = FULL) -> Actor:
    await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        actor = await db.scalar(select(Actor).where(Actor.username == "coop"))
        await profile.set_profile(db, node.urls, actor, dict(changes))
    return actor


async def fetch(url: str, headers: dict | None = None) -> tuple[aiohttp.ClientResponse, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response, await response.read()


async def test_actor_document_carries_the_profile(node):
    await project_with_profile(node)
    response, body = await fetch(f"{node.base}/actors/coop", AP)
    assert response.status == 200
    document = orjson.loads(body)
    extension = document["@context"][-1]
    assert extension["fedsph"] == "https://fedsph.org/ns#"
    for term in ("stage", "approach", "tenure", "financing", "households", "inhabitants", "asOf",
                 "homesCompleted", "homesPlanned", "startYear", "completionYear",
                 "settlementType", "themes", "partners", "role", "country", "region",
                 "locationPrecision", "languages", "links", "descriptionMap", "stageHistory"):
        assert term in extension, term
    assert document["stage"] == "building"
    assert document["approach"] == ["mutual_aid_cooperative", "self_build"]
    assert document["households"] == {"value": 42, "asOf": "2026-01-01"}
    assert document["homesCompleted"] == 12 and document["startYear"] == 2019
    assert document["partners"] == [{"name": "Centro Cooperativo", "href": "https://ccu.example",
                                     "role": "technical_support"}]
    assert document["links"][1] == {"type": "Link", "href": "https://diario.example/nota",
                                    "kind": "press", "name": "Nota"}
    assert document["name"] == "Cooperativa Esperanza"
    assert document["nameMap"] == {"es": "Cooperativa Esperanza", "en": "Hope co-op"}
    assert document["descriptionMap"]["en"] == "We are 42 families."
    assert document["icon"] == {"type": "Image", "url": "https://esperanza.example/logo.png",
                                "mediaType": "image/png"}
    assert document["image"]["url"] == "https://esperanza.example/obra.jpg"
    assert document["location"] == {
        "type": "Place", "name": "Montevideo", "latitude": -34.9, "longitude": -56.16,
        "radius": 1500, "units": "m", "locationPrecision": "neighbourhood"}
    # The exact point is nowhere in the document, in any form.
    for secret in (b"34.901", b"56.164", b"56.165", b"34.9012"):
        assert secret not in body
    fields = {a["name"]: a["value"] for a in document["attachment"]}
    assert all(a["type"] == "PropertyValue" for a in document["attachment"])
    assert fields["Etapa"] == "En obra"  # Spanish, the project's first language
    assert fields["Enfoque"] == "Cooperativa de ayuda mutua, Autoconstrucción"
    assert fields["Viviendas"] == "12 construidas de 42"
    assert fields["País"] == "Uruguay"
    assert fields["Sitio web"] == ('<a href="https://esperanza.example/" target="_blank" '
                                  'rel="me nofollow noopener">esperanza.example</a>')


async def test_exact_coordinates_are_never_stored_or_sent_when_blurred(node):
    await project_with_profile(node, {"location": {"latitude": EXACT_LAT, "longitude": EXACT_LON,
                                                   "precision": "city"}})
    async with node.readers() as db:
        actor = await db.scalar(select(Actor).where(Actor.username == "coop"))
    assert actor.profile["location"] == {"latitude": -34.9, "longitude": -56.2, "precision": "city"}
    _, body = await fetch(f"{node.base}/actors/coop", AP)
    assert b"-34.90" not in body and b"56.16" not in body


async def test_a_document_reads_back_as_the_same_profile(node):
    actor = await project_with_profile(node)
    _, body = await fetch(f"{node.base}/actors/coop", AP)
    document = orjson.loads(body)
    assert profile_wire.profile_from_document(document) == actor.profile
    values = parse_actor_document(document)
    assert values["profile"] == actor.profile
    assert values["name_map"] == {"es": "Cooperativa Esperanza", "en": "Hope co-op"}
    assert values["icon_url"] == "https://esperanza.example/logo.png"
    assert values["header_url"] == "https://esperanza.example/obra.jpg"
    # Expanded-prefix keys (as a JSON-LD compaction with another prefix may produce) read the same.
    prefixed = {("fedsph:" + k if k in ("stage", "homesPlanned") else k): v
                for k, v in document.items()}
    assert profile_wire.profile_from_document(prefixed)["stage"] == "building"


def test_invalid_values_from_another_node_are_dropped_not_fatal():
    document = {
        "stage": "flying", "approach": ["self_build", 7, "bad slug!", "future_approach"],
        "homesPlanned": -4, "homesCompleted": "lots", "startYear": 3000, "country": "Narnia",
        "households": {"value": 10, "asOf": "yesterday"}, "inhabitants": [1, 2],
        "languages": ["es", "not a tag"], "links": [{"href": "javascript:alert(1)", "kind": "website"},
                                                    {"href": "https://ok.example", "kind": "press"}],
        "partners": "CCU", "stageHistory": {"stage": "living"},
        "descriptionMap": {"es": "Hola", "??": "x", "en": 5},
        "location": {"type": "Place", "latitude": "north", "longitude": 3,
                     "locationPrecision": "city"},
        "region": {"id": "x"}, "themes": None,
    }
    assert profile_wire.profile_from_document(document) == {
        # A well-formed slug unknown here (a newer vocabulary) is kept; it is shown as the slug.
        "stage": "flying", "approach": ["self_build", "future_approach"],
        "languages": ["es"], "links": [{"kind": "press", "url": "https://ok.example"}],
        "description_map": {"es": "Hola"},
    }
    assert profile_wire.profile_from_document({"type": "Person", "name": "Mastodon user"}) is None
    assert profile_wire.profile_from_document("nonsense") is None


async def test_setting_a_profile_sends_update_to_followers(node, peer):
    project = await node.create_actor("coop")
    await add_remote_follower(node, project, peer.add_actor("alice"))
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        queued = await profile.set_profile(db, node.urls, actor, {"stage": "planning",
                                                                  "homes_planned": 30})
    assert queued == 1
    await node.run_worker()
    updates = peer.activities("Update")
    assert len(updates) == 1
    update = updates[0]
    assert update["actor"] == project.uri
    assert update["object"]["id"] == project.uri and update["object"]["type"] == "Group"
    assert update["object"]["stage"] == "planning" and update["object"]["homesPlanned"] == 30
    assert update["@context"][-1]["fedsph"] == profile_wire.NAMESPACE  # terms defined where used
    assert "https://www.w3.org/ns/activitystreams#Public" in update["to"]


async def test_a_profile_update_from_another_node_is_stored(node, peer):
    await node.create_actor("coop")
    remote = peer.add_actor("esperanza", "Group")
    document = {**remote.document, "@context": [*remote.document["@context"], profile_wire.CONTEXT],
                "nameMap": {"es": "Esperanza", "fr": "Espérance"},
                **profile_wire.profile_terms(profile.validate_profile(
                    {"stage": "living", "homes_completed": 42, "country": "UY"}))}
    remote.document.update(document)
    update = {"@context": document["@context"], "id": peer.new_id(), "type": "Update",
              "actor": remote.uri, "object": document, "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    status, text = await peer.post(remote, f"{node.base}/inbox", update)
    assert status == 202, text
    await node.run_worker()
    async with node.readers() as db:
        stored = await db.scalar(select(Actor).where(Actor.uri == remote.uri))
    assert stored.profile == {"stage": "living", "homes_completed": 42, "country": "UY"}
    assert stored.name_map == {"es": "Esperanza", "fr": "Espérance"}


async def test_ns_serves_the_context_document(node):
    response, body = await fetch(f"{node.base}/ns")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/ld+json")
    context = orjson.loads(body)["@context"]
    assert context == profile_wire.CONTEXT
    assert context["fedsph"] == "https://fedsph.org/ns#"
    assert context["locationPrecision"] == "fedsph:locationPrecision"
