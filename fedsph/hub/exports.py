"""The directory as data: CSV for spreadsheets, GeoJSON for GIS tools, Atom for feed readers.

Each export takes the projects one view selected (directory.select_projects), so a filtered
page and its exports always agree. Values are vocabulary slugs, not labels: they are stable
across languages and what other fedsph nodes and tools understand.
"""

from __future__ import annotations

import csv
import io

from fedsph.federation.activitystreams import as_list
from fedsph.hub.directory import public_point
from fedsph.models import Actor, Object
from fedsph.projects.feeds import build_atom

GEOJSON_CONTENT_TYPE = "application/geo+json"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
CSV_COLUMNS = ("name", "url", "country", "region", "stage", "approach", "tenure", "themes",
               "languages", "homes_completed", "homes_planned", "latitude", "longitude",
               "location_precision")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _profile(actor: Actor) -> dict:
    return actor.profile if isinstance(actor.profile, dict) else {}


def _list(value) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str)]


def _number(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def properties(actor: Actor) -> dict:
    """What the exports say about a project (coordinates apart)."""
    profile = _profile(actor)
    return {
        "name": actor.name or actor.username,
        "url": actor.url or actor.uri,
        "id": actor.uri,
        "country": profile.get("country"),
        "region": profile.get("region"),
        "stage": profile.get("stage"),
        "approach": _list(profile.get("approach")),
        "tenure": _list(profile.get("tenure")),
        "themes": _list(profile.get("themes")),
        "languages": _list(profile.get("languages")),
        "homes_completed": _number(profile.get("homes_completed")),
        "homes_planned": _number(profile.get("homes_planned")),
    }


# -- GeoJSON (RFC 7946) ------------------------------------------------------------------------------

def geojson(actors: list[Actor]) -> dict:
    """A FeatureCollection of Points; projects that published no coordinates are left out."""
    features = []
    for actor in actors:
        point = public_point(actor)
        if point is None:
            continue
        lat, lon, precision = point
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},  # RFC 7946: lon, lat
            "properties": {**properties(actor), "location_precision": precision},
        })
    return {"type": "FeatureCollection", "features": features}


# -- CSV (RFC 4180) ----------------------------------------------------------------------------------

def guard_cell(value) -> str:
    """A cell as text; text that a spreadsheet would run as a formula gets a leading quote.

    Numbers we write ourselves (a negative latitude) are data, not formulas: left alone.
    """
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(actors: list[Actor]) -> str:
    """One row per project under a header row; lists joined with "; ", CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for actor in actors:
        row = properties(actor)
        point = public_point(actor)
        row.update(latitude=point[0] if point else None, longitude=point[1] if point else None,
                   location_precision=point[2] if point else None)
        writer.writerow([guard_cell("; ".join(row[c]) if isinstance(row[c], list) else row[c])
                         for c in CSV_COLUMNS])
    return out.getvalue()


# -- Atom -------------------------------------------------------------------------------------------

def hub_atom(hub: Actor, updates: list[Object], feed_url: str) -> bytes:
    """The hub's combined feed: fedsph.projects.feeds builds it, with the hub as the feed's author."""
    return build_atom(hub, updates, feed_url)
