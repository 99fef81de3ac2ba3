"""Solidarity link offers from strangers are bounded (issue 10 review): any remote Group can
Offer a link, so one server may keep at most MAX_WAITING_OFFERS_PER_SERVER offers waiting here
(beyond: Reject, nothing stored), and the links page loads one page of links in one query,
saying how many it leaves out.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from fedsph.links import service as links
from fedsph.models import Actor, SolidarityLink
from fedsph.projects.queries import MAX_LISTED
from tests.fakepeer import FakePeer
from tests.support.members import browser, login, make_user
from tests.support.nodes import statements


def offer_from(peer: FakePeer, group, coop_uri: str, kind: str = "funds") -> dict:
    return {"@context": links.OFFER_CONTEXT, "id": peer.new_id(), "type": "Offer",
            "actor": group.uri, "target": coop_uri,
            "object": links.relationship(group.uri, kind, coop_uri)}


async def stored_offers(node) -> list[str]:
    async with node.readers() as db:
        return list(await db.scalars(select(SolidarityLink.offer_uri).order_by(SolidarityLink.id)))


async def test_offers_past_the_cap_of_one_server_are_rejected_and_not_stored(node, peer,
                                                                           monkeypatch):
    monkeypatch.setattr("fedsph.handlers.links.MAX_WAITING_OFFERS_PER_SERVER", 2)
    coop = await node.create_actor("coop")
    sent = []
    for name in ("uno", "dos", "tres"):
        group = peer.add_actor(name, "Group")
        sent.append(offer_from(peer, group, coop.uri))
        assert (await peer.post(group, f"{node.base}/inbox", sent[-1]))[0] == 202
    await node.run_worker()
    await node.run_worker()  # delivers our Reject
    # Three senders' offers are handled side by side: any two are kept, never three.
    kept = await stored_offers(node)
    assert len(kept) == 2 and set(kept) < {offer["id"] for offer in sent}
    (refused,) = [offer for offer in sent if offer["id"] not in kept]
    (reject,) = peer.activities("Reject")
    assert reject["actor"] == coop.uri and reject["object"]["id"] == refused["id"]
    assert reject["to"] == [refused["actor"]]

    other = await FakePeer(host="127.0.0.2").start()  # another server has its own allowance
    try:
        group = other.add_actor("cuatro", "Group")
        offer = offer_from(other, group, coop.uri)
        assert (await other.post(group, f"{node.base}/inbox", offer))[0] == 202
        await node.run_worker()
    finally:
        await other.stop()
    assert await stored_offers(node) == [*kept, offer["id"]]


async def add_links(node, coop: Actor, waiting: int) -> tuple[Actor, Actor]:
    """`waiting` offers from strangers, newer than one accepted and one outgoing link."""
    async with node.writers() as db, db.begin():
        remote = [Actor(uri=f"https://s{n}.example/g", local=False, type="Group", username="g",
                        domain=f"s{n}.example", inbox=f"https://s{n}.example/g/inbox")
                  for n in range(waiting + 2)]
        db.add_all(remote)
        await db.flush()
        friend, asked = remote[-2:]
        db.add(SolidarityLink(kind="funds", proposer_id=friend.id, partner_id=coop.id,
                              state="accepted", offer_uri="https://friend.example/o"))
        db.add(SolidarityLink(kind="funds", proposer_id=coop.id, partner_id=asked.id,
                              state="proposed", offer_uri=f"{coop.uri}/o"))
        await db.flush()
        db.add_all(SolidarityLink(kind="funds", proposer_id=actor.id, partner_id=coop.id,
                                  state="proposed", offer_uri=f"{actor.uri}/o")
                   for actor in remote[:waiting])
    return friend, asked


async def test_the_links_page_loads_one_page_in_one_query_and_says_what_it_leaves_out(node):
    coop = await node.create_actor("coop")
    await make_user(node, "ana", coop)
    friend, asked = await add_links(node, coop, MAX_LISTED + 5)
    async with browser() as client:
        await login(client, node, "ana")
        with statements(node) as seen:
            async with client.get(f"{node.base}/actors/coop/links") as response:
                html = await response.text()
    assert response.status == 200
    link_queries = [s for s in seen if "solidarity_links" in s]
    assert len(link_queries) == 2  # the page (joined, with a LIMIT) and its count
    assert any("LIMIT" in s and "JOIN actors" in s for s in link_queries)
    assert not [s for s in seen if s.startswith("SELECT actors.") and "WHERE actors.id =" in s]
    # Offers waiting come last: the project's own links are never pushed off the page.
    assert friend.domain in html and asked.domain in html
    assert len(re.findall(r'name="action" value="accept"', html)) == MAX_LISTED - 2
    assert "7 more links or proposals not shown" in html
