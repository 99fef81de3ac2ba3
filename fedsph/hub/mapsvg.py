"""The hub's map as server-rendered SVG: no tile server, no JavaScript, nothing third-party.

An equirectangular projection (longitude and latitude as x and y) with a graticule. Each point
is a link to the project. Points are drawn only from the coordinates each project published,
rounded again to its precision (directory.public_point); "country" precision places a project
only somewhere in a country, so those are listed beside the map rather than drawn as a point.

A big hub's map stays small: past MAX_MARKS points, the points of one grid cell are drawn as one
circle with their count, the cells as small as keeps the marks under MAX_MARKS (2000 projects
would otherwise be a 300 KB page, on mobile data).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

SVG_NS = "http://www.w3.org/2000/svg"
SCALE = 2  # pixels per degree: 720 x 360
WIDTH, HEIGHT = 360 * SCALE, 180 * SCALE
GRATICULE_STEP = 30
NOT_DRAWN = ("country",)
MAX_MARKS = 200
CELL_SIZES = (1, 2, 5, 10, 15, 30, 60)  # degrees, tried in turn


@dataclass
class MapPoint:
    name: str
    href: str
    latitude: float
    longitude: float
    country: str | None = None


@dataclass
class Cluster:
    """Several projects near each other, drawn as one counted circle at their centre."""

    points: list[MapPoint] = field(default_factory=list)

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


def marks(points: list[MapPoint]) -> list[MapPoint | Cluster]:
    """The points as they are, or grouped by grid cell when there are too many to draw."""
    if len(points) <= MAX_MARKS:
        return list(points)
    for size in CELL_SIZES:
        cells: dict[tuple[int, int], Cluster] = {}
        for point in points:
            key = (math.floor(point.latitude / size), math.floor(point.longitude / size))
            cells.setdefault(key, Cluster()).points.append(point)
        if len(cells) <= MAX_MARKS:
            break
    return [c.points[0] if len(c.points) == 1 else c for c in cells.values()]


def project(latitude: float, longitude: float) -> tuple[float, float]:
    """Equirectangular: (x, y) in the SVG's pixels, north up, 180°W at the left edge."""
    return round((longitude + 180) * SCALE, 2), round((90 - latitude) * SCALE, 2)


def drawable(point: tuple[float, float, str] | None) -> bool:
    return point is not None and point[2] not in NOT_DRAWN


def _element(parent: ET.Element, tag: str, **attributes) -> ET.Element:
    return ET.SubElement(parent, tag, {k.replace("_", "-"): str(v) for k, v in attributes.items()})


def render(points: list[MapPoint], label: str,
           cluster_title: Callable[[int], str] = lambda n: f"{n} projects",
           cluster_href: Callable[[str], str] | None = None) -> str:
    """The <svg> element as text, to inline in a page or serve as image/svg+xml.

    cluster_title names a counted circle; cluster_href(country) links one whose projects all
    share a country (to the directory filtered by it).
    """
    svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {WIDTH} {HEIGHT}",
                             "width": "100%", "role": "group", "aria-label": label,
                             "style": "max-width:720px;background:#eef4f8"})
    grid = _element(svg, "g", stroke="#9db4c8", stroke_width="0.5", fill="none",
                    aria_hidden="true")
    for lon in range(-180, 181, GRATICULE_STEP):
        x = project(0, lon)[0]
        _element(grid, "line", x1=x, y1=0, x2=x, y2=HEIGHT)
    for lat in range(-90, 91, GRATICULE_STEP):
        y = project(lat, 0)[1]
        _element(grid, "line", x1=0, y1=y, x2=WIDTH, y2=y,
                 stroke_width="1" if lat == 0 else "0.5")
    dots = _element(svg, "g", fill="#a00000", stroke="#fff", stroke_width="1")
    for mark in marks(points):
        x, y = project(mark.latitude, mark.longitude)
        if isinstance(mark, Cluster):
            country = mark.country
            href = cluster_href(country) if cluster_href and country else None
            parent = _element(dots, "a", href=href) if href else _element(dots, "g")
            title = _element(parent, "title")
            title.text = cluster_title(len(mark.points))
            _element(parent, "circle", cx=x, cy=y, r=round(4 + 2 * math.sqrt(len(mark.points)), 1))
            continue
        link = _element(dots, "a", href=mark.href)
        title = _element(link, "title")
        title.text = f"{mark.name} ({mark.latitude}, {mark.longitude})"
        _element(link, "circle", cx=x, cy=y, r=4)
    return ET.tostring(svg, encoding="unicode")
