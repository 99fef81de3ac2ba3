"""Re-extracts the interface strings and updates the catalogs: `python -m fedsph.i18n_update`.

Run from the project root after changing templates or marked strings. New strings arrive
untranslated in fedsph/locale/<lang>/LC_MESSAGES/messages.po; the report lists them per language.
`--compile` also builds the .mo files (the Makefile does that on its own).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

from fedsph.core.vocab import UI_LANGUAGES
from fedsph.i18n import DOMAIN, LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent
POT = LOCALE_DIR / f"{DOMAIN}.pot"
# translate(lang, message) in Python code, besides Babel's default keywords (_, gettext, N_, ...).
KEYWORDS = ["translate:2"]


def pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def untranslated(lang: str) -> list[str]:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fp:
        catalog = read_po(fp)
    missing = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        if lang != "en" and (message.fuzzy or not all(strings)):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def align_plural_forms(lang: str, po: Path) -> bool:
    """Give the catalog the plural rule of Babel's CLDR for its language; True if it changed.

    `pybabel update` keeps a catalog's own Plural-Forms header, so a CLDR change (CLDR 42 gave
    es, fr and pt a third form, "many", for whole millions) never reaches the catalogs by itself
    and ngettext would ask for forms the catalog lacks. New middle forms take the wording of the
    last ("other") form, which is what these languages use for millions too.
    """
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    cldr = Catalog(locale=lang)
    if catalog.plural_forms == cldr.plural_forms:
        return False
    aligned = Catalog(locale=lang, domain=catalog.domain, header_comment=catalog.header_comment,
                      project=catalog.project, version=catalog.version,
                      copyright_holder=catalog.copyright_holder,
                      msgid_bugs_address=catalog.msgid_bugs_address,
                      creation_date=catalog.creation_date, revision_date=catalog.revision_date,
                      last_translator=catalog.last_translator, language_team=catalog.language_team)
    for message in catalog:
        if not message.id:
            continue
        if message.pluralizable and isinstance(message.string, (list, tuple)):
            forms = list(message.string)[:cldr.num_plurals]
            while len(forms) < cldr.num_plurals:
                forms.insert(len(forms) - 1, forms[-1])
            message.string = tuple(forms)
        aligned[message.id] = message
    with po.open("wb") as fp:
        write_po(fp, aligned, width=100)
    return True


def main(argv: list[str]) -> int:
    os.chdir(ROOT)  # locations in the catalogs stay relative to the project
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    pybabel("extract", "-F", "babel.cfg", *keywords, "--sort-by-file", "--project", "fedsph",
            "--copyright-holder", "fedsph contributors", "-o", str(POT.relative_to(ROOT)),
            ".")
    for lang in UI_LANGUAGES:
        po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        if po.exists():
            pybabel("update", "-i", str(POT), "-d", str(LOCALE_DIR), "-D", DOMAIN, "-l", lang,
                    "--no-fuzzy-matching", "--ignore-obsolete")
        else:
            pybabel("init", "-i", str(POT), "-d", str(LOCALE_DIR), "-D", DOMAIN, "-l", lang)
        if align_plural_forms(lang, po):
            print(f"{lang}: plural forms set to CLDR's rule ({Catalog(locale=lang).plural_forms})")
    if "--compile" in argv:
        pybabel("compile", "-d", str(LOCALE_DIR), "-D", DOMAIN)
    status = 0
    for lang in UI_LANGUAGES:
        missing = untranslated(lang)
        print(f"{lang}: {len(missing)} untranslated")
        for message_id in missing:
            print(f"    {message_id!r}")
        status = status or (1 if missing and "--strict" in argv else 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
