"""The hub directory as a query (issue 12): the SQL views over the index say what the pure
Python semantics (tests/support/directory_reference.py) say, on both engines; the index follows profiles,
memberships, blocks and deletions; pages and counts; caches see other processes' writes;
hostile search text is searched literally, never an error."""

from __future__ import annotations

import re

import aiohttp
import pytest
from multidict import MultiDict
from sqlalchemy import delete, func, select, text

from fedsph.federation.actors import store_remote_actor
from fedsph.federation.blocks import block_account, block_domain, unblock
from fedsph.hub import directory, directory_query
from fedsph.hub.membership import forget
from fedsph.models import Actor, Block, DirectoryEntry, Hub, HubMembership
from fedsph.web.keys import HUB_PAGE_CACHE
from tests.support import directory_reference as reference
from tests.support.nodes import make_settings, start_node

# (username, name, profile, name_map): accents, case, several languages and tags.
VARIED = [
    ("nande", "Cooperativa Vivienda Ñandé", {
        "country": "UY", "region": "latin_america_caribbean", "stage": "building",
        "approach": ["mutual_aid_cooperative"], "languages": ["es-UY", "gn"],
        "homes_completed": 10, "homes_planned": 40,
        "location": {"latitude": -34.9123, "longitude": -56.1645, "precision": "city"}},
     {"es": "Cooperativa Vivienda Ñandé", "en": "Ñandé Housing Cooperative"}),
    ("ayuda", "COOPERATIVA DE AYUDA MUTUA", {
        "country": "AR", "region": "latin_america_caribbean", "stage": "living",
        "approach": ["mutual_aid_cooperative", "self_build"], "languages": ["ES-ar"],
        "homes_completed": 30, "homes_planned": 30}, None),
    ("mutirao", "Mutirão São João", {
        "country": "BR", "region": "latin_america_caribbean", "stage": "living",
        "approach": ["self_build"], "tenure": ["collective_ownership_cooperative"],
        "languages": ["pt-BR"], "themes": ["mutual_aid", "access_to_land"],
        "homes_completed": True, "homes_planned": -3,
        "description_map": {"pt": "Habitação por ajuda mútua (NEAR o centro) 100% \"popular\""},
        "location": {"latitude": -23.55, "longitude": -46.63, "precision": "neighbourhood"}},
     None),
    ("lisboa", "Habitação Lisboa", {
        "country": "PT", "region": "europe", "stage": "planning", "languages": ["pt"],
        "approach": "cohousing", "location": {"latitude": 38.7, "longitude": -9.1,
                                              "precision": "country"}}, None),
    ("foret", "Coopérative de la Forêt", {
        "country": "FR", "region": "europe", "stage": ["planning"], "languages": ["fr", 7],
        "approach": ["cohousing", None], "description_map": {"fr": "Habitat participatif_*"}},
     None),
    ("granby", "Granby Four Streets CLT", {
        "country": "GB", "region": "europe", "stage": "living", "languages": ["en"],
        "approach": ["community_land_trust"], "homes_completed": 11,
        "description_map": {"en": "Homes held in trust on land the neighbours own."}}, None),
    ("strasse", "Wohnprojekt Straße", {"country": "DE", "languages": ["de"]}, None),
    ("bare", None, None, None),
]
QUERIES = ["", "cooperativa", "COOPÉRATIVE", "nande", "ñandé vivienda", "nande lucha",
           "operat", "de", "a", "sao joao", "straße", "strasse", "trust land", "housing",
           '"', '""', "NEAR(centro)", "near", "coop*", "^coop", "(coop", "coop OR granby",
           'a"b', "100%", "%", "_", "participatif_*", "\\", "'; drop table actors; --",
           "x" * 200]
FILTERS = [[], [("country", "UY"), ("country", "ar")], [("language", "es")],
           [("language", "es-uy")], [("language", "ES-AR")], [("language", "pt")],
           [("language", "pt-br")], [("language", "pt-br"), ("language", "es")],
           [("language", "gn"), ("language", "es-ar")], [("stage", "living")], [("stage", "planning")],
           [("approach", "self_build"), ("approach", "cohousing")],
           [("region", "europe"), ("language", "fr")], [("theme", "access_to_land")],
           [("tenure", "collective_ownership_cooperative")], [("country", "ZZ")]]


