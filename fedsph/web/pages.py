"""HTML pages for people: the node home, a project page, a post page, and remote follow.

Views are prepared in the modules these handlers call (languages, post_views, profile_view,
event_views, link_pages) so the templates stay plain markup; every UI string in them goes
through `_()`.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from aiohttp import web
from yarl import URL

from fedsph.core.safe_links import http_url
from fedsph.core.vocab import is_valid, label
from fedsph.errors import FetchError, NotFound, UserError
from fedsph.federation.activitystreams import as_list
from fedsph.federation.actors import get_actor_by_uri
from fedsph.models import Actor, Object
from fedsph.projects import queries
from fedsph.projects.notes import clean_hashtag
from fedsph.web.event_views import remote_event_page, upcoming_events
from fedsph.web.hrefs import page_href, with_query
from fedsph.web.interact import SUBSCRIBE_REL
from fedsph.web.keys import READERS, REMOTE, SETTINGS, URLS, USER
from fedsph.web.languages import actor_texts, visitor_lang
from fedsph.web.link_pages import link_views
from fedsph.web.params import page_number
from fedsph.web.post_views import post_view, post_views
from fedsph.web.profile_view import profile_view
from fedsph.web.render import html_response


async def home(request: web.Request) -> web.Response:
    lang, urls = visitor_lang(request), request.app[URLS]
    async with request.app[READERS]() as db:
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
    async with request.app[READERS]() as db:
        feed = await post_views(db, await queries.tagged_posts(db, tag), lang, request.app[URLS])
    theme = label("themes", tag, lang) if is_valid("themes", tag) else None
    return html_response(request, "tag.html", tag=tag, theme=theme, feed=feed, visitor_lang=lang)


async def actor_page(request: web.Request, actor: Actor) -> web.Response:
    lang, urls, page = visitor_lang(request), request.app[URLS], page_number(request)
    async with request.app[READERS]() as db:
        user = request.get(USER)
        member = await queries.is_member(db, user, actor)
        rows = await queries.project_posts(db, actor, page)
        has_next = len(rows) > queries.PAGE_SIZE
        posts = await post_views(db, [(obj, actor) for obj in rows[:queries.PAGE_SIZE]],
                                 lang, urls)
        followers = await queries.relation_actors(db, actor, followers=True, page=1)
        following = await queries.relation_actors(db, actor, followers=False, page=1)
        counts = (await queries.relation_count(db, actor, True),
                  await queries.relation_count(db, actor, False))
        solidarity_links = await link_views(db, actor, lang)
        events_soon = await upcoming_events(db, actor, 3, lang) if actor.local else []
    name, name_lang, summary, summary_lang = actor_texts(actor, lang)
    base = page_href(actor)
    return html_response(
        request, "actor.html", actor=actor, name=name, name_lang=name_lang, summary=summary,
        summary_lang=summary_lang, profile=profile_view(actor, lang, member), is_member=member,
        posts=posts, page=page, next_page=with_query(base, page=page + 1) if has_next else None,
        prev_page=with_query(base, page=page - 1) if page > 1 else None,
        followers=followers, following=following, counts=counts, visitor_lang=lang,
        handle=f"{actor.username}@{actor.domain}", solidarity_links=solidarity_links,
        events_soon=events_soon,
        feed_url=actor.uri + "/feed.atom" if actor.local else None)


async def object_page(request: web.Request, obj: Object, actor: Actor) -> web.Response:
    lang, urls, page = visitor_lang(request), request.app[URLS], page_number(request)
    async with request.app[READERS]() as db:
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
    async with request.app[READERS]() as db:
        actor = await get_actor_by_uri(db, request.query.get("uri", ""))
    if actor is None or actor.local:
        raise NotFound("this node knows no such account")
    return await actor_page(request, actor)


async def remote_object_page(request: web.Request) -> web.Response:
    async with request.app[READERS]() as db:
        found = await queries.public_remote_object(db, request.query.get("uri", ""))
    if found is None:
        raise NotFound("this node has no such public update")
    if found[0].type == "Event":
        shown = await remote_event_page(request, *found)
        if shown is not None:
            return shown
    return await object_page(request, *found)


# -- remote follow --------------------------------------------------------------------------------

async def find_subscribe_template(remote, handle: str, allow_http: bool) -> str | None:
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
    async with request.app[READERS]() as db:
        target = await get_actor_by_uri(db, target_uri) if urls.is_local(target_uri) else None
    if target is None or not target.local:
        raise NotFound("there is no such project here to follow")
    handle = request.query.get("handle", "").strip()
    error = None
    if handle:
        if not _valid_handle(handle):
            error = "invalid"
        else:
            template = await find_subscribe_template(request.app[REMOTE], handle,
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
