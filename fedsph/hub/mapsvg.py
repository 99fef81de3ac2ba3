"""The hub's map as server-rendered SVG: no tile server, no JavaScript, nothing third-party.

An equirectangular projection (longitude and latitude as x and y) with a graticule, the land and
the borders between countries (Natural Earth 1:110m, fedsph/hub/mapdata/), and the projects over
them. Each point is a link to the project. Points are drawn only from the coordinates each project
published, rounded again to its precision (directory.public_point); "country" precision places a
project only somewhere in a country, so those are listed beside the map rather than drawn.

A big hub's map stays small: when drawing every point would pass MARKS_BUDGET bytes (or
MAX_MARKS marks), the points of one country in one grid cell are drawn as one circle showing
their count and linking to the directory of that country, with cells as small as keeps the marks
within both bounds. The page then stays under 60 KB at 10,000 projects (tests/test_hub_map.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
SCALE = 2  # pixels per degree: 720 x 360
WIDTH, HEIGHT = 360 * SCALE, 180 * SCALE
GRATICULE_STEP = 30
NOT_DRAWN = ("country",)
MAX_MARKS = 200
# What the marks may weigh in the page, estimated per mark (mark_bytes). With the outlines
# (~18 KB) and the page around them this keeps /hub/map under 60 KB.
MARKS_BUDGET = 22_000
CELL_SIZES = (2, 5, 10, 15, 30, 60)  # degrees, tried in turn
COARSE_CELLS = (15, 30, 60, 90)  # then these, whatever the countries
MAX_RADIUS = 15  # pixels
# Narrower than this (a phone), the page scrolls the map sideways rather than shrink its
# counts past reading; pinch-zoom enlarges it crisply (a vector drawing, no JavaScript).
MIN_WIDTH = 560
SPREAD_ROUNDS = 8
TITLE_CHARS = 80  # a name is someone else's text: long ones are cut in the tooltip
OUTLINES = "mapdata/world_110m.txt"
# Colours: sea (background), land, coast and borders, graticule, projects. The red marks keep a
# contrast of more than 4.5:1 against both the land and the sea; their white rim separates them.
SEA, LAND, COAST, BORDER, GRID, MARK = \
    "#dbe8f1", "#efebe0", "#a9a18c", "#fff", "#c3d5e3", "#a00000"


@dataclass
class MapPoint:
    name: str
    href: str
    latitude: float
    longitude: float
    country: str | None = None


@dataclass
class Cluster:
    """Several projects of one country near each other, drawn as one counted circle."""

    points: list[MapPoint] = field(default_factory=list)
    # Where the circle is drawn when it had to move aside for a neighbour's; else the centre.
    moved: tuple[float, float] | None = None

    @property
    def latitude(self) -> float:
        return round(sum(p.latitude for p in self.points) / len(self.points), 1)

    @property
    def longitude(self) -> float:
        return round(sum(p.longitude for p in self.points) / len(self.points), 1)

    @property
    def country(self) -> str | None:
        """The country all of them are in, if they share one."""
        countries = {p.country for p in self.points}
        return countries.pop() if len(countries) == 1 else None

    @property
    def xy(self) -> tuple[float, float]:
        return self.moved or project(self.latitude, self.longitude)


# Characters XML 1.0 cannot carry at all: ElementTree writes them as they are, and one member's
# name would make the whole standalone SVG unreadable (and cached so).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _title(point: MapPoint) -> str:
    name = _NOT_XML.sub("", point.name)
    name = name if len(name) <= TITLE_CHARS else name[:TITLE_CHARS - 1] + "…"
    return f"{name} ({point.latitude}, {point.longitude})"


def mark_bytes(mark: MapPoint | Cluster, link_bytes: int = 40) -> int:
    """About what one mark adds to the SVG (the fixed parts measured on rendered marks);
    link_bytes: the length of a counted circle's link, which carries the view's filters."""
    if isinstance(mark, Cluster):
        return 150 + link_bytes
    return 70 + len(_title(mark).encode()) + len(mark.href.encode())


def radius(count: int) -> float:
    """Grows with the count but slowly and only so far: the number inside tells the rest, and
    a thousand projects must not cover a continent."""
    return round(min(6 + 1.5 * math.log2(count), MAX_RADIUS), 1)


def _grouped(points: list[MapPoint], size: float,
             by_country: bool = True) -> list[MapPoint | Cluster]:
    """One circle per country and grid cell (so it can link to that country's directory);
    circles of one country that would overlap become one. Without by_country, one circle per
    cell, whatever the countries in it."""
    cells: dict[tuple, list[MapPoint]] = {}
    for point in points:
        key = (point.country if by_country else None, math.floor(point.latitude / size),
               math.floor(point.longitude / size))
        cells.setdefault(key, []).append(point)
    # Per country: [x, y, radius, points] of the circles kept so far, biggest first (a circle
    # keeps the place and size of its first cell while it grows: close enough to decide).
    kept: dict[str | None, list[list]] = {}
    for cell in sorted(cells.values(), key=len, reverse=True):
        x, y = project(sum(p.latitude for p in cell) / len(cell),
                       sum(p.longitude for p in cell) / len(cell))
        r = radius(len(cell))
        same_country = kept.setdefault(cell[0].country if by_country else None, [])
        # A circle joins a bigger one it would touch; a lone point, one it lies under.
        reach = r if len(cell) > 1 else 0
        into = next((k for k in same_country if math.hypot(k[0] - x, k[1] - y) < k[2] + reach),
                    None)
        if into is None:
            same_country.append([x, y, r, list(cell)])
        else:
            into[3].extend(cell)
    return [c[3][0] if len(c[3]) == 1 else Cluster(c[3])
            for circles in kept.values() for c in circles]


def _spread(clusters: list[Cluster]) -> None:
    """Neighbouring countries' circles pushed apart a little so their counts stay readable
    (a few rounds; a circle moves at most MAX_RADIUS pixels from its true centre)."""
    home = [project(c.latitude, c.longitude) for c in clusters]
    at = [list(xy) for xy in home]
    radii = [radius(len(c.points)) for c in clusters]
    for _ in range(SPREAD_ROUNDS):
        moved = False
        for i in range(len(at)):
            for j in range(i + 1, len(at)):
                dx, dy = at[i][0] - at[j][0], at[i][1] - at[j][1]
                distance = math.hypot(dx, dy)
                overlap = radii[i] + radii[j] - distance
                if overlap <= 1:
                    continue
                if distance == 0:
                    dx, dy, distance = 1.0, 0.0, 1.0
                push = overlap / 2 / distance
                for k, sign in ((i, 1), (j, -1)):
                    at[k][0] += sign * dx * push
                    at[k][1] += sign * dy * push
                moved = True
        for (x0, y0), point in zip(home, at):  # never far from the truth, never off the map
            away = math.hypot(point[0] - x0, point[1] - y0)
            if away > MAX_RADIUS:
                point[0] = x0 + (point[0] - x0) * MAX_RADIUS / away
                point[1] = y0 + (point[1] - y0) * MAX_RADIUS / away
            point[0], point[1] = min(max(point[0], 0), WIDTH), min(max(point[1], 0), HEIGHT)
        if not moved:
            break
    for cluster, (x0, y0), (x, y) in zip(clusters, home, at):
        if (x, y) != (x0, y0):
            cluster.moved = (round(x, 1), round(y, 1))


def _fits(marks: list[MapPoint | Cluster], link_bytes: int) -> bool:
    return len(marks) <= MAX_MARKS and \
        sum(mark_bytes(m, link_bytes) for m in marks) <= MARKS_BUDGET


def marks(points: list[MapPoint], link_bytes: int = 40) -> list[MapPoint | Cluster]:
    """The points as they are, or grouped by country and grid cell when they would not fit.
    Bigger circles come first, so the smaller ones drawn after stay visible and clickable."""
    if _fits(points, link_bytes):
        return list(points)
    # Per country first (every circle links to its country); members in very many countries
    # may still not fit, then per cell whatever the country (a circle of several has no link).
    tries = [(size, True) for size in CELL_SIZES] + [(size, False) for size in COARSE_CELLS]
    for size, by_country in tries:
        grouped = _grouped(points, size, by_country)
        if _fits(grouped, link_bytes):
            break
    clusters = sorted((m for m in grouped if isinstance(m, Cluster)),
                      key=lambda c: len(c.points), reverse=True)
    _spread(clusters)
    return clusters + [m for m in grouped if not isinstance(m, Cluster)]


def project(latitude: float, longitude: float) -> tuple[float, float]:
    """Equirectangular: (x, y) in the SVG's pixels, north up, 180°W at the left edge."""
    return round((longitude + 180) * SCALE, 2), round((90 - latitude) * SCALE, 2)


def drawable(point: tuple[float, float, str] | None) -> bool:
    return point is not None and point[2] not in NOT_DRAWN


@cache
def outlines() -> dict[str, str]:
    """{"land": path d, "borders": path d} in this projection, read once on first use."""
    text = resources.files(__package__).joinpath(OUTLINES).read_text(encoding="utf-8")
    return dict(line.split(" ", 1) for line in text.splitlines()
                if line and not line.startswith("#"))


def _element(parent: ET.Element, tag: str, **attributes) -> ET.Element:
    import xml.etree.ElementTree as ET  # imported on use: only a hub's map needs it (idle memory)

    return ET.SubElement(parent, tag, {k.replace("_", "-"): str(v) for k, v in attributes.items()})


def _background(svg: ET.Element) -> None:
    """Graticule, land and borders: decorative, hidden from screen readers."""
    under = _element(svg, "g", aria_hidden="true")
    grid = _element(under, "g", stroke=GRID, stroke_width="0.5", fill="none")
    for lon in range(-180, 181, GRATICULE_STEP):
        x = project(0, lon)[0]
        _element(grid, "line", x1=x, y1=0, x2=x, y2=HEIGHT)
    for lat in range(-90, 91, GRATICULE_STEP):
        y = project(lat, 0)[1]
        _element(grid, "line", x1=0, y1=y, x2=WIDTH, y2=y,
                 stroke_width="1" if lat == 0 else "0.5")
    shapes = outlines()
    _element(under, "path", d=shapes["land"], fill=LAND, stroke=COAST, stroke_width="0.5",
             stroke_linejoin="round")
    _element(under, "path", d=shapes["borders"], fill="none", stroke=BORDER,
             stroke_width="0.6", stroke_linejoin="round")


def render(points: list[MapPoint], label: str,
           cluster_title: Callable[[int], str] = lambda n: f"{n} projects",
           cluster_href: Callable[[str], str] | None = None) -> str:
    """The <svg> element as text, to inline in a page or serve as image/svg+xml.

    cluster_title names a counted circle; cluster_href(country) links one whose projects all
    share a country (to the directory filtered by it).
    """
    import xml.etree.ElementTree as ET  # see above

    svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {WIDTH} {HEIGHT}",
                             "width": "100%", "role": "group", "aria-label": label,
                             "style": f"max-width:{WIDTH}px;min-width:{MIN_WIDTH}px;height:auto;"
                                      f"background:{SEA}"})
    _background(svg)
    dots = _element(svg, "g", fill=MARK, stroke="#fff", stroke_width="1")
    counts = _element(svg, "g", fill="#fff", font_size="9", font_weight="bold",
                      font_family="sans-serif", text_anchor="middle", pointer_events="none",
                      aria_hidden="true")
    link_bytes = len(cluster_href("XX").encode()) if cluster_href else 0
    for mark in marks(points, link_bytes):
        if isinstance(mark, Cluster):
            x, y = mark.xy
            country = mark.country
            href = cluster_href(country) if cluster_href and country else None
            parent = _element(dots, "a", href=href) if href else _element(dots, "g")
            title = _element(parent, "title")
            title.text = cluster_title(len(mark.points))
            _element(parent, "circle", cx=x, cy=y, r=radius(len(mark.points)),
                     fill_opacity="0.85")
            # The count, readable without hovering; drawn above every circle so none hides it.
            text = _element(counts, "text", x=x, y=round(y + 3.2, 2))
            text.text = str(len(mark.points))
            continue
        x, y = project(mark.latitude, mark.longitude)
        link = _element(dots, "a", href=mark.href)
        title = _element(link, "title")
        title.text = _title(mark)
        _element(link, "circle", cx=x, cy=y, r=4)
    return ET.tostring(svg, encoding="unicode")