async def add_project(node, hub: Actor, username: str, name, profile, name_map=None,
                      state: str = "approved") -> Actor:
    uri = f"https://{username}.example/actors/{username}"
    async with node.writers() as db, db.begin():
        actor = Actor(uri=uri, local=False, type="Group", username=username,
                      domain=f"{username}.example", name=name, profile=profile,
                      name_map=name_map, inbox=uri + "/inbox")
        db.add(actor)
        await db.flush()
        db.add(HubMembership(hub_id=hub.id, project_id=actor.id, state=state))
    return actor


async def make_hub(node) -> Actor:
    hub = await node.create_actor("hub", "Group")
    async with node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
    return hub


@pytest.fixture
async def varied(db_node):
    hub = await make_hub(db_node)
    for username, name, profile, name_map in VARIED:
        await add_project(db_node, hub, username, name, profile, name_map)
    await add_project(db_node, hub, "waiting", "Cooperativa Esperando", {"country": "UY"},
                      state="requested")
    return db_node, hub


async def sql_view(node, hub: Actor, filters: directory.Filters):
    async with node.readers() as db:
        view = directory_query.View(hub.id, filters, directory_query.is_sqlite(db))
        rows = await directory_query.page(db, view, 1, 1000)
        shown = await directory_query.count(db, view)
        return [r.uri for r in rows], shown, await directory_query.stats(db, view)


async def python_view(node, hub: Actor, filters: directory.Filters):
    async with node.readers() as db:
        members = await reference.member_projects(db, hub)
    chosen = reference.select_projects(members, filters)
    return [a.uri for a in chosen], len(chosen), reference.stats(chosen)


async def listed(node, hub: Actor, q: str = "", **values) -> list[str]:
    filters = directory.Filters({k: tuple(v) for k, v in values.items()}, q)
    return [uri.split("/")[-1] for uri in (await sql_view(node, hub, filters))[0]]


# -- the same answers as the pure semantics ------------------------------------------------------

async def test_sql_views_equal_the_python_semantics(varied):
    node, hub = varied
    for params in FILTERS:
        for q in QUERIES:
            filters = directory.parse_filters(MultiDict([*params, ("q", q)]))
            assert await sql_view(node, hub, filters) == await python_view(node, hub, filters), \
                (params, q)
    async with node.readers() as db:
        total, facets = await directory_query.member_facets(db, hub.id)
        members = await reference.member_projects(db, hub)
    assert total == len(members) == len(VARIED)
    assert facets == reference.facets(members)
    assert dict(facets["language"])["es"] == 2 and dict(facets["language"])["pt"] == 2


async def test_semantics_spelled_out(varied):
    node, hub = varied
    assert await listed(node, hub, "coop") == ["ayuda", "nande", "foret"]  # by folded name
    assert await listed(node, hub, "OPERAT") == ["ayuda", "nande", "foret"]  # mid-word
    assert await listed(node, hub, "mutirao sao") == ["mutirao"]  # every word, no accents
    assert await listed(node, hub, language=["es"]) == ["ayuda", "nande"]  # es-AR, es-UY
    assert await listed(node, hub, language=["pt"]) == ["lisboa", "mutirao"]
    assert await listed(node, hub, language=["pt-br"]) == ["mutirao"]
    assert await listed(node, hub, "(NEAR centro)") == ["mutirao"]  # FTS syntax is plain text
    assert await listed(node, hub, "coop*") == []


# -- kept in step ----------------------------------------------------------------------------------

async def generation(node) -> int:
    async with node.readers() as db:
        return await directory_query.generation(db)


