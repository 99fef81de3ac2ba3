"""A member project as the hub's pages show it: from its row of the directory's index (never a
loaded Actor), in the visitor's language.

The directory page renders its 50 list items here, in Python, rather than in a Jinja loop:
the loop's attribute lookups, filters and escaping were most of the time of a page that is not
in the page cache (issue 12 review). The markup is the one templates/hub.html had; every value
is escaped by Markup.format (by construction, as in a template) and every href goes through
safe_href.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from markupsafe import Markup

from fedsph.core.vocab import label
from fedsph.web.hrefs import remote_href
from fedsph.web.languages import country_name, translated
from fedsph.web.render import safe_href


def entry_href(entry) -> str:
    """hrefs.page_href for an index row: a local project's own path, else this node's view."""
    return urlsplit(entry.uri).path if entry.local else remote_href("actors", entry.uri)


def entry_name(entry, lang: str) -> tuple[str, str | None]:
    """The name in the visitor's language when translated (as languages.actor_texts)."""
    name_map = entry.name_map if isinstance(entry.name_map, dict) else None
    return translated(name_map, lang, entry.name, next(iter(name_map), None) if name_map else None)


def card(entry, lang: str) -> dict:
    name, name_lang = entry_name(entry, lang)
    lists = entry.lists if isinstance(entry.lists, dict) else {}
    return {
        "name": name, "name_lang": name_lang, "href": entry_href(entry),
        "country": country_name(entry.country, lang) if entry.country else None,
        "stage": label("stage", entry.stage, lang) if entry.stage else None,
        "approach": [label("approach", a, lang) for a in lists.get("approach") or []],
    }


# Markup.format escapes every argument that is not already markup, so a field added later
# cannot go into the page unescaped, as it could into an f-string. It costs about 1.2 ms more
# for the page's 50 items than the f-strings did (2.1 instead of 0.9 ms; only pages the page
# cache misses pay it).
CARD_ITEM = Markup('<li><a href="{href}"{lang}>{name}</a>{meta}</li>\n')
NAME_LANG = Markup(' lang="{}"')
META = Markup(' <span class="meta">· {}</span>')
FACT_SEPARATOR = Markup(" · ")


def card_item(entry, lang: str) -> Markup:
    """One `<li>` of the directory: the linked name, then country, stage and approaches."""
    c = card(entry, lang)
    facts = [v for v in (c["country"], c["stage"], ", ".join(c["approach"])) if v]
    return CARD_ITEM.format(
        href=safe_href(c["href"]), name=c["name"],
        lang=NAME_LANG.format(c["name_lang"]) if c["name_lang"] else "",
        meta=META.format(FACT_SEPARATOR.join(facts)) if facts else "")


def card_items(entries, lang: str) -> Markup:
    """The directory's list items (Markup.join escapes anything that is not markup)."""
    return Markup("").join(card_item(entry, lang) for entry in entries)
