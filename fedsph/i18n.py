"""Interface language: choosing it per request, and the gettext catalogs that translate the interface.

The language comes from ?lang= (remembered in a cookie), then that cookie, then Accept-Language,
then English. Catalogs are fedsph/locale/<lang>/LC_MESSAGES/messages.mo, compiled from the .po
files by the package's build (setup.py; `make catalogs` too). The `fedsph` command refuses to
start without them (fedsph/admin/package_data.py); code that renders without that check (tests)
gets English for a missing catalog, with a warning.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import logging
import threading
from pathlib import Path

from aiohttp import web
from babel.support import NullTranslations, Translations

from fedsph.core.vocab import UI_LANGUAGES

log = logging.getLogger("fedsph.i18n")

# The request's interface language, set by `middleware` below. Defined here rather than with the
# other keys in fedsph/web/keys.py (which re-exports it) because i18n sits below web.
LANG = web.RequestKey("lang", str)

DEFAULT_LANGUAGE = "en"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

_catalogs: dict[str, _gettext.NullTranslations] = {}
_catalogs_lock = threading.Lock()


def N_(message: str) -> str:
    """Marks a string for extraction without translating it (translate later with translate())."""
    return message


# aiohttp's reason phrases reach the error page; marked here so the catalogs carry them.
HTTP_REASONS = (N_("Bad Request"), N_("Unauthorized"), N_("Forbidden"), N_("Not Found"),
                N_("Method Not Allowed"), N_("Not Acceptable"), N_("Gone"),
                N_("Request Entity Too Large"), N_("Unsupported Media Type"),
                N_("Too Many Requests"), N_("internal error"))
# a write PostgreSQL ended for another's (web.middleware.errors: 503, Retry-After)
LOCK_CONFLICT_REASON = N_("Service Unavailable")


def normalize(tag: str | None) -> str | None:
    """The interface language for a BCP-47 tag ("es-UY" -> "es"), or None when we have none."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in UI_LANGUAGES else None


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an Accept-Language header, best first (q-values, then header order)."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(query: str | None = None, cookie: str | None = None,
              accept_language: str | None = None) -> str:
    """?lang= beats the cookie, which beats Accept-Language; English when none of them helps."""
    for candidate in (query, cookie, *parse_accept_language(accept_language)):
        lang = normalize(candidate)
        if lang:
            return lang
    return DEFAULT_LANGUAGE


def request_language(request: web.Request) -> str:
    """negotiate() for a request; its hot path (no ?lang=, no cookie) costs one dict lookup."""
    lang = normalize(_query_lang(request)) or normalize(request.cookies.get(COOKIE))
    if lang:
        return lang
    header = request.headers.get("Accept-Language")
    if header is not None and len(header) > CACHED_HEADER_LENGTH:
        return negotiate(accept_language=header)
    return _accept_language_choice(header)


# Browsers send a handful of distinct Accept-Language texts, each a few dozen characters: each
# is parsed once. Longer ones are parsed every time, so strangers cannot fill the cache with
# 256 headers of 8 KB.
CACHED_HEADER_LENGTH = 256


@functools.lru_cache(maxsize=256)
def _accept_language_choice(header: str | None) -> str:
    """negotiate() on Accept-Language alone, once per header text."""
    return negotiate(accept_language=header)


def _query_lang(request: web.Request) -> str | None:
    # Most requests have no query string: skip building the query multidict for them.
    return request.query.get("lang") if request.rel_url.raw_query_string else None


def _remember(request: web.Request, response: web.StreamResponse) -> None:
    chosen = normalize(_query_lang(request))
    if chosen and not response.prepared and request.cookies.get(COOKIE) != chosen:
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE, path="/", samesite="Lax",
                            httponly=True, secure=request.secure or None)


@web.middleware
async def language_middleware(request: web.Request, handler):
    """Sets request[LANG]; a ?lang= choice is kept in a cookie for a year."""
    request[LANG] = request_language(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects travel as exceptions and carry the cookie too
        _remember(request, exc)
        raise
    _remember(request, response)
    return response


def get_translations(lang: str | None) -> _gettext.NullTranslations:
    """The compiled catalog of lang, loaded on first use and kept; English (identity) otherwise."""
    lang = normalize(lang) or DEFAULT_LANGUAGE
    catalog = _catalogs.get(lang)
    if catalog is not None:
        return catalog
    with _catalogs_lock:
        if lang not in _catalogs:
            _catalogs[lang] = _load(lang)
        return _catalogs[lang]


def catalog_path(lang: str) -> Path:
    """The compiled catalog of an interface language (it may be missing: see the module's doc)."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


def _load(lang: str) -> _gettext.NullTranslations:
    mo = catalog_path(lang)
    if not mo.is_file():
        if lang != DEFAULT_LANGUAGE:
            log.warning("no compiled catalog %s: the interface stays in English for %r "
                        "(reinstall fedsph, or run `make catalogs` in a checkout)", mo, lang)
        return NullTranslations()
    with mo.open("rb") as fp:
        return Translations(fp, domain=DOMAIN)


def translate(lang: str | None, message: str, **variables) -> str:
    """Translates a message for Python code (flash messages, form errors), filling in %(name)s fields."""
    text = get_translations(lang).gettext(message)
    return text % variables if variables else text


def pick_translation(mapping: dict | None, lang: str | None, fallback_text: str | None,
                     fallback_lang: str | None = None) -> tuple[str | None, str | None]:
    """The text to show a visitor in lang, and the language it is in.

    mapping is a contentMap/nameMap ({BCP-47 tag: text}); "es" matches "es-UY" and the other way
    round. Without a translation in lang: fallback_text (the primary text) with fallback_lang, or,
    when there is no fallback text, the first entry of the map (the primary language comes first).
    """
    wanted = (lang or "").lower()
    wanted_primary = wanted.split("-")[0]
    if mapping and wanted:
        for tag, text in mapping.items():
            if text and tag.lower() == wanted:
                return text, tag
        for tag, text in mapping.items():
            if text and tag.lower().split("-")[0] == wanted_primary:
                return text, tag
    if fallback_text:
        return fallback_text, fallback_lang
    for tag, text in (mapping or {}).items():
        if text:
            return text, tag
    return fallback_text, fallback_lang