async def test_index_follows_updates_leaving_removal_blocks_and_deletion(varied):
    node, hub = varied
    before = await generation(node)
    async with node.writers() as db, db.begin():  # a profile Update, as federation stores it
        await store_remote_actor(db, {
            "uri": "https://granby.example/actors/granby", "username": "granby",
            "domain": "granby.example", "name": "Granby Toxteth Trust",
            "profile": {"country": "IE", "stage": "building", "languages": ["ga"]}})
    assert await generation(node) > before
    assert await listed(node, hub, "toxteth") == ["granby"]
    assert await listed(node, hub, "four streets") == []
    assert await listed(node, hub, country=["IE"], language=["ga"]) == ["granby"]
    assert await listed(node, hub, country=["GB"]) == []

    async with node.writers() as db, db.begin():  # leaving: the Leave handler forgets the row
        nande = await db.scalar(select(Actor).where(Actor.username == "nande"))
        await forget(db, node.urls, hub, nande)
    assert "nande" not in await listed(node, hub)

    async with node.writers() as db, db.begin():  # blocked: left out; unblocked: back
        ayuda = await db.scalar(select(Actor).where(Actor.username == "ayuda"))
        await block_account(db, ayuda)
        await block_domain(db, "mutirao.example")
    assert {"ayuda", "mutirao"}.isdisjoint(await listed(node, hub))
    async with node.readers() as db:
        total, facets = await directory_query.member_facets(db, hub.id)
    assert total == len(VARIED) - 3 and "AR" not in dict(facets["country"])
    async with node.writers() as db, db.begin():
        for block_id in (await db.scalars(select(Block.id))).all():
            await unblock(db, block_id)
    assert {"ayuda", "mutirao"} <= set(await listed(node, hub))

    before = await generation(node)
    async with node.writers() as db, db.begin():  # an account deleted (Delete of the actor)
        await db.execute(delete(Actor).where(Actor.username == "lisboa"))
    assert await generation(node) > before
    assert "lisboa" not in await listed(node, hub)
    async with node.readers() as db:
        rows = await db.scalar(select(func.count()).select_from(DirectoryEntry))
    assert rows == len(VARIED) - 2  # nande left, lisboa deleted; the waiting one never listed


# -- pages, caches, hostile input -----------------------------------------------------------------

async def get(node, path: str, params=None) -> tuple[int, str]:
    async with aiohttp.ClientSession(headers={"Accept": "text/html"}) as http, \
            http.get(node.base + path, params=params) as response:
        return response.status, await response.text()


async def test_pages_are_cut_in_sql_with_their_counts(node):
    hub = await make_hub(node)
    for n in range(120):
        await add_project(node, hub, f"p{n:03}", f"Proyecto {n:03}",
                          {"country": "UY" if n % 3 else "AR", "languages": ["es"]})
    status, first = await get(node, "/hub")
    assert status == 200 and "120 member projects" in first
    assert first.count("Proyecto ") == 50 and "Proyecto 000" in first and 'rel="next"' in first
    assert "Uruguay (80)" in first and "Argentina (40)" in first  # counts of all members
    _, third = await get(node, "/hub", {"page": "3"})
    assert third.count("Proyecto ") == 20 and "Proyecto 119" in third
    assert 'rel="next"' not in third and 'rel="prev"' in third
    _, filtered = await get(node, "/hub", {"country": "AR", "page": "1"})
    assert "40 projects of 120 shown" in filtered and 'rel="next"' not in filtered
    assert "Uruguay (80)" in filtered  # the form still counts every member


async def test_another_process_sees_a_change_through_the_generation(node, tmp_path):
    hub = await make_hub(node)
    await add_project(node, hub, "uno", "Cooperativa Uno", {"country": "UY"})
    other = await start_node(make_settings(tmp_path))  # a second app on the same database file
    try:
        _, page = await get(other, "/hub")
        assert "1 member project" in page and "Uruguay (1)" in page
        await add_project(node, hub, "dos", "Cooperativa Dos", {"country": "UY"})
        _, page = await get(other, "/hub")
        assert "2 member projects" in page and "Uruguay (2)" in page and "Dos" in page
    finally:
        await other.runner.cleanup()


