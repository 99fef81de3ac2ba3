"""Make fedsph/hub/mapdata/world_110m.txt, the land and country outlines under the hub's map.

Input: countries-110m.json of the npm package world-atlas 2.0.2 (Natural Earth 1:110m Admin 0
countries, version 4.1.0, as TopoJSON; public domain). Output: two SVG path `d` strings in the
map's own projection and pixels (fedsph.hub.mapsvg.project), one to fill the land, one to stroke
the borders between countries. See fedsph/hub/mapdata/README.md for how to run it.

TopoJSON stores each border once as an "arc" that both countries (and the land) refer to, so the
script simplifies arcs, not polygons: the fill and the borders then meet exactly, with no slivers.
Simplification is shapely's Douglas-Peucker (dev-only; not a dependency of fedsph).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

from shapely import affinity
from shapely.geometry import LineString, Polygon, box

from fedsph.hub.mapsvg import HEIGHT, WIDTH, project

TOLERANCE = 0.55  # pixels of the 720 x 360 map: finer detail is not visible at that size
MIN_RING_AREA = 0.5  # square pixels: smaller islands are dropped
OUT = Path(__file__).resolve().parents[1] / "fedsph" / "hub" / "mapdata" / "world_110m.txt"


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    """Each arc as (x, y) map pixels: TopoJSON arcs are delta-encoded quantized positions."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            lon, lat = x * sx + tx, y * sy + ty
            points.append(project(lat, lon))
        simplified = LineString(points).simplify(TOLERANCE, preserve_topology=False)
        arcs.append([(round(px), round(py)) for px, py in simplified.coords])
    return arcs


def ring(arcs: list[list[tuple[int, int]]], indexes: list[int]) -> list[tuple[int, int]]:
    """A closed ring from its arcs; ~i is arc i walked backwards; joints are not repeated."""
    points: list[tuple[int, int]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def unwrap(points: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], int]:
    """The ring made continuous where it crosses the antimeridian (a jump of more than half the
    map), and how many map widths it wrapped (non-zero for a ring around a pole: Antarctica)."""
    out, offset = [points[0]], 0
    for (x0, _), (x1, y1) in pairwise(points):
        if x1 - x0 > WIDTH / 2:
            offset -= WIDTH
        elif x0 - x1 > WIDTH / 2:
            offset += WIDTH
        out.append((x1 + offset, y1))
    return out, offset


def split_at_antimeridian(points: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """A ring as one or more rings inside the map: the parts beyond an edge come back in at the
    other (Fiji, Chukotka); a ring around the pole is closed along the map's edge."""
    if all(abs(x1 - x0) <= WIDTH / 2 for (x0, _), (x1, _) in pairwise(points)):
        return [points]
    continuous, wrapped = unwrap(points)
    if wrapped:
        edge = HEIGHT if continuous[0][1] > HEIGHT / 2 else 0
        continuous += [(continuous[-1][0], edge), (continuous[0][0], edge)]
    shape, rings = Polygon(continuous).buffer(0), []
    for shift in (-WIDTH, 0, WIDTH):
        part = affinity.translate(shape, shift).intersection(box(0, 0, WIDTH, HEIGHT))
        for polygon in getattr(part, "geoms", [part]):
            if isinstance(polygon, Polygon) and not polygon.is_empty:
                rings.append([(round(x), round(y)) for x, y in polygon.exterior.coords])
    return rings


def area(points: list[tuple[int, int]]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1)
                   in zip(points, points[1:] + points[:1]))) / 2


def path(points: list[tuple[int, int]], closed: bool) -> str:
    """M x y then relative line-to steps (short numbers; a minus sign needs no separator)."""
    deduped = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    (x, y), parts = deduped[0], [f"M{deduped[0][0]} {deduped[0][1]}"]
    steps = []
    for nx, ny in deduped[1:]:
        steps.append(f"{nx - x} {ny - y}")
        x, y = nx, ny
    if steps:
        parts.append("l" + " ".join(steps).replace(" -", "-"))
    return "".join(parts) + ("z" if closed else "")


def land_path(topology: dict, arcs) -> str:
    parts = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for indexes in polygon:
                for points in split_at_antimeridian(ring(arcs, indexes)):
                    if len(set(points)) >= 3 and area(points) >= MIN_RING_AREA:
                        parts.append(path(points[:-1] if points[0] == points[-1] else points,
                                          True))
    return "".join(parts)


def border_path(topology: dict, arcs) -> str:
    """Arcs that two countries share: the borders (an arc used once is a coast)."""
    used = Counter()
    for geometry in topology["objects"]["countries"]["geometries"]:
        polygons = {"Polygon": [geometry.get("arcs", [])],
                    "MultiPolygon": geometry.get("arcs", [])}.get(geometry["type"], [])
        for polygon in polygons:
            for indexes in polygon:
                used.update({i if i >= 0 else ~i for i in indexes})
    parts = []
    for i in sorted(used):
        if used[i] < 2:
            continue
        pieces, piece = [], [arcs[i][0]]  # cut where a border would jump across the map
        for (x0, y0), (x1, y1) in pairwise(arcs[i]):
            if abs(x1 - x0) > WIDTH / 2:
                pieces.append(piece)
                piece = []
            piece.append((x1, y1))
        pieces.append(piece)
        parts.extend(path(p, False) for p in pieces if len(set(p)) > 1)
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topojson", type=Path, help="world-atlas 2.0.2 countries-110m.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    topology = json.loads(args.topojson.read_text())
    arcs = decode_arcs(topology)
    args.out.write_text(
        "# Natural Earth 1:110m (public domain) via world-atlas 2.0.2; made by "
        "tools/world_outlines.py, see README.md beside this file.\n"
        f"land {land_path(topology, arcs)}\nborders {border_path(topology, arcs)}\n")
    print(f"{args.out}: {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
