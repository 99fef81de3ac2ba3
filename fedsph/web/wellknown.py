"""Discovery: WebFinger (RFC 7033), host-meta (XRD and JSON) and NodeInfo 2.0/2.1."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import orjson
from aiohttp import web
from sqlalchemy import func, select

from fedsph import __version__
from fedsph.core.safe_links import http_url
from fedsph.errors import N_, BadRequest, Gone, NotFound
from fedsph.federation.actors import USERNAME_RE, get_actor_by_uri, get_local_actor
from fedsph.models import Actor, Object, User
from fedsph.web.interact import SUBSCRIBE_REL, subscribe_template
from fedsph.web.keys import DOCUMENTS, READERS, SETTINGS, URLS
from fedsph.web.render import ap_response, json_response

CORS = {"Access-Control-Allow-Origin": "*"}
NODEINFO_SCHEMAS = {
    "2.0": "http://nodeinfo.diaspora.software/ns/schema/2.0",
    "2.1": "http://nodeinfo.diaspora.software/ns/schema/2.1",
}
# A URI of any scheme (RFC 3986 §3.1: a letter, then letters, digits, "+", "-" or "."), with no
# space or control character after its colon.
ANY_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f]*\Z")


def parse_resource(resource: str, domain: str, is_local: Callable[[str], bool]) -> tuple[str, str]:
    """What a WebFinger `resource` asks for: ("acct", lower-cased name) on this server, or
    ("url", URL) of this server. BadRequest when malformed, NotFound for another server's or
    for a well-formed URI of another scheme (RFC 7033 §4.5: nothing known about it is a 404).
    Pure, so the parser a stranger reaches is property-tested (tests/hostile)."""
    if resource[:5].lower() == "acct:":  # a scheme is case-insensitive (RFC 3986 3.1)
        user, sep, host = unquote(resource[5:]).lstrip("@").rpartition("@")
        if not sep or not user or not host:
            raise BadRequest("resource must look like acct:name@host")
        if host.lower() != domain.lower():
            raise NotFound(f"{host} is not this server")
        if not USERNAME_RE.match(user.lower()) and user.lower() != domain.lower():
            raise NotFound("no such account here")  # no name of ours looks like that
        return "acct", user.lower()
    if resource.startswith(("http://", "https://")):
        if http_url(resource) is None or not is_local(resource):
            raise NotFound("that URL is not on this server")
        return "url", resource
    if ANY_URI_RE.match(resource):  # mailto:, xmpp:, foo://…: well formed, nothing of ours
        raise NotFound("this server answers only for acct: URIs and its own http(s) URLs")
    raise BadRequest("resource must be an acct: URI or an http(s) URL")


async def _actor_for_resource(request: web.Request, resource: str) -> Actor:
    settings, urls = request.app[SETTINGS], request.app[URLS]
    kind, value = parse_resource(resource, settings.domain, urls.is_local)
    async with request.app[READERS]() as db:
        if kind == "acct":
            actor = await get_local_actor(db, value)
            if actor is None and value in ("instance", settings.domain.lower()):
                actor = await get_actor_by_uri(db, urls.instance_actor())
        else:
            actor = await get_actor_by_uri(db, value)
            if actor is None:
                # Also resolve a profile page URL such as /actors/name?x or with a trailing slash.
                path = urlsplit(value).path.rstrip("/")
                actor = await get_actor_by_uri(db, urls.base + path)
        if actor is None and await _deleted(db, kind, value):
            # As Mastodon's WebfingerController for a deleted account: 410, not 404.
            raise Gone(N_("This account was deleted."))
    if actor is None or not actor.local:
        raise NotFound("no such account here")
    return actor


async def _deleted(db, kind: str, value: str) -> bool:
    """Whether the resource names a deleted local actor (by name, or by its URL)."""
    column = Actor.username if kind == "acct" else Actor.uri
    return await db.scalar(select(Actor.id).where(
        Actor.local.is_(True), Actor.deleted_at.is_not(None), column == value).limit(1)) is not None


async def webfinger(request: web.Request) -> web.Response:
    resource = request.query.get("resource", "").strip()
    if not resource:
        raise BadRequest("the resource parameter is required", headers=CORS)
    key = ("webfinger", resource)
    body = request.app[DOCUMENTS].get(key)
    if body is not None:
        return _jrd_response(body)
    try:
        actor = await _actor_for_resource(request, resource)
    except (BadRequest, NotFound, Gone) as problem:
        problem.headers.update(CORS)
        raise
    document = {
        "subject": f"acct:{actor.username}@{request.app[SETTINGS].domain}",
        "aliases": [actor.uri],
        "links": [
            {"rel": "self", "type": "application/activity+json", "href": actor.uri},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": actor.url},
            {"rel": SUBSCRIBE_REL, "template": subscribe_template(request.app[URLS].base)},
        ],
    }
    body = request.app[DOCUMENTS][key] = orjson.dumps(document)
    return _jrd_response(body)


def _jrd_response(body: bytes) -> web.Response:
    return ap_response(body, content_type="application/jrd+json", headers=CORS)


async def host_meta(request: web.Request) -> web.Response:
    template = request.app[URLS].base + "/.well-known/webfinger?resource={uri}"
    if "json" in request.headers.get("Accept", "") or request.path.endswith(".json"):
        return json_response({"links": [{"rel": "lrdd", "template": template}]},
                             content_type="application/jrd+json", headers=CORS)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{escape(template)}"/>\n'
        "</XRD>\n"
    )
    return web.Response(text=xml, content_type="application/xrd+xml", headers=CORS)


async def nodeinfo_links(request: web.Request) -> web.Response:
    base = request.app[URLS].base
    links = [{"rel": schema, "href": f"{base}/nodeinfo/{version}"}
             for version, schema in NODEINFO_SCHEMAS.items()]
    return json_response({"links": links}, headers=CORS)


async def nodeinfo(request: web.Request) -> web.Response:
    version = request.match_info["version"]
    if version not in NODEINFO_SCHEMAS:
        raise NotFound("NodeInfo versions 2.0 and 2.1 are served")
    async with request.app[READERS]() as db:
        users = await db.scalar(select(func.count(User.id))) or 0
        projects = await db.scalar(select(func.count(Actor.id)).where(
            Actor.local.is_(True), Actor.type == "Group", Actor.deleted_at.is_(None))) or 0
        posts = await db.scalar(select(func.count(Object.id)).where(
            Object.local.is_(True), Object.deleted_at.is_(None))) or 0
    software = {"name": "fedsph", "version": __version__}
    document = {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": users, "activeMonth": users, "activeHalfyear": users},
                  "localPosts": posts},
        "metadata": {"nodeName": request.app[SETTINGS].node_name, "projects": projects},
    }
    profile = f'application/json; profile="{NODEINFO_SCHEMAS[version]}#"'
    return json_response(document, content_type=profile, headers=CORS)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/webfinger", webfinger)
    app.router.add_get("/.well-known/host-meta", host_meta)
    app.router.add_get("/.well-known/host-meta.json", host_meta)
    app.router.add_get("/.well-known/nodeinfo", nodeinfo_links)
    app.router.add_get("/nodeinfo/{version}", nodeinfo)