async def test_the_page_cache_keys_on_the_view_not_the_raw_query(node):
    hub = await make_hub(node)
    await add_project(node, hub, "uno", "Cooperativa Uno", {"country": "UY", "stage": "living"})
    await add_project(node, hub, "dos", "Cooperativa Dos", {"country": "AR", "stage": "living"})
    cache = node.app[HUB_PAGE_CACHE]
    _, plain = await get(node, "/hub")
    _, junk = await get(node, "/hub?x=1&utm_source=y")  # unknown parameters: the same entry
    assert len(cache) == 1 and junk == plain and "utm_source" not in junk
    _, one = await get(node, "/hub?country=UY&stage=living&junk=2")
    _, other = await get(node, "/hub?stage=living&country=UY")  # reordered: the same entry
    assert len(cache) == 2 and other == one and "Cooperativa Dos" not in one
    assert "junk" not in other  # the language links repeat the canonical query only
    _, page_one = await get(node, "/hub?page=1")
    assert len(cache) == 2 and page_one == plain
    _, spanish = await get(node, "/hub?lang=es&x=3")  # another language: an entry of its own
    assert len(cache) == 3 and spanish != plain
    assert all(held[2] >= len("/hub") for held in cache.values())  # its key counts in its size


async def test_a_page_larger_than_the_whole_cache_is_served_not_kept(tmp_path):
    # FEDSPH_HUB_PAGE_CACHE_MB=0: every page is larger than the cache (LRUCache would raise).
    small = await start_node(make_settings(tmp_path, hub_page_cache_mb=0))
    try:
        await make_hub(small)
        status, _ = await get(small, "/hub")
        assert status == 200 and len(small.app[HUB_PAGE_CACHE]) == 0
    finally:
        await small.runner.cleanup()


HOSTILE = ['"', "NEAR(a b)", "coop*", "^coop", "(coop", ")", "a AND", "OR", '"unterminated',
           "col:coop", "-coop", "{a b}", "%", "_", "\\", "'; DROP TABLE actors; --", "x" * 200,
           "ñ" * 200]


async def test_hostile_search_text_is_searched_literally(node):
    hub = await make_hub(node)
    await add_project(node, hub, "uno", "Cooperativa (Uno) 100%", {"country": "UY"})
    async with node.readers() as db:
        actors = await db.scalar(select(func.count()).select_from(Actor))
    for q in HOSTILE:
        for path in ("/hub", "/hub/stats", "/hub/map", "/hub/directory.csv",
                     "/hub/directory.geojson", "/hub/feed.atom"):
            status, body = await get(node, path, {"q": q})
            assert status == 200, (q, path, body[:300])
    for q, found in (("(uno)", True), ("100%", True), ("%", True), ("coop*", False),
                     ("NEAR(uno)", False)):
        _, page = await get(node, "/hub", {"q": q})
        assert ("Cooperativa (Uno)" in page) is found, q
    status, page = await get(node, "/hub", {"q": "x" * 201})
    assert status == 400 and re.search("200", page)
    for q in ("co\x00op", "a\x01b", "\x7f"):  # FTS5 and PostgreSQL refuse NUL: a 400, not a 500
        for path in ("/hub", "/hub/stats", "/hub/map", "/hub/directory.csv",
                     "/hub/directory.geojson"):
            status, page = await get(node, path, {"q": q})
            assert status == 400 and "control characters" in page, (q, path, status)
    async with node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(Actor)) == actors


async def test_custom_plans_last_only_for_the_view(db_node):
    """plan_each_view asks PostgreSQL to plan each statement for its values for one transaction
    only: the pooled connection goes back with the server's default (SQLite: nothing to do)."""
    async with db_node.readers() as db:
        sqlite = directory_query.is_sqlite(db)
        await db.execute(select(1))
        await directory_query.plan_each_view(db)
        if not sqlite:
            assert await db.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    async with db_node.readers() as db:
        if not sqlite:
            assert await db.scalar(text("SHOW plan_cache_mode")) == "auto"
