"""Responses: AS2 JSON for machines, Jinja2 HTML for people, and telling which one is wanted."""

from __future__ import annotations

import jinja2
import orjson
from aiohttp import web

from fedsph import __version__
from fedsph.activitystreams import AP_CONTENT_TYPE
from fedsph.web.keys import SETTINGS, TEMPLATES

AP_ACCEPTS = ("application/activity+json", "application/ld+json", "application/json")


def make_templates(directory) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def wants_html(request: web.Request) -> bool:
    """Browsers get HTML; a request with AS2 types, */* or no Accept at all gets JSON.

    fediverse-pasture fetches keys with a bare GET, so no Accept header means JSON.
    """
    accept = request.headers.get("Accept", "").lower()
    if any(t in accept for t in AP_ACCEPTS):
        return False
    return "text/html" in accept


def ap_response(document: dict | bytes, status: int = 200, content_type: str = AP_CONTENT_TYPE,
                headers: dict | None = None) -> web.Response:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    return web.Response(body=body, status=status,
                        headers={**(headers or {}), "Content-Type": content_type, "Vary": "Accept"})


def json_response(document: dict | list, status: int = 200, content_type: str = "application/json",
                  headers: dict | None = None) -> web.Response:
    return ap_response(orjson.dumps(document), status, content_type, headers)


def html_response(request: web.Request, template: str, status: int = 200, **context) -> web.Response:
    settings = request.app[SETTINGS]
    html = request.app[TEMPLATES].get_template(template).render(
        node_name=settings.node_name, version=__version__, **context)
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Vary"] = "Accept"
    return response
