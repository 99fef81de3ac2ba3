"""The hub's public pages (directory, map, counts, feed) and its exports (Atom, GeoJSON, CSV).

Every page and export reads the same filters from the URL (fedsph.hub.directory.parse_filters),
so a view can be shared as a link and its exports hold exactly what it shows. A node that is no
hub answers 404 on all of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from cachetools import LRUCache

from fedsph.core.vocab import label
from fedsph.errors import BadRequest, NotFound
from fedsph.hub import directory, directory_query, exports, mapsvg
from fedsph.hub.directory_index import ENTRY
from fedsph.hub.membership import local_hub
from fedsph.i18n import N_, get_translations
from fedsph.models import Actor
from fedsph.projects.feeds import ATOM_CONTENT_TYPE
from fedsph.web.hub_cards import card, card_items, entry_href, entry_name
from fedsph.web.keys import (
    FACET_CACHE,
    HUB_GENERATION,
    HUB_PAGE_CACHE,
    QUICK_GENERATION,
    READERS,
    SETTINGS,
    URLS,
    USER,
)
from fedsph.web.languages import (
    actor_texts,
    country_name,
    language_name,
    visitor_lang,
)
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
# Rendered directory, map and counts pages kept per process, by the index's generation: a page
# is the same for every visitor who is not logged in, and rendering 50 cards and the filter form
# costs far more than the query. Bounded in bytes (many distinct URLs only push old ones out):
# FEDSPH_HUB_PAGE_CACHE_MB.
KEPT_HEADERS = ("Content-Type", "Content-Language", "Vary", "Cache-Control")


@dataclass
class View:
    hub: Actor
    filters: directory.Filters
    query_view: directory_query.View  # the SQL of this view
    total: int  # members listed (blocked ones left out)
    facets: dict[str, list[tuple[str, int]]]  # per filter: values among all members, counts
    shown: int | None = None  # projects this view shows, when a page needs the number

    @property
    def query(self) -> str:
        items = self.filters.query_items()
        return "?" + urlencode(items) if items else ""


async def _member_facets(request: web.Request, db, hub_id: int) -> tuple[int, dict]:
    """The members' number and facet counts, kept per process until the index's generation
    moves (any process's change of a listed project, membership or block moves it)."""
    generation = request.get(HUB_GENERATION)  # read by the page cache for this request
    if generation is None:
        generation = await directory_query.generation(db)
    cache = request.app[FACET_CACHE]
    held = cache.get(hub_id)
    if held is None or held[0] != generation:
        held = (generation, *await directory_query.member_facets(db, hub_id))
        cache.clear()  # one hub per node: nothing else worth keeping
        cache[hub_id] = held
    return held[1], held[2]


async def load_view(request: web.Request, db, count_shown: bool = True) -> View:
    try:
        filters = directory.parse_filters(request.query)
    except directory.FilterError as exc:
        raise BadRequest(error_message(request, exc)) from None
    hub = await local_hub(db)
    if hub is None:
        raise NotFound(N_("This node is not a hub."))
    query_view = directory_query.View(hub.id, filters, directory_query.is_sqlite(db))
    await directory_query.plan_each_view(db)
    total, facets = await _member_facets(request, db, hub.id)
    view = View(hub, filters, query_view, total, facets)
    if count_shown:
        view.shown = await directory_query.count(db, query_view) if filters else total
    return view


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
    for name, found in view.facets.items():
        chosen = view.filters.selected(name)
        counts = dict(found)
        values = sorted(set(counts) | set(chosen), key=lambda v: value_text(name, v, lang))
        form.append({"name": name, "multiple": len(chosen) > 1, "options": [
            {"value": v, "text": value_text(name, v, lang), "count": counts.get(v, 0),
             "selected": v in chosen} for v in values]})
    return form


def _render(request: web.Request, template: str, view: View, **context) -> web.Response:
    lang = visitor_lang(request)
    hub_name = actor_texts(view.hub, lang)[0]
    return html_response(request, template, hub_name=hub_name, query=view.query,
                         filtered=bool(view.filters), total=view.total,
                         shown=view.shown, q=view.filters.q,
                         filter_form=filter_options(view, lang), **context)


# -- pages --------------------------------------------------------------------------------------

async def directory_page(request: web.Request) -> web.Response:
    lang, page = visitor_lang(request), _page_number(request)
    async with request.app[READERS]() as db:
        view = await load_view(request, db)
        rows = await directory_query.page(db, view.query_view, page, DIRECTORY_PAGE_SIZE)
    items = view.filters.query_items()

    def page_link(number: int) -> str:
        return "/hub?" + urlencode([*items, ("page", number)])

    return _render(request, "hub.html", view,
                   cards=card_items(rows[:DIRECTORY_PAGE_SIZE], lang),
                   next_page=page_link(page + 1) if len(rows) > DIRECTORY_PAGE_SIZE else None,
                   prev_page=page_link(page - 1) if page > 1 else None)


MAP_COLUMNS = ("name", "name_map", "uri", "local", "country", "latitude", "longitude",
               "precision", "stage", "lists")


async def map_entries(request: web.Request) -> tuple[View, list]:
    """The view and its projects' index rows, only the columns the map needs."""
    async with request.app[READERS]() as db:
        view = await load_view(request, db, count_shown=False)
        columns = [ENTRY.c[c] for c in MAP_COLUMNS]
        rows = list(await db.execute(view.query_view.rows(*columns)))
    view.shown = len(rows)  # every match: counting them again would find them twice
    return view, rows


def map_points(entries: list, lang: str) -> tuple[list[mapsvg.MapPoint], list[dict]]:
    """Points to draw, and the projects listed beside the map (country precision, no place)."""
    points, beside = [], []
    for entry in entries:
        point = None if entry.latitude is None else (entry.latitude, entry.longitude,
                                                      entry.precision)
        if mapsvg.drawable(point):
            points.append(mapsvg.MapPoint(entry_name(entry, lang)[0], entry_href(entry),
                                          point[0], point[1], entry.country))
        else:  # with its code, so the map page can count them by country
            beside.append({**card(entry, lang), "country_code": entry.country})
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
    lang = visitor_lang(request)
    view, entries = await map_entries(request)
    points, beside = map_points(entries, lang)
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
    lang = visitor_lang(request)
    view, entries = await map_entries(request)
    points, _beside = map_points(entries, lang)
    base = request.app[SETTINGS].base_url
    # A standalone file is read elsewhere: absolute links.
    for point in points:
        point.href = base + point.href if point.href.startswith("/") else point.href
    return web.Response(text=_render_map(view, points, lang, base),
                        content_type="image/svg+xml", headers=CACHE)


async def stats_page(request: web.Request) -> web.Response:
    lang = visitor_lang(request)
    async with request.app[READERS]() as db:
        view = await load_view(request, db, count_shown=False)
        counted = await directory_query.stats(db, view.query_view)
    view.shown = counted.projects  # the view's count, found with the others
    return _render(
        request, "hub_stats.html", view, stats=counted,
        by_stage=[(label("stage", s, lang), n) for s, n in counted.by_stage],
        by_approach=[(label("approach", a, lang), n) for a, n in counted.by_approach],
        by_country=[(country_name(c, lang), n) for c, n in counted.by_country])


async def feed_page(request: web.Request) -> web.Response:
    lang, page = visitor_lang(request), _page_number(request)
    async with request.app[READERS]() as db:
        view = await load_view(request, db)
        rows = await directory.member_posts(db, view.query_view.ids(), page, FEED_PAGE_SIZE)
        posts = await post_views(db, rows[:FEED_PAGE_SIZE], lang, request.app[URLS])
    items = view.filters.query_items()

    def page_link(number: int) -> str:
        return "/hub/feed?" + urlencode([*items, ("page", number)])

    return _render(request, "hub_feed.html", view, feed=posts, visitor_lang=lang,
                   next_page=page_link(page + 1) if len(rows) > FEED_PAGE_SIZE else None,
                   prev_page=page_link(page - 1) if page > 1 else None)


# -- exports ------------------------------------------------------------------------------------

async def feed_atom(request: web.Request) -> web.Response:
    async with request.app[READERS]() as db:
        view = await load_view(request, db, count_shown=False)
        rows = await directory.member_posts(db, view.query_view.ids(), 1, ATOM_ENTRIES)
    feed_url = request.app[SETTINGS].base_url + "/hub/feed.atom" + view.query
    body = exports.hub_atom(view.hub, [obj for obj, _ in rows[:ATOM_ENTRIES]], feed_url)
    return web.Response(body=body, headers={"Content-Type": ATOM_CONTENT_TYPE, **CACHE})


async def _stream(request: web.Request, headers: dict, column: str, start: bytes, piece,
                  end: bytes):
    """Send an export as its rows are read: `piece(values, first)` gives the bytes of a batch
    of the index's precomputed `column`.
    The view is checked (400, 404) before anything is sent."""
    async with request.app[READERS]() as db:
        view = await load_view(request, db, count_shown=False)
        response = web.StreamResponse(headers={**headers, **CACHE})
        response.enable_compression()
        await response.prepare(request)
        await response.write(start)
        first = True
        async for rows in directory_query.stream_column(db, view.query_view, column):
            body, first = piece(rows, first)
            if body:
                await response.write(body)
    await response.write(end)
    await response.write_eof()
    return response


async def directory_geojson(request: web.Request) -> web.StreamResponse:
    return await _stream(request, {"Content-Type": exports.GEOJSON_CONTENT_TYPE}, "feature",
                         exports.GEOJSON_START, exports.geojson_chunk, exports.GEOJSON_END)


async def directory_csv(request: web.Request) -> web.StreamResponse:
    def piece(lines: list[str], first: bool) -> tuple[bytes, bool]:
        return "".join(lines).encode("utf-8"), first

    header = exports.csv_chunk([], header=True).encode("utf-8")
    return await _stream(request, {"Content-Type": exports.CSV_CONTENT_TYPE,
                                   "Content-Disposition": 'attachment; filename="directory.csv"'},
                         "csv_row", header, piece, b"")


async def _generation(request: web.Request) -> int:
    """The index's generation, read on this thread on SQLite (a cache hit's one statement)."""
    quick = request.app.get(QUICK_GENERATION)
    held = quick.value() if quick is not None else None
    if held is not None:
        return held
    async with request.app[READERS]() as db:
        return await directory_query.generation(db)


def canonical_query(request: web.Request, paged: bool) -> tuple | None:
    """The URL's view as parameters: its filters as parsed and normalised (in their stable
    order; parameters the page does not know are dropped), then the page number where the page
    has pages and it is not the first. None when the URL is refused (a 400, never cached)."""
    try:
        filters = directory.parse_filters(request.query)
        page = _page_number(request) if paged else 1
    except (directory.FilterError, BadRequest):
        return None
    return (*filters.query_items(), *([("page", str(page))] if page > 1 else []))


def _key_size(key: tuple) -> int:
    """About the bytes a key holds (a search text may be a few hundred characters)."""
    return len(repr(key))


def cached(handler, paged: bool = False):
    """The handler's answer from the page cache when the index has not moved since it was
    rendered for this view and language; only for visitors who are not logged in (a member's
    page carries their name and a CSRF token).

    Keyed by the view, not the raw query string: with `?x=<random>` or the parameters reordered
    anyone could make a fresh entry per request and push every other page out. The page is
    rendered from the canonical query (the language links repeat the query), so the one entry
    is right for every spelling of the view."""
    async def serve(request: web.Request) -> web.StreamResponse:
        if request.get(USER) is not None:
            return await handler(request)
        generation = await _generation(request)
        request[HUB_GENERATION] = generation
        query = canonical_query(request, paged)
        if query is None:
            return await handler(request)
        key = (generation, request.path, query, visitor_lang(request))
        cache = request.app[HUB_PAGE_CACHE]
        held = cache.get(key)
        if held is not None:
            return web.Response(body=held[0], headers=held[1])
        response = await handler(request.clone(rel_url=request.rel_url.with_query(query)))
        if response.status == 200 and isinstance(response.body, bytes):
            headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
            held = (response.body, headers, _key_size(key))
            if cache.getsizeof(held) <= cache.maxsize:  # else LRUCache raises ValueError
                cache[key] = held
        return response

    return serve


def add_routes(app: web.Application) -> None:
    app[FACET_CACHE] = {}
    # An entry's size is its body and its key (LRUCache sizes values only: the key's size is
    # kept beside the body).
    app[HUB_PAGE_CACHE] = LRUCache(app[SETTINGS].hub_page_cache_mb * 1024 * 1024,
                                   getsizeof=lambda held: len(held[0]) + held[2])
    app.router.add_get("/hub", cached(directory_page, paged=True))
    app.router.add_get("/hub/map", cached(map_page))
    app.router.add_get("/hub/map.svg", cached(map_svg))
    app.router.add_get("/hub/stats", cached(stats_page))
    app.router.add_get("/hub/feed", feed_page)
    app.router.add_get("/hub/feed.atom", feed_atom)
    app.router.add_get("/hub/directory.geojson", directory_geojson)
    app.router.add_get("/hub/directory.csv", directory_csv)
