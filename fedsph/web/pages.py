"""HTML pages for people: the node home, a project page, an update page, and remote follow.

Views are prepared here (translations picked, vocabulary labels applied, coordinates rounded) so
the templates stay plain markup; every UI string in them goes through `_()`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web
from babel import Locale, UnknownLocaleError
from markupsafe import Markup
from yarl import URL

from fedsph.core.safe_links import http_url
from fedsph.core.sanitize import clean_html
from fedsph.core.vocab import is_valid, label
from fedsph.errors import FetchError, NotFound, UserError
from fedsph.federation.activitystreams import as_list, get_id
from fedsph.federation.actors import get_actor_by_uri
from fedsph.i18n import pick_translation
from fedsph.links.service import link_views
from fedsph.models import Actor, Media, Object
from fedsph.projects import media as media_files
from fedsph.projects import queries
from fedsph.projects.notes import clean_hashtag
from fedsph.projects.profile import public_location as rounded_location
from fedsph.web.keys import LANG, REMOTE, SESSIONS, SETTINGS, URLS, USER
from fedsph.web.params import page_number
from fedsph.web.render import html_response, osm_url

SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"
# The OpenStreetMap zoom that matches each location precision's grid.
PRECISION_ZOOM = {"exact": 17, "neighbourhood": 14, "city": 11, "country": 5}


# -- languages ----------------------------------------------------------------------------------

def visitor_lang(request: web.Request) -> str:
    """The interface language the i18n middleware chose."""
    return request.get(LANG) or "en"


def translated(mapping, lang: str, fallback: str | None,
               fallback_lang: str | None = None) -> tuple[str | None, str | None]:
    """The text in `lang` when translated, else the primary text (see i18n.pick_translation)."""
    return pick_translation(mapping if isinstance(mapping, dict) else None, lang, fallback,
                            fallback_lang)


def language_name(tag: str) -> str:
    """A language's name as its speakers write it ("español"), so a reader recognises their own."""
    try:
        return Locale.parse(tag.replace("-", "_")).get_display_name(tag.replace("-", "_")) or tag
    except (ValueError, UnknownLocaleError):
        return tag


def country_name(code: str, lang: str) -> str:
    try:
        return Locale.parse(lang).territories.get(code.upper(), code)
    except (ValueError, UnknownLocaleError):
        return code


# -- updates --------------------------------------------------------------------------------------

@dataclass
class Image:
    src: str
    alt: str
    width: int | None = None
    height: int | None = None
    srcset: str | None = None


@dataclass
class PostView:
    obj: Object
    author: Actor
    href: str  # where this update is read on this node
    author_href: str
    author_name: str
    title: str | None
    content: str
    lang: str | None
    others: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, name, href)
    kind: str | None = None
    stage_change: str | None = None
    tags: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


def page_href(item: Object | Actor) -> str:
    """Local pages are at their own URI; remote updates and actors through this node's view."""
    if item.local:
        return urlsplit(item.uri).path  # same host: a path keeps the pages small
    kind = "actors" if isinstance(item, Actor) else "objects"
    return f"/remote/{kind}?" + urlencode({"uri": item.uri})


def _with_query(href: str, **params) -> str:
    return href + ("&" if "?" in href else "?") + urlencode(params)


