"""The hub's graph of solidarity links: member projects as nodes, their links as edges, and the
counts between regions (North–South at a glance).

Links come from what the member projects carry in their profiles (`solidarityLinks`, stored
with each actor: fedsph/projects/profile_wire.py). An edge is drawn only when both ends are approved
members of the hub and both declare the same link (mutual): one project alone cannot claim a
link with another. The graph itself (`build_graph`, `region_layout`) is pure.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core import vocab
from fedsph.hub.directory_index import ENTRY
from fedsph.hub.directory_query import listed
from fedsph.models import Actor

UNKNOWN_REGION = "unknown"


@dataclass(frozen=True)
class Member:
    uri: str
    name: str
    url: str
    country: str | None
    region: str | None
    links: tuple[tuple[str, str, str], ...]  # (subject, kind, object) as carried


def carried_links(links) -> tuple[tuple[str, str, str], ...]:
    """(subject, kind, object) of each link a profile carries; anything else is skipped."""
    if not isinstance(links, list):
        return ()
    return tuple((link["subject"], link["kind"], link["object"]) for link in links
                 if isinstance(link, dict)
                 and all(isinstance(link.get(k), str) for k in ("subject", "kind", "object")))


def build_graph(members: list[Member]) -> dict:
    """Nodes, mutual edges between members, and link counts per pair of regions and kind."""
    by_uri = {m.uri: m for m in members}
    declared: dict[tuple[str, str, str], set[str]] = {}
    for member in members:
        for subject, kind, obj in member.links:
            if member.uri in (subject, obj) and subject in by_uri and obj in by_uri:
                declared.setdefault((subject, kind, obj), set()).add(member.uri)
    edges = [{"source": s, "target": o, "kind": k}
             for (s, k, o), declarers in sorted(declared.items()) if declarers == {s, o}]
    pairs: Counter = Counter()
    for edge in edges:
        regions = sorted((by_uri[edge["source"]].region or UNKNOWN_REGION,
                          by_uri[edge["target"]].region or UNKNOWN_REGION))
        pairs[(regions[0], regions[1], edge["kind"])] += 1
    return {
        "nodes": [{"id": m.uri, "name": m.name, "url": m.url, "country": m.country,
                   "region": m.region} for m in sorted(members, key=lambda m: m.name.lower())],
        "edges": edges,
        "region_pairs": [{"regions": [a, b], "kind": kind, "count": count}
                         for (a, b, kind), count in sorted(pairs.items())],
    }


async def hub_graph(db: AsyncSession, hub: Actor) -> dict:
    """The graph of the hub's listed members (approved, not blocked): the directory's index
    gives names, places and uris, and only the links are read from each profile."""
    rows = await db.execute(
        select(ENTRY.c.uri, ENTRY.c.name, ENTRY.c.url, ENTRY.c.country, ENTRY.c.region,
               Actor.profile["solidarity_links"].label("links"))
        .join(Actor, Actor.id == ENTRY.c.actor_id)
        .where(*listed(hub.id)))
    return build_graph([Member(row.uri, row.name, row.url, row.country, row.region,
                               carried_links(row.links)) for row in rows])


# -- for the page -----------------------------------------------------------------------------


def region_label(region: str, lang: str) -> str:
    return "?" if region == UNKNOWN_REGION else vocab.label("region", region, lang)


def region_table(graph: dict, lang: str) -> dict:
    """Rows of (region pair, {kind: count}, total) and the kinds as (slug, label) columns."""
    rows: dict[tuple[str, str], Counter] = {}
    for pair in graph["region_pairs"]:
        rows.setdefault(tuple(pair["regions"]), Counter())[pair["kind"]] += pair["count"]
    kinds = [k for k in vocab.VOCABULARIES["solidarity_link"]
             if any(k in counts for counts in rows.values())]
    return {
        "kinds": [(k, vocab.label("solidarity_link", k, lang)) for k in kinds],
        "rows": [{"from": region_label(a, lang), "to": region_label(b, lang),
                  "counts": [counts.get(k, 0) for k in kinds], "total": sum(counts.values())}
                 for (a, b), counts in sorted(rows.items())],
    }


SIZE = 480
RADIUS = 170


def region_layout(graph: dict, lang: str) -> dict:
    """Regions on a circle (those with members or links), edges between them with their counts;
    drawn as inline SVG by templates/links_hub.html."""
    members = Counter(n["region"] or UNKNOWN_REGION for n in graph["nodes"])
    totals: Counter = Counter()
    for pair in graph["region_pairs"]:
        totals[tuple(pair["regions"])] += pair["count"]
    present = set(members) | {region for pair in totals for region in pair}
    known = vocab.VOCABULARIES["region"]
    # The vocabulary's order, then regions of newer vocabularies elsewhere, then the unknown.
    regions = [r for r in known if r in present] + sorted(
        present - set(known) - {UNKNOWN_REGION}) + [UNKNOWN_REGION] * (UNKNOWN_REGION in present)
    centre = SIZE / 2
    points = {}
    for index, region in enumerate(regions):
        angle = -math.pi / 2 + 2 * math.pi * index / max(len(regions), 1)
        points[region] = (round(centre + RADIUS * math.cos(angle), 1),
                          round(centre + RADIUS * math.sin(angle), 1))
    nodes = [{"x": x, "y": y, "label": region_label(r, lang), "members": members[r]}
             for r, (x, y) in points.items()]
    edges = []
    for (a, b), count in sorted(totals.items()):
        (x1, y1), (x2, y2) = points[a], points[b]
        if a == b:  # links within a region: a loop drawn outside its node
            edges.append({"loop": True, "x": x1, "y": y1, "count": count,
                          "width": min(1 + count, 8)})
            continue
        edges.append({"loop": False, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "count": count,
                      "mx": round((x1 + x2) / 2, 1), "my": round((y1 + y2) / 2, 1),
                      "width": min(1 + count, 8)})
    return {"size": SIZE, "nodes": nodes, "edges": edges}
