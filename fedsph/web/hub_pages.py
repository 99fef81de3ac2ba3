"""The hub's public pages (directory, map, counts, feed) and its exports (Atom, GeoJSON, CSV).

Every page and export reads the same filters from the URL (fedsph.hub.directory.parse_filters),
so a view can be shared as a link and its exports hold exactly what it shows. A node that is no
hub answers 404 on all of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson
from aiohttp import web

from fedsph.core.vocab import label
from fedsph.errors import BadRequest, NotFound
from fedsph.hub import directory, exports, mapsvg
from fedsph.i18n import N_, get_translations
from fedsph.models import Actor
from fedsph.projects.feeds import ATOM_CONTENT_TYPE
from fedsph.web.hrefs import page_href
from fedsph.web.keys import READERS, SETTINGS, URLS
from fedsph.web.languages import actor_texts, country_name, language_name, visitor_lang
from fedsph.web.params import page_number
from fedsph.web.post_views import post_views
from fedsph.web.render import error_message, html_response

DIRECTORY_PAGE_SIZE = 50
FEED_PAGE_SIZE = 20
BESIDE_NAMES = 40  # projects listed by name under the map before they are counted by country
ATOM_ENTRIES = 50
# URL filter -> vocabulary of its values (country and language are named by Babel instead).
FILTER_VOCAB = {"region": "region", "stage": "stage", "approach": "approach",
                "tenure": "tenure", "theme": "themes"}
CACHE = {"Cache-Control": "public, max-age=300"}


@dataclass
class View:
    hub: Actor
    members: list[Actor]
    filters: directory.Filters
    projects: list[Actor]  # the members this view shows

    @property
    def query(self) -> str:
        items = self.filters.query_items()
        return "?" + urlencode(items) if items else ""


async def load_view(request: web.Request) -> View:
    try:
        filters = directory.parse_filters(request.query)
    except directory.FilterError as exc:
        raise BadRequest(error_message(request, exc)) from None
    async with request.app[READERS]() as db:
        hub, members = await directory.hub_and_members(db)
    if hub is None:
        raise NotFound(N_("This node is not a hub."))
    return View(hub, members, filters, directory.select_projects(members, filters))


def _page_number(request: web.Request) -> int:
    return page_number(request, message=N_("The page number must be a positive number."))


def value_text(name: str, value: str, lang: str) -> str:
    if name == "country":
        return country_name(value, lang)
    if name == "language":
        return language_name(value)
    return label(FILTER_VOCAB[name], value, lang)


def filter_options(view: View, lang: str) -> list[dict]:
    """The filter form: per filter, the values members have (with counts) plus those chosen."""
    form = []
    for name, found in directory.facets(view.members).items():
        chosen = view.filters.selected(name)
        counts = dict(found)
        values = sorted(set(counts) | set(chosen), key=lambda v: value_text(name, v, lang))
        form.append({"name": name, "multiple": len(chosen) > 1, "options": [
            {"value": v, "text": value_text(name, v, lang), "count": counts.get(v, 0),
             "selected": v in chosen} for v in values]})
    return form


def card(actor: Actor, lang: str) -> dict:
    profile = actor.profile if isinstance(actor.profile, dict) else {}
    name, name_lang, _summary, _summary_lang = actor_texts(actor, lang)
    return {
        "name": name, "name_lang": name_lang, "href": page_href(actor),
        "country": country_name(profile["country"], lang) if isinstance(
            profile.get("country"), str) else None,
        "stage": label("stage", profile["stage"], lang) if isinstance(
            profile.get("stage"), str) else None,
        "approach": [label("approach", a, lang) for a in profile.get("approach") or []
                     if isinstance(a, str)],
    }


def _render(request: web.Request, template: str, view: View, **context) -> web.Response:
    lang = visitor_lang(request)
    hub_name = actor_texts(view.hub, lang)[0]
    return html_response(request, template, hub_name=hub_name, query=view.query,
                         filtered=bool(view.filters), total=len(view.members),
                         shown=len(view.projects), q=view.filters.q,
                         filter_form=filter_options(view, lang), **context)


# -- pages --------------------------------------------------------------------------------------

async def directory_page(request: web.Request) -> web.Response:
    view, lang = await load_view(request), visitor_lang(request)
    page = _page_number(request)
    start = (page - 1) * DIRECTORY_PAGE_SIZE
    shown = view.projects[start:start + DIRECTORY_PAGE_SIZE]
    items = view.filters.query_items()

    def page_link(number: int) -> str:
        return "/hub?" + urlencode([*items, ("page", number)])

    return _render(request, "hub.html", view, cards=[card(a, lang) for a in shown],
                   next_page=page_link(page + 1) if start + DIRECTORY_PAGE_SIZE < len(
                       view.projects) else None,
                   prev_page=page_link(page - 1) if page > 1 else None)


def map_points(view: View, lang: str) -> tuple[list[mapsvg.MapPoint], list[dict]]:
    """Points to draw, and the projects listed beside the map (country precision, no place)."""
    points, beside = [], []
    for actor in view.projects:
        point = directory.public_point(actor)
        country = (actor.profile or {}).get("country") if isinstance(actor.profile, dict) \
            else None
        country = country if isinstance(country, str) else None
        if mapsvg.drawable(point):
            points.append(mapsvg.MapPoint(actor_texts(actor, lang)[0], page_href(actor),
                                          point[0], point[1], country))
        else:
            beside.append({**card(actor, lang), "country_code": country})
    return points, beside


def _country_view(view: View, base: str = ""):
    """The directory of one country, with the view's other filters."""
    items = [(k, v) for k, v in view.filters.query_items() if k != "country"]
    return lambda country: f"{base}/hub?" + urlencode([*items, ("country", country)])


