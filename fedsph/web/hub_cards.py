"""A member project as the hub's pages show it: from its row of the directory's index (never a
loaded Actor), in the visitor's language.

The directory page renders its 50 list items here, in Python, rather than in a Jinja loop:
the loop's attribute lookups, filters and escaping were most of the time of a page that is not
in the page cache (issue 12 review). The markup is the one templates/hub.html had; every value
is escaped and every href goes through safe_href, as in a template.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from markupsafe import Markup, escape

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


def card_item(entry, lang: str) -> str:
    """One `<li>` of the directory: the linked name, then country, stage and approaches."""
    c = card(entry, lang)
    lang_attr = f' lang="{escape(c["name_lang"])}"' if c["name_lang"] else ""
    facts = [escape(v) for v in (c["country"], c["stage"], ", ".join(c["approach"])) if v]
    meta = f' <span class="meta">· {" · ".join(facts)}</span>' if facts else ""
    return (f'<li><a href="{escape(safe_href(c["href"]))}"{lang_attr}>{escape(c["name"])}</a>'
            f"{meta}</li>\n")


def card_items(entries, lang: str) -> Markup:
    """The directory's list items, each value escaped (so the joined text is safe markup)."""
    return Markup("".join(card_item(entry, lang) for entry in entries))
