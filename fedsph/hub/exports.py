"""The directory as data: CSV for spreadsheets, GeoJSON for GIS tools, Atom for feed readers.

Each export takes the index rows of the projects one view selected (directory_query.View), so
a filtered page and its exports always agree; GeoJSON and CSV are written in pieces, as the rows
are read, so an export of any size is sent in bounded memory. Values are vocabulary slugs, not labels: they are stable
across languages and what other fedsph nodes and tools understand.
"""

from __future__ import annotations

import csv
import io

import orjson

from fedsph.models import Actor, Object
from fedsph.projects.feeds import build_atom

GEOJSON_CONTENT_TYPE = "application/geo+json"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
CSV_COLUMNS = ("name", "url", "country", "region", "stage", "approach", "tenure", "themes",
               "languages", "homes_completed", "homes_planned", "latitude", "longitude",
               "location_precision")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def properties(entry) -> dict:
    """What the exports say about a project (coordinates apart), from its directory index row
    (fedsph/hub/directory_index.entry_values)."""
    lists = entry.lists if isinstance(entry.lists, dict) else {}
    return {
        "name": entry.name,
        "url": entry.url,
        "id": entry.uri,
        "country": entry.country,
        "region": entry.region,
        "stage": entry.stage,
        "approach": lists.get("approach") or [],
        "tenure": lists.get("tenure") or [],
        "themes": lists.get("themes") or [],
        "languages": lists.get("languages") or [],
        "homes_completed": entry.homes_completed_raw,
        "homes_planned": entry.homes_planned_raw,
    }


# -- GeoJSON (RFC 7946) ------------------------------------------------------------------------------

GEOJSON_START = b'{"type":"FeatureCollection","features":['
GEOJSON_END = b"]}"


def geojson_feature(entry) -> dict | None:
    """A Point Feature; None for a project that published no coordinates (left out)."""
    if entry.latitude is None or entry.longitude is None:
        return None
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [entry.longitude, entry.latitude]},
        "properties": {**properties(entry), "location_precision": entry.precision},
    }


def feature_json(entry) -> str | None:
    """The Feature as JSON text, kept in the index row (None: not in the GeoJSON)."""
    feature = geojson_feature(entry)
    return orjson.dumps(feature).decode() if feature is not None else None


def geojson_chunk(features: list[str | None], first: bool) -> tuple[bytes, bool]:
    """Some rows' Features (feature_json) as a piece of the FeatureCollection's array
    (streamed between GEOJSON_START and GEOJSON_END); returns whether it is still empty."""
    parts = [f for f in features if f]
    if not parts:
        return b"", first
    return ("" if first else ",").encode() + ",".join(parts).encode(), False


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


def csv_chunk(entries: list, header: bool = False) -> str:
    """Rows for some projects (after the header row when asked); lists joined with "; ",
    CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    if header:
        writer.writerow(CSV_COLUMNS)
    for entry in entries:
        row = properties(entry)
        row.update(latitude=entry.latitude, longitude=entry.longitude,
                   location_precision=entry.precision)
        writer.writerow([guard_cell("; ".join(row[c]) if isinstance(row[c], list) else row[c])
                         for c in CSV_COLUMNS])
    return out.getvalue()


# -- Atom -------------------------------------------------------------------------------------------

def hub_atom(hub: Actor, updates: list[Object], feed_url: str) -> bytes:
    """The hub's combined feed: fedsph.projects.feeds builds it, with the hub as the feed's author."""
    return build_atom(hub, updates, feed_url)
