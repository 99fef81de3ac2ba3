"""Issue 5 end to end: a hub node and three project nodes, each a real `fedsph serve` process on
loopback, and two Mastodon-like servers in the test's loop (a follower of the hub, and a relay
subscriber).

A cooperative in Uruguay, a cohousing group in France and a cooperative in Senegal set their
profiles from the CLI and join the hub: the first two by the hub's auto-approve rule (a region,
then a country), the third waits for `fedsph hub approve`. They post updates, Ñandé announces an
event, and Ñandé and La Ruche agree a solidarity link (South–North). The hub's pages and exports,
read over HTTP from the hub process, show exactly the members and what they published; the hub's
follower gets the updates as boosts (both FEP-1b12 forms) and the relay subscriber gets the
members' original activities, whose integrity proofs the test checks with its own eddsa-jcs-2022
verifier. Finally the Senegalese project leaves, and every view of the hub forgets it.

The test is async because the peers answer the nodes' key fetches from the test's loop; every
blocking call (CLI, HTTP to the nodes, tests.processes.wait_for) runs in a thread.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from zoneinfo import ZoneInfo

import geojson
import icalendar
import pytest

from tests.mastodon_peer import PUBLIC, MastodonPeer, _id
from tests.processes import NodeProcess, wait_for
from tests.support.hub import RelaySubscriber, relay_follow
from tests.support.proofs import independent_verify, method_of

pytestmark = pytest.mark.e2e

ATOM = "{http://www.w3.org/2005/Atom}"
NANDE_NAME = "Cooperativa Vivienda Ñandé"
RUCHE_NAME = "Habitat Participatif La Ruche"
THIES_NAME = "Cooperative Habitat Thies"
# Each project's exact point, and what its precision lets anyone see of it.
NANDE_EXACT, NANDE_SHOWN = ("-34.91234", "-56.18765"), (-34.91, -56.19)  # neighbourhood
RUCHE_EXACT, RUCHE_SHOWN = ("45.76432", "4.83567"), (45.8, 4.8)  # city
THIES_EXACT, THIES_SHOWN = ("14.79123", "-16.92567"), (14.8, -16.9)  # city
EXACT_TEXTS = [v for pair in (NANDE_EXACT, RUCHE_EXACT, THIES_EXACT) for v in pair]

NANDE_FIELDS = [
    ("country", "UY"), ("region", "latin_america_caribbean"), ("stage", "building", "2021-03-01"),
    ("approach", "mutual_aid_cooperative", "self_build"), ("homes_completed", "12"),
    ("homes_planned", "40"), ("location", "Montevideo", *NANDE_EXACT, "neighbourhood"),
    ("languages", "es", "en"),
]
RUCHE_PROFILE = {
    "name": RUCHE_NAME, "summary": "Habitat participatif à Lyon.", "stage": "living",
    "approach": ["cohousing"], "homes_completed": 20, "homes_planned": 20, "country": "FR",
    "region": "europe", "languages": ["fr"],
    "location": {"name": "Lyon", "latitude": float(RUCHE_EXACT[0]),
                 "longitude": float(RUCHE_EXACT[1]), "precision": "city"},
}
THIES_PROFILE = {
    "name": THIES_NAME, "summary": "Coopérative d'habitat à Thiès.", "stage": "planning",
    "approach": ["housing_cooperative", "self_build"], "homes_completed": 0, "homes_planned": 60,
    "country": "SN", "region": "africa", "languages": ["fr", "wo"],
    "location": {"name": "Thiès", "latitude": float(THIES_EXACT[0]),
                 "longitude": float(THIES_EXACT[1]), "precision": "city"},
}
UPDATES = {"nande": "Terminamos el techo del bloque B", "ruche": "Fête des voisins samedi",
           "thies": "Premier atelier de briques compressées"}
EVENT_NAME = "Encuentro HUB Sur-Norte"


async def cli(node: NodeProcess, *args: str) -> str:
    return (await asyncio.to_thread(node.cli, *args)).stdout


async def get(node: NodeProcess, path: str, accept: str = "application/activity+json") -> str:
    status, text = await asyncio.to_thread(node.get, path, accept)
    assert status == 200, f"GET {path}: {status} {text[:300]}"
    return text


async def waiting(predicate, what: str, timeout: float = 30):
    return await asyncio.to_thread(wait_for, predicate, timeout, what, 0.3)


def csv_names(text: str) -> set[str]:
    return {row["name"] for row in csv.DictReader(io.StringIO(text))}


@pytest.fixture
def nodes(tmp_path):
    hub = NodeProcess(tmp_path / "hub", FEDSPH_HUB="1", FEDSPH_HUB_NAME="Hub Sur-Norte")
    projects = {slug: NodeProcess(tmp_path / slug) for slug in ("nande", "ruche", "thies")}
    everyone = [hub, *projects.values()]
    try:
        yield hub, projects
    finally:
        for node in everyone:
            node.stop()


async def setup_nodes(tmp_path, hub: NodeProcess, projects: dict[str, NodeProcess]) -> None:
    async def project_node(slug: str, name: str, fields=None, profile=None):
        node = projects[slug]
        await cli(node, "migrate")
        await cli(node, "project", "create", slug, "--name", name)
        for field in fields or []:
            await cli(node, "project", "set", slug, *field)
        if profile is not None:
            path = tmp_path / f"{slug}.json"
            path.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
            await cli(node, "project", "set", slug, "--file", str(path))
        await asyncio.to_thread(node.start)

    async def hub_node():
        await cli(hub, "migrate")
        await cli(hub, "hub", "enable", "--name", "Hub Sur-Norte", "--region",
                  "latin_america_caribbean", "--auto-approve", "region:latin_america_caribbean")
        await asyncio.to_thread(hub.start)

    await asyncio.gather(hub_node(), project_node("nande", NANDE_NAME, fields=NANDE_FIELDS),
                         project_node("ruche", RUCHE_NAME, profile=RUCHE_PROFILE),
                         project_node("thies", THIES_NAME, profile=THIES_PROFILE))


def member_state(node: NodeProcess, handle: str) -> str | None:
    for line in node.cli("hub", "members").stdout.splitlines():
        who, state, _hub = line.split("\t")
        if who == handle:
            return state
    return None


def followers_count(node: NodeProcess, slug: str) -> int:
    status, text = node.get(f"/actors/{slug}/followers")
    return json.loads(text).get("totalItems", 0) if status == 200 else 0


async def test_hub_with_three_projects_on_three_nodes(nodes, tmp_path):
    hub, projects = nodes
    nande, ruche, thies = projects["nande"], projects["ruche"], projects["thies"]
    follower_server, relay_server = await MastodonPeer().start(), await RelaySubscriber().start()
    try:
        await setup_nodes(tmp_path, hub, projects)
        hub_handle = f"hub@{hub.domain}"
        hub_doc = json.loads(await get(hub, "/actors/hub"))
        assert hub_doc["type"] == "Group" and hub_doc["name"] == "Hub Sur-Norte"
        uris = {slug: f"{node.base}/actors/{slug}" for slug, node in projects.items()}
        handles = {slug: f"{slug}@{node.domain}" for slug, node in projects.items()}

        # -- the hub's follower and its relay subscriber, before anything is published ----------
        maria = follower_server.add_actor("maria")
        follow = follower_server.follow(maria, hub_doc["id"])
        assert (await follower_server.post(maria, hub_doc["inbox"], follow))[0] == 202
        instance = relay_server.add_actor("relay.actor", "Application")
        subscription = relay_follow(relay_server, instance)
        assert (await relay_server.post(instance, f"{hub.base}/inbox", subscription))[0] == 202
        # A relay subscription waits for a coordinator (issue 10): approve it as one would.
        await waiting(lambda: instance.uri in hub.cli("hub", "relay", "list").stdout,
                      "the hub to hold the relay subscription")
        await cli(hub, "hub", "relay", "approve", instance.uri)
        for server in (follower_server, relay_server):
            await waiting(lambda s=server: s.activities("Accept"), "the hub to accept a follow")
        for slug in projects:  # the relay subscriber knows the authors' proof keys
            relay_server.author_keys[uris[slug]] = method_of(
                await relay_server.fetch(uris[slug]))["publicKeyMultibase"]

        # -- joining: two by the rule (a region, then a country), one by a coordinator ----------
        await cli(nande, "hub", "join", "nande", hub_handle)
        await waiting(lambda: member_state(hub, handles["nande"]) == "approved",
                      "the hub to approve Ñandé by its region")
        await cli(hub, "hub", "enable", "--auto-approve", "country:FR")
        await cli(ruche, "hub", "join", "ruche", hub_handle)
        await cli(thies, "hub", "join", "thies", hub_handle)
        await waiting(lambda: member_state(hub, handles["ruche"]) == "approved",
                      "the hub to approve La Ruche by its country")
        await waiting(lambda: member_state(hub, handles["thies"]) == "requested",
                      "Thiès's request to reach the hub")
        await asyncio.sleep(1)  # the rule had its chance: the request still waits
        assert member_state(hub, handles["thies"]) == "requested"
        assert THIES_NAME not in csv_names(await get(hub, "/hub/directory.csv", "text/csv"))
        await cli(hub, "hub", "approve", handles["thies"])
        for slug, node in projects.items():
            await waiting(lambda n=node, s=slug: member_state(n, handles[s]) == "approved",
                          f"{slug}'s node to learn it was approved")
            await waiting(lambda n=node, s=slug: followers_count(n, s) == 1,
                          f"the hub to follow {slug}")

        # -- updates, an event, a solidarity link -------------------------------------------------
        posts = {slug: (await cli(projects[slug], "post", slug, "--text", text)).strip()
                 for slug, text in UPDATES.items()}
        event_uri = (await cli(nande, "event", "create", "nande", "--name", EVENT_NAME,
                               "--start", "2027-03-10T09:00", "--end", "2027-03-10T17:00",
                               "--tz", "America/Montevideo", "--kind", "hub_meeting",
                               "--place", "FUCVAM", "--languages", "es", "fr",
                               "--text", "Encuentro de proyectos del hub")).strip()
        await cli(nande, "link", "propose", "nande", handles["ruche"], "twinned_with")
        listing = await waiting(lambda: re.search(r"^(\d+)\tproposed\t", ruche.cli(
            "link", "list", "ruche").stdout, re.MULTILINE), "the link proposal to reach La Ruche")
        await cli(ruche, "link", "accept", "ruche", listing.group(1))

        # -- the hub's follower: each member's update boosted, in both forms -------------------
        def announced(form: str, post: str) -> bool:
            for activity in follower_server.activities("Announce"):
                obj = activity["object"]
                if form == "id" and obj == post:
                    return True
                if (form == "create" and isinstance(obj, dict) and obj.get("type") == "Create"
                        and _id(obj.get("object")) == post):
                    return True
            return False

        for slug, post in posts.items():
            for form in ("create", "id"):
                await waiting(lambda f=form, p=post: announced(f, p),
                              f"the hub's Announce ({form}) of {slug}'s update")
        await waiting(lambda: announced("id", event_uri), "the hub's boost of Ñandé's event")
        for activity in follower_server.activities("Announce"):
            assert activity["actor"] == hub_doc["id"] and PUBLIC in activity["to"]
        embedded = [a["object"] for a in follower_server.activities("Announce")
                    if isinstance(a["object"], dict) and _id(a["object"].get("object")) in
                    posts.values()]
        assert {e["actor"] for e in embedded} == set(uris.values())

        # -- the relay subscriber: the members' original Creates, proofs checked here ---------
        def relayed(post: str) -> dict | None:
            return next((r.activity for r in relay_server.received
                         if r.verified and r.activity.get("type") == "Create"
                         and _id(r.activity.get("object")) == post), None)

        for slug, post in posts.items():
            create = await waiting(lambda p=post: relayed(p), f"the relay to get {slug}'s update")
            assert create["actor"] == uris[slug] and UPDATES[slug] in create["object"]["content"]
            independent_verify(create, relay_server.author_keys[uris[slug]])
            assert create["proof"]["verificationMethod"].startswith(uris[slug])
        event_create = await waiting(lambda: relayed(event_uri), "the relay to get the event")
        assert event_create["object"]["type"] == "Event"
        independent_verify(event_create, relay_server.author_keys[uris["nande"]])

        # -- the hub's views ---------------------------------------------------------------------
        await check_directory(hub, uris)
        await check_exports(hub, uris, posts, event_uri)
        await waiting(lambda: json.loads(hub.get("/hub/links.json")[1] or "{}").get("edges"),
                      "the accepted link to reach the hub in both profiles")
        graph = json.loads(await get(hub, "/hub/links.json"))
        assert graph["edges"] == [{"source": uris["nande"], "target": uris["ruche"],
                                   "kind": "twinned_with"}]
        assert graph["region_pairs"] == [{"regions": ["europe", "latin_america_caribbean"],
                                          "kind": "twinned_with", "count": 1}]
        assert {n["id"]: (n["country"], n["region"]) for n in graph["nodes"]} == {
            uris["nande"]: ("UY", "latin_america_caribbean"), uris["ruche"]: ("FR", "europe"),
            uris["thies"]: ("SN", "africa")}

        # -- Thiès leaves: every view of the hub forgets it ----------------------------------------
        await cli(thies, "hub", "leave", "thies", hub_handle)
        await waiting(lambda: member_state(hub, handles["thies"]) is None,
                      "the hub to receive Thiès's Leave")
        await check_gone(hub, uris, posts["thies"])

        assert not follower_server.failures, follower_server.failures
        assert not relay_server.failures, relay_server.failures
        for node in (hub, *projects.values()):
            assert "Traceback" not in node.server_log(), node.server_log()[-3000:]
    finally:
        await follower_server.stop()
        await relay_server.stop()


# -- what the hub shows ------------------------------------------------------------------------------

FILTERS = {  # query -> the projects it must show, exactly
    "": {NANDE_NAME, RUCHE_NAME, THIES_NAME},
    "region=europe": {RUCHE_NAME},
    "region=europe&region=africa": {RUCHE_NAME, THIES_NAME},
    "country=UY": {NANDE_NAME},
    "country=SN": {THIES_NAME},
    "stage=planning": {THIES_NAME},
    "stage=building&stage=living": {NANDE_NAME, RUCHE_NAME},
    "approach=self_build": {NANDE_NAME, THIES_NAME},
    "approach=self_build&region=africa": {THIES_NAME},
    "approach=cohousing&country=UY": set(),
    "language=fr": {RUCHE_NAME, THIES_NAME},
    "q=nande": {NANDE_NAME},
    "q=NANDE": {NANDE_NAME},
    "q=thies": {THIES_NAME},
}


async def check_directory(hub: NodeProcess, uris: dict[str, str]) -> None:
    everyone = {NANDE_NAME, RUCHE_NAME, THIES_NAME}
    for query, expected in FILTERS.items():
        page = await get(hub, f"/hub?{query}", "text/html")
        shown = {name for name in everyone if name in page}
        assert shown == expected, f"/hub?{query} shows {shown}"
        table = await get(hub, f"/hub/directory.csv?{query}", "text/csv")
        assert csv_names(table) == expected, f"/hub/directory.csv?{query}"

    # The map: each project at its published, rounded point; never the exact one.
    for path in ("/hub/map", "/hub/map.svg"):
        drawing = await get(hub, path, "text/html")
        for lat, lon in (NANDE_SHOWN, RUCHE_SHOWN, THIES_SHOWN):
            assert f"({lat}, {lon})" in drawing, (path, lat, lon)
        assert not [t for t in EXACT_TEXTS if t in drawing], path
    svg = ET.fromstring(await get(hub, "/hub/map.svg", "image/svg+xml"))
    circles = svg.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 3


async def check_exports(hub: NodeProcess, uris: dict[str, str], posts: dict[str, str],
                        event_uri: str) -> None:
    # Atom: the members' updates (and the event), nobody else's.
    feed = ET.fromstring((await get(hub, "/hub/feed.atom", "application/atom+xml")).encode())
    assert feed.tag == f"{ATOM}feed"
    entries = {e.findtext(f"{ATOM}id"): e for e in feed.findall(f"{ATOM}entry")}
    assert set(posts.values()) <= set(entries), sorted(entries)
    member_bases = tuple(uri.split("/actors/")[0] + "/" for uri in uris.values())
    assert all(entry_id.startswith(member_bases) for entry_id in entries), sorted(entries)
    for slug, post in posts.items():
        assert UPDATES[slug] in entries[post].findtext(f"{ATOM}content")
    assert event_uri in entries
    # Besides the three updates and the event: the plain update announcing the event, and no more.
    (announcement,) = set(entries) - set(posts.values()) - {event_uri}
    assert announcement.startswith(uris["nande"].split("/actors/")[0])
    said = " ".join(entries[announcement].findtext(f"{ATOM}{tag}") or ""
                    for tag in ("title", "summary", "content"))
    assert EVENT_NAME in said and "2027-03-10 09:00" in said and event_uri.rsplit("/", 1)[1] in said

    # iCalendar: the event, at 09:00 in Montevideo.
    calendar = icalendar.Calendar.from_ical(await get(hub, "/hub/events.ics", "text/calendar"))
    events = [c for c in calendar.walk("VEVENT")]
    assert [str(e["UID"]) for e in events] == [event_uri]
    (event,) = events
    assert str(event["SUMMARY"]) == EVENT_NAME
    montevideo = ZoneInfo("America/Montevideo")
    assert event.decoded("DTSTART") == datetime(2027, 3, 10, 9, 0, tzinfo=montevideo)
    assert event.decoded("DTEND") == datetime(2027, 3, 10, 17, 0, tzinfo=montevideo)
    assert str(event["DTSTART"].params.get("TZID")) == "America/Montevideo"

    # GeoJSON: a valid FeatureCollection of the rounded points (lon, lat).
    collection = geojson.loads(await get(hub, "/hub/directory.geojson", "application/geo+json"))
    assert collection.is_valid and collection["type"] == "FeatureCollection"
    points = {f["properties"]["name"]: tuple(f["geometry"]["coordinates"])
              for f in collection["features"]}
    assert points == {NANDE_NAME: NANDE_SHOWN[::-1], RUCHE_NAME: RUCHE_SHOWN[::-1],
                      THIES_NAME: THIES_SHOWN[::-1]}
    by_name = {f["properties"]["name"]: f["properties"] for f in collection["features"]}
    assert by_name[NANDE_NAME]["approach"] == ["mutual_aid_cooperative", "self_build"]
    assert by_name[NANDE_NAME]["location_precision"] == "neighbourhood"
    assert by_name[THIES_NAME]["homes_planned"] == 60

    # CSV: one row per member, slugs and the rounded point.
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(
        await get(hub, "/hub/directory.csv", "text/csv")))}
    assert set(rows) == {NANDE_NAME, RUCHE_NAME, THIES_NAME}
    assert {n: (r["country"], r["region"], r["stage"]) for n, r in rows.items()} == {
        NANDE_NAME: ("UY", "latin_america_caribbean", "building"),
        RUCHE_NAME: ("FR", "europe", "living"), THIES_NAME: ("SN", "africa", "planning")}
    assert (rows[NANDE_NAME]["latitude"], rows[NANDE_NAME]["longitude"]) == ("-34.91", "-56.19")
    assert (rows[NANDE_NAME]["homes_completed"], rows[NANDE_NAME]["homes_planned"]) == ("12", "40")
    assert rows[NANDE_NAME]["url"].startswith(uris["nande"].split("/actors/")[0])
    for path in ("/hub/directory.csv", "/hub/directory.geojson"):
        text = await get(hub, path, "*/*")
        assert not [t for t in EXACT_TEXTS if t in text], path


async def check_gone(hub: NodeProcess, uris: dict[str, str], thies_post: str) -> None:
    remaining = {NANDE_NAME, RUCHE_NAME}
    assert {n for n in (NANDE_NAME, RUCHE_NAME, THIES_NAME)
            if n in await get(hub, "/hub", "text/html")} == remaining
    assert THIES_NAME not in await get(hub, "/hub?region=africa", "text/html")
    for path in ("/hub/map", "/hub/map.svg"):
        drawing = await get(hub, path, "text/html")
        assert THIES_NAME not in drawing and f"({THIES_SHOWN[0]}, {THIES_SHOWN[1]})" not in drawing
    collection = geojson.loads(await get(hub, "/hub/directory.geojson", "application/geo+json"))
    assert collection.is_valid
    assert {f["properties"]["name"] for f in collection["features"]} == remaining
    assert csv_names(await get(hub, "/hub/directory.csv", "text/csv")) == remaining
    feed = ET.fromstring((await get(hub, "/hub/feed.atom", "application/atom+xml")).encode())
    ids = {e.findtext(f"{ATOM}id") for e in feed.findall(f"{ATOM}entry")}
    assert thies_post not in ids and not any(i.startswith(uris["thies"].split("/actors/")[0])
                                             for i in ids)
    graph = json.loads(await get(hub, "/hub/links.json"))
    assert uris["thies"] not in {n["id"] for n in graph["nodes"]}
