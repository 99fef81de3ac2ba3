"""Interface language: negotiation, the cookie, translated pages, vocabulary labels, content picking."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import aiohttp
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from fedsph import i18n, i18n_update
from fedsph.core import vocab
from fedsph.i18n import negotiate, parse_accept_language, pick_translation
from fedsph.web.render import make_templates

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html"}


# -- negotiation ---------------------------------------------------------------------------------

def test_query_beats_cookie_beats_accept_language():
    assert negotiate("pt", "fr", "es") == "pt"
    assert negotiate(None, "fr", "es") == "fr"
    assert negotiate(None, None, "es") == "es"
    assert negotiate() == "en"


def test_unknown_languages_fall_through_to_english():
    assert negotiate("de", "xx", "ja, zh;q=0.8") == "en"
    assert negotiate("de", None, "fr") == "fr"  # an unknown ?lang= does not hide the next source
    assert negotiate("", "", "") == "en"


def test_accept_language_quality_values():
    assert parse_accept_language("fr;q=0.4, es-UY;q=0.9, en;q=0.1") == ["es-UY", "fr", "en"]
    assert negotiate(None, None, "de, fr;q=0.4, pt-BR;q=0.8") == "pt"
    assert negotiate(None, None, "es;q=0, fr;q=0.2") == "fr"  # q=0 means "not this one"
    assert negotiate(None, None, "*, fr;q=0.5") == "fr"
    assert negotiate(None, None, "es;q=bogus, pt") == "pt"


def test_regional_tags_map_to_the_interface_language():
    assert negotiate("ES_uy") == "es"
    assert negotiate("pt-PT") == "pt"


# -- over HTTP -----------------------------------------------------------------------------------

async def test_lang_query_sets_a_year_long_lax_cookie(node):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base}/?lang=fr", headers=HTML) as response:
            assert response.status == 200
            assert response.headers["Content-Language"] == "fr"
            cookie = response.cookies["lang"]
            assert cookie.value == "fr"
            assert int(cookie["max-age"]) == 365 * 24 * 3600
            assert cookie["samesite"] == "Lax"
            assert cookie["path"] == "/"
            assert '<html lang="fr"' in await response.text()
        # The cookie then wins over Accept-Language; no query, no new cookie.
        headers = {**HTML, "Cookie": "lang=fr", "Accept-Language": "es"}
        async with http.get(f"{node.base}/", headers=headers) as response:
            assert response.headers["Content-Language"] == "fr"
            assert "lang" not in response.cookies
        async with http.get(f"{node.base}/?lang=klingon", headers=HTML) as response:
            assert response.headers["Content-Language"] == "en"
            assert "lang" not in response.cookies


@pytest.mark.parametrize("lang, back, reason", [
    ("es", "Volver a la página de inicio", "No encontrado"),
    ("fr", "Retour à la page d'accueil", "Introuvable"),
    ("pt", "Voltar à página inicial", "Não encontrado"),
    ("en", "Back to the start page", "Not Found"),
])
async def test_pages_and_error_pages_are_translated(node, lang, back, reason):
    headers = {**HTML, "Accept-Language": f"{lang};q=0.9, en;q=0.1"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base}/no-such-page", headers=headers) as response:
            assert response.status == 404
            page = await response.text()
        async with http.get(f"{node.base}/", headers=headers) as response:
            home = await response.text()
            assert response.headers["Content-Language"] == lang
            assert "Accept-Language" in response.headers["Vary"]
    assert f'<html lang="{lang}"' in page
    assert back in page and reason in page
    assert f'<html lang="{lang}"' in home


# -- templates -----------------------------------------------------------------------------------

def _compile_catalog(locale_dir: Path, lang: str, messages: dict) -> None:
    catalog = Catalog(locale=lang)
    for message_id, text in messages.items():
        if isinstance(text, tuple):  # singular and plural wording; CLDR may want more forms
            text = (text[0], *[text[-1]] * (catalog.num_plurals - 1))
        catalog.add(message_id, text)
    target = locale_dir / lang / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "messages.mo").open("wb") as fp:
        write_mo(fp, catalog)


def test_templates_translate_per_render_with_newstyle_gettext(tmp_path, monkeypatch):
    locale_dir = tmp_path / "locale"
    _compile_catalog(locale_dir, "es", {
        "Updates": "Novedades", ("%(num)d follower", "%(num)d followers"):
        ("%(num)d seguidor", "%(num)d seguidores"), "Join %(project)s": "Unirse a %(project)s",
        "Not Found": "No encontrado"})
    _compile_catalog(locale_dir, "fr", {"Updates": "Actualités", (
        "%(num)d follower", "%(num)d followers"): ("%(num)d abonné", "%(num)d abonnés")})
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale_dir)
    monkeypatch.setattr(i18n, "_catalogs", {})
    (tmp_path / "t.html").write_text(
        '{{ _("Updates") }}|{{ ngettext("%(num)d follower", "%(num)d followers", n) }}|'
        '{{ _("Join %(project)s", project=name) }}|{{ translate("Not Found") }}')
    template = make_templates(tmp_path).get_template("t.html")
    assert template.render(lang="es", n=1, name="<b>") == (
        "Novedades|1 seguidor|Unirse a &lt;b&gt;|No encontrado")
    # French lacks two of them: those stay in English.
    assert template.render(lang="fr", n=2, name="A") == "Actualités|2 abonnés|Join A|Not Found"
    assert template.render(lang="fr", n=1, name="A").startswith("Actualités|1 abonné|")
    assert template.render(lang="fr", n=0, name="A").startswith("Actualités|0 abonné|")
    assert template.render(lang="fr", n=10**6, name="A").startswith("Actualités|1000000 abonnés|")
    assert template.render(lang="en", n=2, name="A") == "Updates|2 followers|Join A|Not Found"
    assert template.render(n=1, name="A").startswith("Updates|1 follower|")  # no lang: English


def test_a_missing_compiled_catalog_means_english_and_a_warning(tmp_path, monkeypatch, caplog):
    """Rendering without the `fedsph` command's check (an app made in-process): English, with a
    warning. The command itself refuses to start (tests/test_package.py)."""
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    monkeypatch.setattr(i18n, "_catalogs", {})
    with caplog.at_level(logging.WARNING, logger="fedsph.i18n"):
        assert i18n.translate("es", "Updates") == "Updates"
    assert "no compiled catalog" in caplog.text


def test_catalogs_are_loaded_once():
    assert i18n.get_translations("es") is i18n.get_translations("es-AR")
    assert i18n.translate("fr", "Not Found") == "Introuvable"


def _catalog(lang):
    with (ROOT / "fedsph" / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        return read_po(fp, locale=lang)


@pytest.mark.parametrize("lang", ["es", "fr", "pt"])
def test_every_interface_string_is_translated(lang):
    """Fails when a template or module gains a string its catalog lacks: run `make translations`."""
    catalog = _catalog(lang)
    method_map = [("fedsph/**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True",
                                     "lstrip_blocks": "True"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
                "npgettext": ((1, "c"), 2, 3), "N_": None, "translate": (2,)}
    missing = set()
    for filename, _lineno, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, options, keywords=keywords):
        if "/." in f"/{filename}":
            continue
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(key, context=context)
        strings = [] if entry is None else (
            [entry.string] if isinstance(entry.string, str) else list(entry.string))
        if entry is None or entry.fuzzy or not all(strings):
            missing.add(key)
    assert not missing, f"untranslated in {lang}: {sorted(missing)}"


# -- vocabularies --------------------------------------------------------------------------------

def test_every_vocabulary_label_exists_in_every_language():
    missing = [(field, slug, lang)
               for field, slugs in vocab.VOCABULARIES.items() for slug in slugs
               for lang in vocab.UI_LANGUAGES
               if not vocab.LABELS[field][slug].get(lang, "").strip()]
    assert not missing
    assert set(vocab.VOCABULARIES) == {
        "stage", "approach", "tenure", "financing", "settlement_type", "themes", "partner_role",
        "region", "location_precision", "link_kind", "update_kind", "license",
        "solidarity_link", "event_kind", "join_mode"}


def test_vocabularies_match_the_domain():
    assert vocab.VOCABULARIES["stage"] == (
        "initiating", "planning", "building", "living", "dissolved", "demolished")
    assert vocab.VOCABULARIES["update_kind"] == (
        "progress", "milestone", "call_for_solidarity", "alert", "event_report", "publication",
        "exchange_visit")
    assert vocab.VOCABULARIES["license"] == ("CC0", "CC-BY-4.0", "CC-BY-SA-4.0")
    assert len(vocab.VOCABULARIES["themes"]) == 20
    assert vocab.VOCABULARIES["location_precision"] == ("exact", "neighbourhood", "city", "country")


def test_labels_and_their_fallbacks():
    assert vocab.label("approach", "mutual_aid_cooperative", "es") == "Cooperativa de ayuda mutua"
    assert vocab.label("approach", "mutual_aid_cooperative", "fr") == "Coopérative d'aide mutuelle"
    assert vocab.label("approach", "mutual_aid_cooperative", "pt") == "Cooperativa de ajuda mútua"
    assert vocab.label("approach", "mutual_aid_cooperative", "pt-BR") == (
        "Cooperativa de ajuda mútua")
    assert vocab.label("stage", "building", "de") == "Building"  # unknown language: English
    assert vocab.label("stage", "floating", "es") == "floating"  # unknown slug: the slug
    assert vocab.label("nonsense", "x", "es") == "x"
    assert vocab.is_valid("tenure", "clt_ground_lease")
    assert not vocab.is_valid("tenure", "freehold")
    assert not vocab.is_valid("nonsense", "other")
    assert vocab.choices("region", "fr")[0] == ("latin_america_caribbean",
                                                "Amérique latine et Caraïbes")


# -- content in the visitor's language -----------------------------------------------------------

def test_pick_translation():
    content_map = {"es": "<p>Hola</p>", "en": "<p>Hello</p>"}
    assert pick_translation(content_map, "en", "<p>Hola</p>", "es") == ("<p>Hello</p>", "en")
    assert pick_translation(content_map, "es", "<p>Hola</p>", "es") == ("<p>Hola</p>", "es")
    # No French: the primary text, in the primary language.
    assert pick_translation(content_map, "fr", "<p>Hola</p>", "es") == ("<p>Hola</p>", "es")
    # Regional tags match either way round.
    assert pick_translation({"pt-BR": "Olá"}, "pt", "Hi", "en") == ("Olá", "pt-BR")
    assert pick_translation({"es": "Hola"}, "es-UY", "Hi", "en") == ("Hola", "es")
    # An exact tag wins over a mere primary-language match.
    assert pick_translation({"pt-PT": "a", "pt-BR": "b"}, "pt-BR", None) == ("b", "pt-BR")
    # Without a fallback text the first entry (the primary language) is shown.
    assert pick_translation({"es": "Hola", "fr": "Salut"}, "en", None) == ("Hola", "es")
    assert pick_translation(None, "es", "Hi") == ("Hi", None)
    assert pick_translation({}, "es", None) == (None, None)
    assert pick_translation({"fr": ""}, "fr", "Hi", "en") == ("Hi", "en")  # empty is missing


# -- plural rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", vocab.UI_LANGUAGES)
def test_each_catalog_uses_the_cldr_plural_rule_with_every_form_filled(lang):
    """The shipped catalogs follow the CLDR of the locked Babel; `make translations` keeps them so
    (i18n_update.align_plural_forms), since `pybabel update` never touches Plural-Forms."""
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    assert catalog.plural_forms == Catalog(locale=lang).plural_forms
    for message in catalog:
        if message.id and message.pluralizable:
            assert len(message.string) == catalog.num_plurals, message.id
            assert lang == "en" or all(message.string), message.id  # English: the msgids


def test_align_plural_forms_adds_the_missing_forms(tmp_path):
    po = tmp_path / "messages.po"
    old = Catalog(locale="fr")
    old.add(("%(num)d follower", "%(num)d followers"), ("%(num)d abonné", "%(num)d abonnés"))
    old.add("Updates", "Actualités")
    with po.open("wb") as fp:
        write_po(fp, old)
    po.write_text(re.sub(r'"Plural-Forms: [^"]*"', r'"Plural-Forms: nplurals=2; plural=(n > 1);\\n"',
                         po.read_text()))
    assert i18n_update.align_plural_forms("fr", po)
    with po.open("rb") as fp:
        aligned = read_po(fp, locale="fr")
    forms = aligned.get(("%(num)d follower", "%(num)d followers")).string
    assert forms == ("%(num)d abonné", *["%(num)d abonnés"] * (aligned.num_plurals - 1))
    assert aligned.get("Updates").string == "Actualités"
    assert not i18n_update.align_plural_forms("fr", po)  # already aligned: left alone