def _render_map(view: View, points: list[mapsvg.MapPoint], lang: str, base: str = "") -> str:
    """The SVG, in the visitor's language; a counted circle of one country links to the
    directory filtered by that country (with the view's other filters)."""
    translations = get_translations(lang)
    return mapsvg.render(
        points, translations.gettext("Map of member projects"),
        cluster_title=lambda n: translations.ngettext(
            "%(num)d project here", "%(num)d projects here", n) % {"num": n},
        cluster_href=_country_view(view, base))


async def map_page(request: web.Request) -> web.Response:
    view, lang = await load_view(request), visitor_lang(request)
    points, beside = map_points(view, lang)
    # Thousands of names would swamp the page: past BESIDE_NAMES, a count per country (linked
    # to that country's directory, the BESIDE_NAMES biggest) and the first names of those that
    # name no country; the rest as one count.
    by_country, more = [], 0
    if len(beside) > BESIDE_NAMES:
        href, counts = _country_view(view), Counter(c["country_code"] for c in beside)
        names = {c["country_code"]: c["country"] for c in beside}
        by_country = [{"name": names[code], "href": href(code), "count": n}
                      for code, n in counts.most_common() if code]
        beside = [c for c in beside if not c["country_code"]]
        more = sum(c["count"] for c in by_country[BESIDE_NAMES:]) \
            + max(0, len(beside) - BESIDE_NAMES)
        by_country, beside = by_country[:BESIDE_NAMES], beside[:BESIDE_NAMES]
    return _render(request, "hub_map.html", view, svg=_render_map(view, points, lang),
                   drawn=len(points), beside=beside, beside_countries=by_country,
                   beside_more=more)


async def map_svg(request: web.Request) -> web.Response:
    view, lang = await load_view(request), visitor_lang(request)
    points, _beside = map_points(view, lang)
    base = request.app[SETTINGS].base_url
    # A standalone file is read elsewhere: absolute links.
    for point in points:
        point.href = base + point.href if point.href.startswith("/") else point.href
    return web.Response(text=_render_map(view, points, lang, base),
                        content_type="image/svg+xml", headers=CACHE)


async def stats_page(request: web.Request) -> web.Response:
    view, lang = await load_view(request), visitor_lang(request)
    counted = directory.stats(view.projects)
    return _render(
        request, "hub_stats.html", view, stats=counted,
        by_stage=[(label("stage", s, lang), n) for s, n in counted.by_stage],
        by_approach=[(label("approach", a, lang), n) for a, n in counted.by_approach],
        by_country=[(country_name(c, lang), n) for c, n in counted.by_country])


async def feed_page(request: web.Request) -> web.Response:
    view, lang = await load_view(request), visitor_lang(request)
    page = _page_number(request)
    async with request.app[READERS]() as db:
        rows = await directory.member_posts(db, [a.id for a in view.projects], page,
                                              FEED_PAGE_SIZE)
        posts = await post_views(db, rows[:FEED_PAGE_SIZE], lang, request.app[URLS])
    items = view.filters.query_items()

    def page_link(number: int) -> str:
        return "/hub/feed?" + urlencode([*items, ("page", number)])

    return _render(request, "hub_feed.html", view, feed=posts, visitor_lang=lang,
                   next_page=page_link(page + 1) if len(rows) > FEED_PAGE_SIZE else None,
                   prev_page=page_link(page - 1) if page > 1 else None)


# -- exports ------------------------------------------------------------------------------------

async def feed_atom(request: web.Request) -> web.Response:
    view = await load_view(request)
    async with request.app[READERS]() as db:
        rows = await directory.member_posts(db, [a.id for a in view.projects], 1, ATOM_ENTRIES)
    feed_url = request.app[SETTINGS].base_url + "/hub/feed.atom" + view.query
    body = exports.hub_atom(view.hub, [obj for obj, _ in rows[:ATOM_ENTRIES]], feed_url)
    return web.Response(body=body, headers={"Content-Type": ATOM_CONTENT_TYPE, **CACHE})


async def directory_geojson(request: web.Request) -> web.Response:
    view = await load_view(request)
    return web.Response(body=orjson.dumps(exports.geojson(view.projects)),
                        headers={"Content-Type": exports.GEOJSON_CONTENT_TYPE, **CACHE})


async def directory_csv(request: web.Request) -> web.Response:
    view = await load_view(request)
    return web.Response(body=exports.csv_text(view.projects).encode("utf-8"),
                        headers={"Content-Type": exports.CSV_CONTENT_TYPE, **CACHE,
                                 "Content-Disposition": 'attachment; filename="directory.csv"'})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/hub", directory_page)
    app.router.add_get("/hub/map", map_page)
    app.router.add_get("/hub/map.svg", map_svg)
    app.router.add_get("/hub/stats", stats_page)
    app.router.add_get("/hub/feed", feed_page)
    app.router.add_get("/hub/feed.atom", feed_atom)
    app.router.add_get("/hub/directory.geojson", directory_geojson)
    app.router.add_get("/hub/directory.csv", directory_csv)
