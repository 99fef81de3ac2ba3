"""The visitor's language on pages: which one the middleware chose, which translation of a text
to show, and languages' and countries' names as the visitor reads them."""

from __future__ import annotations

from functools import lru_cache

from aiohttp import web
from babel import Locale, UnknownLocaleError
from markupsafe import Markup

from fedsph.core.sanitize import clean_html
from fedsph.i18n import pick_translation
from fedsph.models import Actor
from fedsph.web.keys import LANG


def visitor_lang(request: web.Request) -> str:
    """The interface language the i18n middleware chose."""
    return request.get(LANG) or "en"


def translated(mapping, lang: str, fallback: str | None,
               fallback_lang: str | None = None) -> tuple[str | None, str | None]:
    """The text in `lang` when translated, else the primary text (see i18n.pick_translation)."""
    return pick_translation(mapping if isinstance(mapping, dict) else None, lang, fallback,
                            fallback_lang)


# Babel parses the locale on every call; pages name the same few countries and languages in a
# few languages thousands of times (the hub's directory: each card, each filter option).
@lru_cache(maxsize=4096)
def language_name(tag: str) -> str:
    """A language's name as its speakers write it ("español"), so a reader recognises their own."""
    try:
        return Locale.parse(tag.replace("-", "_")).get_display_name(tag.replace("-", "_")) or tag
    except (ValueError, UnknownLocaleError):
        return tag


@lru_cache(maxsize=4096)
def country_name(code: str, lang: str) -> str:
    try:
        return Locale.parse(lang).territories.get(code.upper(), code)
    except (ValueError, UnknownLocaleError):
        return code



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