def _number(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def local_images(media: list[Media], urls) -> list[Image]:
    """Our own uploads: the small rendition as src, the others in srcset."""
    return [Image(media_files.src(item, urls), item.alt or "", item.width, item.height,
                  media_files.srcset(item, urls)) for item in media if item.renditions]


def remote_images(attachments) -> list[Image]:
    """Images among an object's attachments as sent (Mastodon sends Document with an image type)."""
    images = []
    for item in as_list(attachments):
        if not isinstance(item, dict):
            continue
        media_type = str(item.get("mediaType") or "")
        if item.get("type") != "Image" and not media_type.startswith("image/"):
            continue
        url = item.get("url")
        src = get_id(url) if not isinstance(url, list) else get_id(next(
            (u for u in url if isinstance(u, dict) and str(u.get("mediaType", "")).startswith("image/")),
            url[0] if url else None))
        if not http_url(src):
            continue
        alt = item.get("name") if isinstance(item.get("name"), str) else ""
        images.append(Image(src, alt, _number(item.get("width")), _number(item.get("height"))))
    return images[:8]


def post_view(obj: Object, author: Actor, lang: str, media: list[Media], urls,
              show: str | None = None) -> PostView:
    content_map = obj.content_map if isinstance(obj.content_map, dict) else {}
    if show and show in content_map:
        content, shown = content_map[show], show
    else:
        content, shown = translated(content_map, lang, obj.content, obj.language)
    title, _title_lang = translated(obj.name_map, shown or lang, obj.name)
    href = page_href(obj)
    others = [(tag, language_name(tag), _with_query(href, show=tag))
              for tag in content_map if tag != shown]
    # Hashtags are links inside the content already (for Mastodon); themes are not.
    tags = [label("themes", tag["name"], lang) for tag in as_list(obj.tags)
            if isinstance(tag, dict) and tag.get("type") == "theme" and isinstance(tag.get("name"), str)]
    if title and content:
        # fedsph repeats the title as a bold first paragraph for Mastodon; here it is the heading.
        content = content.removeprefix(f"<p><strong>{html.escape(title, quote=False)}</strong></p>")
    attachments = obj.attachments if obj.attachments is not None else (obj.document or {}).get("attachment")
    images = local_images(media, urls) if media else remote_images(attachments)
    return PostView(
        obj=obj, author=author, href=href, author_href=page_href(author),
        author_name=translated(author.name_map, lang, author.name or author.username)[0], title=title, content=content or "", lang=shown,
        others=others, kind=label("update_kind", obj.kind, lang) if obj.kind else None,
        stage_change=label("stage", obj.stage_change, lang) if obj.stage_change else None,
        tags=tags, images=images)


async def post_views(db, pairs: list[tuple[Object, Actor]], lang: str, urls) -> list[PostView]:
    media = await queries.media_for(db, [obj.id for obj, _ in pairs if obj.local])
    return [post_view(obj, author, lang, media.get(obj.id, []), urls) for obj, author in pairs]


# -- project profiles -----------------------------------------------------------------------------

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


def _first_key(mapping) -> str | None:
    """The primary language of a nameMap/summaryMap: it comes first."""
    return next(iter(mapping), None) if isinstance(mapping, dict) else None


def actor_texts(actor: Actor, lang: str) -> tuple[str, str | None, Markup | None, str | None]:
    """(name, its language, summary HTML, its language) in the visitor's language when translated."""
    name, name_lang = translated(actor.name_map, lang, actor.name or actor.username,
                                 _first_key(actor.name_map))
    summary, summary_lang = translated(actor.summary_map, lang, actor.summary,
                                       _first_key(actor.summary_map))
    return name, name_lang, Markup(clean_html(summary)) if summary else None, summary_lang


# -- handlers -------------------------------------------------------------------------------------

def _page_number(request: web.Request) -> int:
    return page_number(request)


async def home(request: web.Request) -> web.Response:
    lang, urls = visitor_lang(request), request.app[URLS]
    async with request.app[SESSIONS]() as db:
        projects = await queries.local_projects(db)
        feed = await post_views(db, await queries.node_feed(db), lang, urls)
    cards = []
    for project in projects:
        name, name_lang, summary, summary_lang = actor_texts(project, lang)
        cards.append({"actor": project, "name": name, "name_lang": name_lang, "summary": summary,
                      "summary_lang": summary_lang})
    return html_response(request, "home.html", projects=cards, feed=feed, visitor_lang=lang,
                         domain=request.app[SETTINGS].domain)


async def tag_page(request: web.Request) -> web.Response:
    """Updates carrying a hashtag or theme: where the hashtag links in our Notes lead."""
    try:
        tag = clean_hashtag(request.match_info["tag"])
    except UserError:
        raise NotFound("no such tag") from None
    lang = visitor_lang(request)
    async with request.app[SESSIONS]() as db:
        feed = await post_views(db, await queries.tagged_posts(db, tag), lang, request.app[URLS])
    theme = label("themes", tag, lang) if is_valid("themes", tag) else None
    return html_response(request, "tag.html", tag=tag, theme=theme, feed=feed, visitor_lang=lang)


async def actor_page(request: web.Request, actor: Actor) -> web.Response:
    lang, urls, page = visitor_lang(request), request.app[URLS], _page_number(request)
    async with request.app[SESSIONS]() as db:
        user = request.get(USER)
        member = await queries.is_member(db, user, actor)
        updates = await queries.project_updates(db, actor, page)
        has_next = len(updates) > queries.PAGE_SIZE
        posts = await post_views(db, [(obj, actor) for obj in updates[:queries.PAGE_SIZE]],
                                 lang, urls)
        followers = await queries.relation_actors(db, actor, followers=True, page=1)
        following = await queries.relation_actors(db, actor, followers=False, page=1)
        counts = (await queries.relation_count(db, actor, True),
                  await queries.relation_count(db, actor, False))
        solidarity_links = await link_views(db, actor, lang)
        # Imported here: event_pages uses this module's visitor_lang and language_name.
        from fedsph.web.event_pages import upcoming_events

        events_soon = await upcoming_events(db, actor, 3, lang) if actor.local else []
    name, name_lang, summary, summary_lang = actor_texts(actor, lang)
    base = page_href(actor)
    return html_response(
        request, "actor.html", actor=actor, name=name, name_lang=name_lang, summary=summary,
        summary_lang=summary_lang, profile=profile_view(actor, lang, member), is_member=member,
        posts=posts, page=page, next_page=_with_query(base, page=page + 1) if has_next else None,
        prev_page=_with_query(base, page=page - 1) if page > 1 else None,
        followers=followers, following=following, counts=counts, visitor_lang=lang,
        handle=f"{actor.username}@{actor.domain}", solidarity_links=solidarity_links,
        events_soon=events_soon,
        feed_url=actor.uri + "/feed.atom" if actor.local else None)


async def object_page(request: web.Request, obj: Object, actor: Actor) -> web.Response:
    lang, urls, page = visitor_lang(request), request.app[URLS], _page_number(request)
    async with request.app[SESSIONS]() as db:
        media = (await queries.media_for(db, [obj.id])).get(obj.id, []) if obj.local else []
        post = post_view(obj, actor, lang, media, urls, show=request.query.get("show"))
        # Followers-only replies are not for every visitor, whatever their author intended:
        # comments_for lists public and unlisted ones, a page (queries.MAX_LISTED) at a time.
        comments = await post_views(db, await queries.comments_for(db, obj, page=page), lang, urls)
        total = await queries.comment_count(db, obj)
        reactions = await queries.reaction_counts(db, obj.uri)
    here = request.rel_url
    return html_response(request, "object.html", post=post, actor=actor,
                         actor_name=actor_texts(actor, lang)[0], comment_total=total,
                         comments=comments, reactions=reactions, visitor_lang=lang,
                         prev_page=str(here.update_query(page=page - 1)) if page > 1 else None,
                         next_page=str(here.update_query(page=page + 1))
                         if total > page * queries.MAX_LISTED else None)


async def remote_actor_page(request: web.Request) -> web.Response:
    """A project or person from another server, as this node has stored it (profile included)."""
    async with request.app[SESSIONS]() as db:
        actor = await get_actor_by_uri(db, request.query.get("uri", ""))
    if actor is None or actor.local:
        raise NotFound("this node knows no such account")
    return await actor_page(request, actor)


async def remote_object_page(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        found = await queries.public_remote_object(db, request.query.get("uri", ""))
    if found is None:
        raise NotFound("this node has no such public update")
    if found[0].type == "Event":
        # Imported here, like upcoming_events above: event_pages imports this module.
        from fedsph.web.event_pages import remote_event_page

        shown = await remote_event_page(request, *found)
        if shown is not None:
            return shown
    return await object_page(request, *found)


# -- remote follow --------------------------------------------------------------------------------

async def subscribe_template(remote, handle: str, allow_http: bool) -> str | None:
    """The OStatus subscribe template ("…?uri={uri}") from the WebFinger document of `handle`."""
    user, _, host = handle.strip().lstrip("@").partition("@")
    query = urlencode({"resource": f"acct:{user}@{host}"})
    for scheme in ("https", "http") if allow_http else ("https",):
        try:
            document = await remote.fetch_json(f"{scheme}://{host}/.well-known/webfinger?{query}",
                                               accept="application/jrd+json, application/json")
        except FetchError as exc:
            if exc.status is not None:
                return None
            continue
        for link in as_list(document.get("links")):
            template = link.get("template") if isinstance(link, dict) else None
            # Only an http(s) URL (fedsph.core.safe_links) is a place to send people.
            if (isinstance(template, str) and link.get("rel") == SUBSCRIBE_REL
                    and "{uri}" in template and http_url(template)):
                return template
        return None
    return None


def _valid_handle(handle: str) -> bool:
    user, sep, host = handle.strip().lstrip("@").partition("@")
    return bool(sep and user and host and "/" not in host and "@" not in host and " " not in handle.strip())


async def remote_follow(request: web.Request) -> web.Response:
    """Send a visitor to their own server's follow page for one of our projects."""
    urls = request.app[URLS]
    target_uri = request.query.get("target", "")
    async with request.app[SESSIONS]() as db:
        target = await get_actor_by_uri(db, target_uri) if urls.is_local(target_uri) else None
    if target is None or not target.local:
        raise NotFound("there is no such project here to follow")
    handle = request.query.get("handle", "").strip()
    error = None
    if handle:
        if not _valid_handle(handle):
            error = "invalid"
        else:
            template = await subscribe_template(request.app[REMOTE], handle,
                                                request.app[SETTINGS].allow_private_networks)
            if template:
                # encoded=True: yarl would otherwise decode the %2F of the target in the query.
                raise web.HTTPFound(URL(template.replace("{uri}", quote(target.uri, safe="")),
                                        encoded=True))
            error = "not_found"
    status = 200 if error is None else 400 if error == "invalid" else 404
    name = actor_texts(target, visitor_lang(request))[0]
    return html_response(request, "remote_follow.html", status=status, target=target, name=name,
                         handle=handle, error=error, visitor_lang=visitor_lang(request),
                         project_handle=f"{target.username}@{target.domain}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/remote-follow", remote_follow)
    app.router.add_get("/tags/{tag}", tag_page)
    app.router.add_get("/remote/actors", remote_actor_page)
    app.router.add_get("/remote/objects", remote_object_page)
