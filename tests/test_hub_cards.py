"""The directory's list items built in Python (fedsph/web/hub_cards.py) are the markup the Jinja
loop of templates/hub.html made, byte for byte, hostile values included: every value escaped,
every href through safe_href."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import jinja2
from markupsafe import Markup

from fedsph.web.hub_cards import card, card_items
from fedsph.web.render import safe_href

# The loop templates/hub.html had before the items were built in Python.
TEMPLATE_LOOP = (
    '{% for c in cards %}\n'
    '<li><a href="{{ c.href|safe_href }}"{% if c.name_lang %} lang="{{ c.name_lang }}"'
    '{% endif %}>{{ c.name }}</a>{% if c.country or c.stage or c.approach %} '
    '<span class="meta">· {{ [c.country, c.stage, c.approach|join(", ")]|select|join(" · ") }}'
    '</span>{% endif %}</li>\n'
    '{% endfor %}')
NAMES = ["Coop <b>&\"'", "Ñandé", "{0} %s {name}"]
NAME_MAPS = [None, {"fr": "Forêt <x>", "en": "Forest"}, {"es": "A&B\""}]
URIS = ["https://a.example/actors/x?<y>&\"", "http://127.0.0.1:8000/actors/coop",
        "javascript:alert(1)"]
LISTS = [None, {"approach": ["self_build", "x<y>&"]}, {"approach": []}]


def loop_markup(entries, lang: str) -> str:
    environment = jinja2.Environment(autoescape=True, trim_blocks=True)
    environment.filters["safe_href"] = safe_href
    loop = environment.from_string(TEMPLATE_LOOP)
    return loop.render(cards=[card(entry, lang) for entry in entries])


def test_list_items_are_the_template_loops_markup():
    entries = [SimpleNamespace(name=name, name_map=name_map, uri=uri, local=local,
                               country=country, stage=stage, lists=lists)
               for name, name_map, uri, local, country, stage, lists in itertools.product(
                   NAMES, NAME_MAPS, URIS, (True, False), (None, "UY"), (None, "a<b"), LISTS)]
    for lang in ("en", "fr", "es"):
        built = card_items(entries, lang)
        assert isinstance(built, Markup)
        assert str(built) == loop_markup(entries, lang)
