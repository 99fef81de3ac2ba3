"""Responses: AS2 JSON for machines, Jinja2 HTML for people, and telling which one is wanted."""

from __future__ import annotations

import contextvars
import functools
from urllib.parse import urlencode

import jinja2
import orjson
from aiohttp import web
from markupsafe import Markup, escape

from fedsph import __version__
from fedsph.core import vocab
from fedsph.core.safe_links import MAX_URL_LENGTH, http_url, local_path
from fedsph.core.sanitize import clean_html
from fedsph.errors import UserError
from fedsph.federation.activitystreams import AP_CONTENT_TYPE
from fedsph.i18n import get_translations, pick_translation, request_language
from fedsph.web.keys import CSRF_TOKEN, LANG, SETTINGS, TEMPLATES, USER

AP_ACCEPTS = ("application/activity+json", "application/ld+json", "application/json")


# Each language's name in itself, for the language switcher and the content-language links.
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "pt": "Português"}

# The language of the render in progress, for macros imported without the template's context.
_render_lang: contextvars.ContextVar[str] = contextvars.ContextVar("render_lang", default="en")


def _catalog(context: jinja2.runtime.Context):
    return get_translations(context.get("lang") or _render_lang.get())


# One shared environment serves every language: these look the language up in the render's own
# context, so concurrent renders in different languages never touch shared state.
@jinja2.pass_context
def _gettext(context, message: str) -> str:
    return _catalog(context).gettext(message)


@jinja2.pass_context
def _ngettext(context, singular: str, plural: str, n: int) -> str:
    return _catalog(context).ngettext(singular, plural, n)


@jinja2.pass_context
def _pgettext(context, msgctxt: str, message: str) -> str:
    return _catalog(context).pgettext(msgctxt, message)


@jinja2.pass_context
def _npgettext(context, msgctxt: str, singular: str, plural: str, n: int) -> str:
    return _catalog(context).npgettext(msgctxt, singular, plural, n)


@jinja2.pass_context
def _translate(context, message) -> str:
    """Translates a message chosen at run time (an error text): no %-formatting, unlike _()."""
    if isinstance(message, UserError):
        return message.translate(_catalog(context).gettext)
    return _catalog(context).gettext(str(message)) if message else ""


def error_message(request: web.Request, exc: BaseException) -> str:
    """What a page says about exc in the visitor's language: a UserError translated, any other
    exception as str(exc) (English, as the CLI and the API say it)."""
    if isinstance(exc, UserError):
        return exc.translate(get_translations(request.get(LANG) or request_language(request)).gettext)
    return str(exc)


def osm_url(latitude: float, longitude: float, zoom: int = 15) -> str:
    """An OpenStreetMap link to a point (already rounded to what its owner chose to show)."""
    return (f"https://www.openstreetmap.org/?mlat={latitude}&mlon={longitude}"
            f"#map={zoom}/{latitude}/{longitude}")


def safe_href(value) -> str:
    """The template filter every href/src goes through: an http(s) URL, a path on this site, or ''.

    Templates test it (`{% if x|safe_href %}`) and show plain text instead of a link when it is
    empty, so a `javascript:` or `data:` URL from another server or a form is never clickable.
    """
    return http_url(value) or local_path(value) or query_only(value) or ""


def query_only(value) -> str | None:
    """`value` if it is a reference like "?lang=de" (same page, other query), else None.

    A query-only reference keeps the page's scheme, host and path, so it cannot lead elsewhere;
    control characters and spaces are still refused (browsers strip or rewrite them).
    """
    if not isinstance(value, str) or not value.startswith("?") or len(value) > MAX_URL_LENGTH:
        return None
    return value if all(0x20 < ord(ch) != 0x7f for ch in value) else None


