"""The hub's map as server-rendered SVG: no tile server, no JavaScript, nothing third-party.

An equirectangular projection (longitude and latitude as x and y) with a graticule. Each point
is a link to the project. Points are drawn only from the coordinates each project published,
rounded again to its precision (directory.public_point); "country" precision places a project
only somewhere in a country, so those are listed beside the map rather than drawn as a point.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

SVG_NS = "http://www.w3.org/2000/svg"
SCALE = 2  # pixels per degree: 720 x 360
WIDTH, HEIGHT = 360 * SCALE, 180 * SCALE
GRATICULE_STEP = 30
NOT_DRAWN = ("country",)


@dataclass
class MapPoint:
    name: str
    href: str
    latitude: float
    longitude: float


def project(latitude: float, longitude: float) -> tuple[float, float]:
    """Equirectangular: (x, y) in the SVG's pixels, north up, 180°W at the left edge."""
    return round((longitude + 180) * SCALE, 2), round((90 - latitude) * SCALE, 2)


def drawable(point: tuple[float, float, str] | None) -> bool:
    return point is not None and point[2] not in NOT_DRAWN


def _element(parent: ET.Element, tag: str, **attributes) -> ET.Element:
    return ET.SubElement(parent, tag, {k.replace("_", "-"): str(v) for k, v in attributes.items()})


def render(points: list[MapPoint], label: str) -> str:
    """The <svg> element as text, to inline in a page or serve as image/svg+xml."""
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
    for point in points:
        link = _element(dots, "a", href=point.href)
        x, y = project(point.latitude, point.longitude)
        title = _element(link, "title")
        title.text = f"{point.name} ({point.latitude}, {point.longitude})"
        _element(link, "circle", cx=x, cy=y, r=4)
    return ET.tostring(svg, encoding="unicode")
