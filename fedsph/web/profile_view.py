"""A project's profile as its page shows it: vocabulary labels in the visitor's language,
translations picked, and the location rounded to what visitors may see."""

from __future__ import annotations

from fedsph.core.vocab import label
from fedsph.federation.activitystreams import as_list
from fedsph.models import Actor
from fedsph.projects.profile import public_location as rounded_location
from fedsph.web.languages import country_name, language_name, translated
from fedsph.web.render import osm_url

# The OpenStreetMap zoom that matches each location precision's grid.
PRECISION_ZOOM = {"exact": 17, "neighbourhood": 14, "city": 11, "country": 5}


def public_location(location: dict | None, exact_allowed: bool) -> dict | None:
    """Name, coordinates and an OpenStreetMap link; rounded to the chosen precision for visitors.

    (profile.py already stores non-exact locations rounded; rounding here again means nothing
    stored earlier or received from another node can show more than its precision allows.)
    """
    if not isinstance(location, dict):
        return None
    precision = location.get("precision") or "exact"
    shown = {"name": location.get("name"), "precision": precision}
    lat, lon = location.get("latitude"), location.get("longitude")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        if not exact_allowed:
            rounded = rounded_location(location)
            lat, lon = rounded["latitude"], rounded["longitude"]
        zoom = PRECISION_ZOOM["exact"] if exact_allowed else PRECISION_ZOOM.get(precision, 5)
        shown.update(latitude=lat, longitude=lon, osm=osm_url(lat, lon, zoom))
    return shown if shown.get("name") or "osm" in shown else None


def _labels(field_name: str, values, lang: str) -> list[str]:
    return [label(field_name, slug, lang) for slug in as_list(values) if isinstance(slug, str)]


def profile_view(actor: Actor, lang: str, exact_allowed: bool) -> dict:
    """The profile's fields ready to print: vocabulary labels in `lang`, translations picked."""
    p = actor.profile if isinstance(actor.profile, dict) else {}
    description, description_lang = translated(p.get("description_map"), lang, None)
    history = [h for h in as_list(p.get("stage_history")) if isinstance(h, dict)]
    view = {
        "description": description, "description_lang": description_lang,
        "stage": label("stage", p["stage"], lang) if p.get("stage") else None,
        # Earlier stages only: the newest entry is the current stage, shown as "since".
        "stage_history": [(label("stage", h.get("stage"), lang), h.get("date"))
                          for h in history[:-1] if h.get("stage")],
        "stage_since": history[-1].get("date") if history
        and history[-1].get("stage") == p.get("stage") else None,
        "approach": _labels("approach", p.get("approach"), lang),
        "tenure": _labels("tenure", p.get("tenure"), lang),
        "financing": _labels("financing", p.get("financing"), lang),
        "themes": _labels("themes", p.get("themes"), lang),
        "settlement_type": (label("settlement_type", p["settlement_type"], lang)
                            if p.get("settlement_type") else None),
        "region": label("region", p["region"], lang) if p.get("region") else None,
        "country": country_name(p["country"], lang) if p.get("country") else None,
        "languages": [language_name(tag) for tag in as_list(p.get("languages"))
                      if isinstance(tag, str)],
        "partners": [{"name": x.get("name"), "url": x.get("url"),
                      "role": label("partner_role", x["role"], lang) if x.get("role") else None}
                     for x in as_list(p.get("partners")) if isinstance(x, dict) and x.get("name")],
        "links": [{"url": x["url"], "title": x.get("title") or x["url"],
                   "kind": label("link_kind", x["kind"], lang) if x.get("kind") else None}
                  for x in as_list(p.get("links")) if isinstance(x, dict) and x.get("url")],
        "location": public_location(p.get("location"), exact_allowed),
    }
    for key in ("households", "inhabitants"):
        value = p.get(key)
        view[key] = ((value.get("value"), value.get("as_of")) if isinstance(value, dict)
                     and value.get("value") is not None else None)
    for key in ("homes_completed", "homes_planned", "start_year", "completion_year"):
        view[key] = p.get(key)
    if view["location"]:
        view["location"]["precision_label"] = label(
            "location_precision", view["location"]["precision"], lang)
    return view