def link_to(href, text, **attributes) -> Markup:
    """`<a href>` around text if href passes safe_href, else the text alone; all values escaped."""
    url = safe_href(href)
    if not url:
        return escape(text)
    extra = Markup("").join(Markup(' {}="{}"').format(name.replace("_", "-"), value)
                            for name, value in attributes.items() if value)
    return Markup('<a href="{}"{}>{}</a>').format(url, extra, text)


def sanitized(value) -> Markup:
    """Stored HTML as shown: sanitised again at render, so rows stored by older versions (or
    written to the database by hand) cannot carry markup that the sanitiser refuses today."""
    return Markup(clean_html(value if isinstance(value, str) else ""))


def make_templates(directory) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # newstyle: _("Hello %(name)s", name=x) escapes x and formats after translating.
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True, pgettext=_pgettext,
                                  npgettext=_npgettext)
    env.globals["translate"] = _translate
    env.globals["osm_url"] = osm_url
    env.globals["link_to"] = link_to
    env.filters["safe_href"] = safe_href
    env.filters["sanitized"] = sanitized
    return env


def wants_html(request: web.Request) -> bool:
    """Browsers get HTML; a request with AS2 types, */* or no Accept at all gets JSON.

    fediverse-pasture fetches keys with a bare GET, so no Accept header means JSON.
    """
    header = request.headers.get("Accept", "")
    if len(header) > CACHED_ACCEPT_LENGTH:
        return _decide_wants_html(header)
    return _accept_wants_html(header)


# Decided once per Accept text: clients send few distinct ones. Longer texts are decided every
# time, so strangers cannot fill the cache with 256 headers of 8 KB.
CACHED_ACCEPT_LENGTH = 512


def _decide_wants_html(header: str) -> bool:
    accept = header.lower()
    if any(t in accept for t in AP_ACCEPTS):
        return False
    return "text/html" in accept


_accept_wants_html = functools.lru_cache(maxsize=256)(_decide_wants_html)


def ap_response(document: dict | bytes, status: int = 200, content_type: str = AP_CONTENT_TYPE,
                headers: dict | None = None) -> web.Response:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    return web.Response(body=body, status=status,
                        headers={**(headers or {}), "Content-Type": content_type, "Vary": "Accept"})


def json_response(document: dict | list, status: int = 200, content_type: str = "application/json",
                  headers: dict | None = None) -> web.Response:
    return ap_response(orjson.dumps(document), status, content_type, headers)


def html_response(request: web.Request, template: str, status: int = 200, **context) -> web.Response:
    """Renders template in the request's language (request[LANG], set by the i18n middleware).

    Templates get: lang, current_user, csrf_token, label(field, slug[, lang]),
    pick(mapping, fallback_text[, fallback_lang]) -> (text, lang_shown), ui_languages,
    language_names, lang_url(code), node_name, version; plus what the caller passes.
    """
    settings = request.app[SETTINGS]
    lang = request.get(LANG) or request_language(request)

    def label(field: str, slug: str, in_lang: str | None = None) -> str:
        return vocab.label(field, slug, in_lang or lang)

    def pick(mapping, fallback_text=None, fallback_lang=None, in_lang: str | None = None):
        return pick_translation(mapping, in_lang or lang, fallback_text, fallback_lang)

    def lang_url(code: str) -> str:
        # Query-only: the raw path may be "//evil.example/x" on a 404 page, so it is never repeated.
        return "?" + urlencode({**request.query, "lang": code})

    defaults = {"node_name": settings.node_name, "version": __version__, "lang": lang,
                "current_user": request.get(USER), "csrf_token": request.get(CSRF_TOKEN),
                "label": label, "pick": pick, "ui_languages": vocab.UI_LANGUAGES,
                "language_names": LANGUAGE_NAMES, "lang_url": lang_url}
    token = _render_lang.set(lang)
    try:
        html = request.app[TEMPLATES].get_template(template).render({**defaults, **context})
    finally:
        _render_lang.reset(token)
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept, Accept-Language, Cookie"
    return response
