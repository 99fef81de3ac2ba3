"""Solidarity links (issue 5): two in-process nodes propose, accept, reject and withdraw a link;
both profiles carry it, both pages show it; a hub draws its members' links between regions."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select

from fedsph.errors import UserError
from fedsph.federation.actors import get_actor_by_uri, parse_actor_document
from fedsph.federation.blocks import block_domain
from fedsph.hub.links_graph import Member, build_graph
from fedsph.links import service as links
from fedsph.models import Actor, Hub, HubMembership, SolidarityLink
from fedsph.projects import outbox
from fedsph.projects.actor_document import build_actor_document
from fedsph.web.keys import DOCUMENTS, REMOTE
from tests.support.members import browser, login, make_user, post_form
from tests.support.nodes import settle_all
from tests.support.pages import audit


@pytest.fixture
def nodes(two_nodes):
    return two_nodes


async def find(node, handle_or_uri: str) -> Actor:
    return await links.find_project(node.writers, node.app[REMOTE], node.settings.domain,
                                    handle_or_uri)


async def link_on(node, offer_uri: str) -> SolidarityLink | None:
    async with node.readers() as db:
        return await db.scalar(select(SolidarityLink).where(SolidarityLink.offer_uri == offer_uri))


async def propose(node, slug: str, partner: Actor, kind: str = "twinned_with") -> SolidarityLink:
    async with node.writers() as db, db.begin():
        project = await db.scalar(select(Actor).where(Actor.username == slug, Actor.local))
        return await links.propose_link(db, node.urls, project, await db.get(Actor, partner.id),
                                        kind)


async def answer(node, offer_uri: str, accept: bool):
    async with node.writers() as db, db.begin():
        link = await db.scalar(select(SolidarityLink).where(SolidarityLink.offer_uri == offer_uri))
        await links.answer_link(db, node.urls, link, accept)


async def withdraw(node, slug: str, offer_uri: str):
    async with node.writers() as db, db.begin():
        link = await db.scalar(select(SolidarityLink).where(SolidarityLink.offer_uri == offer_uri))
        project = await db.scalar(select(Actor).where(Actor.username == slug, Actor.local))
        await links.withdraw_link(db, node.urls, project, link)


async def document_of(node, slug: str) -> dict:
    """The actor document as served (the cache of served documents dropped first: a change
    made by the worker shows there once the cache's entry expires, within 30 s)."""
    node.app[DOCUMENTS].clear()
    async with aiohttp.ClientSession() as http, http.get(
            f"{node.base}/actors/{slug}", headers={"Accept": "application/activity+json"}) as r:
        return orjson.loads(await r.read())


async def page_of(node, slug: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(
            f"{node.base}/actors/{slug}", headers={"Accept": "text/html"}) as r:
        assert r.status == 200
        return await r.text()


@pytest.fixture
async def pair(nodes):
    """norte on A and sur on B; sur follows norte, so B hears norte's profile updates."""
    a, b = nodes
    await a.create_actor("norte")
    await b.create_actor("sur")
    sur_on_a = await find(a, f"{b.base}/actors/sur")
    norte_on_b = await find(b, f"{a.base}/actors/norte")
    async with b.writers() as db, db.begin():
        sur = await db.scalar(select(Actor).where(Actor.username == "sur", Actor.local))
        await outbox.follow(db, b.urls, sur, await db.get(Actor, norte_on_b.id))
    await settle_all(a, b)
    return a, b, sur_on_a, norte_on_b


async def test_propose_accept_carried_in_both_profiles_and_shown_on_both_pages(pair):
    a, b, sur_on_a, norte_on_b = pair
    offer_uri = (await propose(a, "norte", sur_on_a, "mentors")).offer_uri
    await settle_all(a, b)
    received = await link_on(b, offer_uri)
    assert received.state == "proposed" and received.kind == "mentors"
    assert received.proposer_id == norte_on_b.id

    await answer(b, offer_uri, accept=True)
    await settle_all(a, b)
    assert (await link_on(a, offer_uri)).state == "accepted"
    assert (await link_on(b, offer_uri)).state == "accepted"

    carried = [{"type": "Relationship", "subject": f"{a.base}/actors/norte",
                "relationship": "mentors", "object": f"{b.base}/actors/sur"}]
    for node, slug in ((a, "norte"), (b, "sur")):
        document = await document_of(node, slug)
        assert document["solidarityLinks"] == carried
        context = document["@context"][-1]
        assert context["solidarityLinks"]["@id"] == "fedsph:solidarityLinks"
        assert context["mentors"] == "fedsph:mentors"
        assert parse_actor_document(document)["profile"]["solidarity_links"] == [
            {"kind": "mentors", "subject": f"{a.base}/actors/norte",
             "object": f"{b.base}/actors/sur"}]
    # B follows norte: the Update{Group} sent on the Accept refreshed B's copy of norte.
    async with b.readers() as db:
        stored = await get_actor_by_uri(db, f"{a.base}/actors/norte")
        assert stored.profile["solidarity_links"][0]["kind"] == "mentors"

    norte_page, sur_page = await page_of(a, "norte"), await page_of(b, "sur")
    for page in (norte_page, sur_page):
        assert "Solidarity links" in page and "Mentors" in page
    assert "Sur" in norte_page and "Norte" in sur_page
    # B's page of norte (a project elsewhere) shows the links norte's profile carries.
    async with aiohttp.ClientSession() as http, http.get(
            f"{b.base}/remote/actors", params={"uri": f"{a.base}/actors/norte"},
            headers={"Accept": "text/html"}) as r:
        remote_page = await r.text()
    assert "Mentors" in remote_page and "/actors/sur" in remote_page

    # Proposing it again while it stands is refused with a clear message.
    with pytest.raises(UserError, match="a mentors link between norte and .* is already accepted"):
        await propose(a, "norte", sur_on_a, "mentors")


async def test_reject_leaves_nothing_carried(pair):
    a, b, sur_on_a, _ = pair
    offer_uri = (await propose(a, "norte", sur_on_a, "funds")).offer_uri
    await settle_all(a, b)
    await answer(b, offer_uri, accept=False)
    await settle_all(a, b)
    assert (await link_on(a, offer_uri)).state == "rejected"
    assert (await link_on(b, offer_uri)).state == "rejected"
    assert "solidarityLinks" not in await document_of(a, "norte")
    # Once rejected, the same kind may be proposed again.
    await propose(a, "norte", sur_on_a, "funds")


@pytest.mark.parametrize("by", ["proposer", "partner"])
async def test_either_side_withdraws(pair, by):
    a, b, sur_on_a, _ = pair
    offer_uri = (await propose(a, "norte", sur_on_a)).offer_uri
    await settle_all(a, b)
    await answer(b, offer_uri, accept=True)
    await settle_all(a, b)
    if by == "proposer":
        await withdraw(a, "norte", offer_uri)
    else:
        await withdraw(b, "sur", offer_uri)
    await settle_all(a, b)
    for node, slug in ((a, "norte"), (b, "sur")):
        assert (await link_on(node, offer_uri)).state == "withdrawn"
        assert "solidarityLinks" not in await document_of(node, slug)
    async with b.readers() as db:
        stored = await get_actor_by_uri(db, f"{a.base}/actors/norte")
        assert "solidarity_links" not in (stored.profile or {})


async def test_a_proposal_is_withdrawn_by_its_proposer_not_by_the_partner(pair):
    a, b, sur_on_a, _ = pair
    offer_uri = (await propose(a, "norte", sur_on_a)).offer_uri
    await settle_all(a, b)
    with pytest.raises(UserError, match="reject it instead"):
        await withdraw(b, "sur", offer_uri)
    await withdraw(a, "norte", offer_uri)
    await settle_all(a, b)
    assert (await link_on(b, offer_uri)).state == "withdrawn"


async def test_an_offer_whose_subject_is_not_the_sender_is_ignored(node, peer):
    await node.create_actor("coop")
    mallory = peer.add_actor("mallory", "Group")
    someone = peer.add_actor("someone", "Group")
    offer = {"@context": links.OFFER_CONTEXT, "id": peer.new_id(), "type": "Offer",
             "actor": mallory.uri, "target": f"{node.base}/actors/coop",
             "object": links.relationship(someone.uri, "funds", f"{node.base}/actors/coop")}
    status, _ = await peer.post(mallory, f"{node.base}/inbox", offer)
    assert status == 202
    # The same Offer in the sender's own name is stored.
    honest = {**offer, "id": peer.new_id(),
              "object": links.relationship(mallory.uri, "funds", f"{node.base}/actors/coop")}
    await peer.post(mallory, f"{node.base}/inbox", honest)
    await node.run_worker()
    async with node.readers() as db:
        stored = list(await db.scalars(select(SolidarityLink)))
    assert [link.offer_uri for link in stored] == [honest["id"]]
    # An Accept of it from anyone but the partner changes nothing either.
    accept = {"@context": links.OFFER_CONTEXT, "id": peer.new_id(), "type": "Accept",
              "actor": someone.uri, "object": honest}
    await peer.post(someone, f"{node.base}/inbox", accept)
    await node.run_worker()
    async with node.readers() as db:
        assert (await db.scalar(select(SolidarityLink))).state == "proposed"


async def test_an_offer_is_kept_only_under_its_senders_own_id_and_withdrawn_by_bare_id(node, peer):
    await node.create_actor("coop")
    grupo = peer.add_actor("grupo", "Group")
    coop_uri = f"{node.base}/actors/coop"
    # An id on another server could be another project's, taken before it is sent.
    squatted = {"@context": links.OFFER_CONTEXT, "id": "https://elsewhere.example/offers/1",
                "type": "Offer", "actor": grupo.uri, "target": coop_uri,
                "object": links.relationship(grupo.uri, "funds", coop_uri)}
    status, text = await peer.post(grupo, f"{node.base}/inbox", squatted)
    assert status == 400 and "another server" in text
    offer = {**squatted, "id": peer.new_id()}
    await peer.post(grupo, f"{node.base}/inbox", offer)
    await node.run_worker()
    async with node.readers() as db:
        assert [link.offer_uri for link in await db.scalars(select(SolidarityLink))] == [
            offer["id"]]
    # Servers often undo by id alone: that id is the link's key.
    undo = {"@context": links.OFFER_CONTEXT, "id": peer.new_id(), "type": "Undo",
            "actor": grupo.uri, "object": offer["id"]}
    await peer.post(grupo, f"{node.base}/inbox", undo)
    await node.run_worker()
    async with node.readers() as db:
        assert (await db.scalar(select(SolidarityLink))).state == "withdrawn"


async def test_link_between_two_projects_of_one_node_through_the_member_pages(node):
    coop = await node.create_actor("coop")
    await node.create_actor("obra")
    await make_user(node, "ana", coop)
    obra = await get_actor(node, "obra")
    await make_user(node, "rosa", obra)
    async with browser() as client:
        await login(client, node, "ana")
        page = f"{node.base}/actors/coop/links"
        bad = await post_form(client, page, {"action": "propose", "partner": "coop",
                                             "kind": "twinned_with"})
        assert bad.status == 400 and "cannot link to itself" in await bad.text()
        bad = await post_form(client, page, {"action": "propose", "partner": "obra",
                                             "kind": "married_to"})
        assert bad.status == 400 and "not a kind of solidarity link" in await bad.text()
        done = await post_form(client, page, {"action": "propose", "partner": "obra",
                                              "kind": "exchange_visit"})
        assert done.status == 303
    await node.run_worker()
    async with node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(SolidarityLink)) == 1
        link = await db.scalar(select(SolidarityLink))
    async with browser() as client:
        await login(client, node, "rosa")
        page = f"{node.base}/actors/obra/links"
        async with client.get(page) as response:
            html = await response.text()
        assert "Exchange visit with" in html and audit(html) == []
        done = await post_form(client, page, {"action": "accept", "link": str(link.id)})
        assert done.status == 303
    await node.run_worker()
    async with node.readers() as db:
        links_now = list(await db.scalars(select(SolidarityLink)))
        assert [(x.state, x.kind) for x in links_now] == [("accepted", "exchange_visit")]
        for slug in ("coop", "obra"):
            document = build_actor_document(await get_actor(node, slug, db), node.urls)
            assert document["solidarityLinks"][0]["relationship"] == "exchange_visit"
    assert "Exchange visit with" in await page_of(node, "coop")
    # In Spanish, the kind is labelled in Spanish.
    async with aiohttp.ClientSession() as http, http.get(
            f"{node.base}/actors/obra", headers={"Accept": "text/html",
                                                 "Accept-Language": "es"}) as r:
        assert "Visita de intercambio con" in await r.text()


async def get_actor(node, slug: str, db=None) -> Actor:
    if db is not None:
        return await db.scalar(select(Actor).where(Actor.username == slug, Actor.local))
    async with node.readers() as session:
        return await session.scalar(select(Actor).where(Actor.username == slug, Actor.local))


def test_graph_counts_only_mutual_links_between_members():
    north, south, other = "https://eu.example/a", "https://uy.example/b", "https://x.example/c"
    members = [
        Member(north, "Norte", north, "DE", "europe",
               ((north, "funds", south), (north, "mentors", south), (north, "funds", other))),
        Member(south, "Sur", south, "UY", "latin_america_caribbean", ((north, "funds", south),)),
    ]
    graph = build_graph(members)
    assert graph["edges"] == [{"source": north, "target": south, "kind": "funds"}]
    assert graph["region_pairs"] == [
        {"regions": ["europe", "latin_america_caribbean"], "kind": "funds", "count": 1}]


async def test_hub_graph_from_stored_profiles_in_two_regions(node):
    hub_actor = await node.create_actor("hub")
    europe, latin = "https://eu.example/actors/casa", "https://uy.example/actors/coop"
    carried = [{"kind": "twinned_with", "subject": europe, "object": latin}]
    async with node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub_actor.id, region="europe"))
        for uri, name, country, region in ((europe, "Casa", "DE", "europe"),
                                           (latin, "Coop", "UY", "latin_america_caribbean")):
            member = Actor(uri=uri, local=False, type="Group", username=name.lower(),
                           domain=uri.split("/")[2], name=name, url=uri, inbox=uri + "/inbox",
                           profile={"country": country, "region": region,
                                    "solidarity_links": carried})
            db.add(member)
            await db.flush()
            db.add(HubMembership(hub_id=hub_actor.id, project_id=member.id, state="approved"))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base}/hub/links.json") as response:
            assert response.status == 200
            graph = await response.json()
        async with http.get(f"{node.base}/hub/links", headers={"Accept": "text/html"}) as r:
            page = await r.text()
    assert {(n["name"], n["region"], n["country"]) for n in graph["nodes"]} == {
        ("Casa", "europe", "DE"), ("Coop", "latin_america_caribbean", "UY")}
    assert graph["edges"] == [{"source": europe, "target": latin, "kind": "twinned_with"}]
    assert graph["region_pairs"] == [
        {"regions": ["europe", "latin_america_caribbean"], "kind": "twinned_with", "count": 1}]
    assert "<svg" in page and "Twinned with" in page and "Europe" in page
    assert audit(page) == []
    # A blocked domain's member leaves the graph, as it leaves the directory.
    async with node.writers() as db, db.begin():
        await block_domain(db, "uy.example")
    async with aiohttp.ClientSession() as http, http.get(f"{node.base}/hub/links.json") as r:
        graph = await r.json()
    assert [n["name"] for n in graph["nodes"]] == ["Casa"] and graph["edges"] == []


async def test_hub_links_on_a_node_that_is_no_hub_is_404(node):
    async with aiohttp.ClientSession() as http, http.get(f"{node.base}/hub/links.json") as r:
        assert r.status == 404


@pytest.mark.parametrize("args, message", [
    (["link", "propose", "nobody", "x@example.org", "funds"], "no project called 'nobody'"),
    (["link", "propose", "coop", "coop", "funds"], "cannot link to itself"),
    (["link", "propose", "coop", "obra", "hugs"], "not a kind of solidarity link"),
    (["link", "accept", "coop", "42"], "has no solidarity link 42"),
    (["link", "withdraw", "coop", "x"], "has no solidarity link x"),
])
def test_cli_mistakes_exit_1_with_one_line(fedsph, args, message):
    assert fedsph("migrate")[0] == 0
    fedsph("project", "create", "coop", "--name", "Coop")
    fedsph("project", "create", "obra", "--name", "Obra")
    code, out = fedsph(*args)
    assert code == 1 and message in out and len(out.strip().splitlines()) == 1


def test_cli_propose_list_accept_on_one_node(fedsph):
    assert fedsph("migrate")[0] == 0
    fedsph("project", "create", "coop", "--name", "Coop")
    fedsph("project", "create", "obra", "--name", "Obra")
    code, out = fedsph("link", "propose", "coop", "obra", "technical_support")
    assert code == 0 and out.startswith("proposed link 1")
    code, out = fedsph("link", "accept", "coop", "1")
    assert code == 1 and "only the other project" in out
    assert fedsph("link", "accept", "obra", "1") == (0, "accepted link 1\n")
    code, out = fedsph("link", "list", "coop")
    assert "accepted" in out and "technical_support" in out
    assert fedsph("link", "withdraw", "obra", "1")[0] == 0
    assert fedsph("link", "list", "coop")[1] == ""
