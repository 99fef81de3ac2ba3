"""Refusing to run an incomplete install: the files a node needs besides its Python code.

An install made without the build's catalog step (or a copy of the package missing its data)
would otherwise run: every page in English with a log warning nobody reads, or a template error
on the first page. `fedsph` checks before any command instead and says, on one line, what is
missing and what to run. Where the files are: fedsph.config.package_data_dir, setup.py and
ARCHITECTURE.md, "Package data".
"""

from __future__ import annotations

from fedsph.config import IN_CHECKOUT, Settings
from fedsph.core.vocab import UI_LANGUAGES
from fedsph.db import MIGRATIONS_DIR
from fedsph.errors import UserError
from fedsph.i18n import DEFAULT_LANGUAGE, catalog_path

# Every page extends it: a templates folder without it is not one.
BASE_TEMPLATE = "base.html"


def missing(settings: Settings, rendering: bool = True) -> list[str]:
    """What is missing, one phrase each; rendering=False: only what the database commands need."""
    problems = []
    if not (MIGRATIONS_DIR / "env.py").is_file() or not any(
            (MIGRATIONS_DIR / "versions").glob("*.py")):
        problems.append(f"no migrations in {MIGRATIONS_DIR}")
    if not rendering:
        return problems
    if not (settings.templates_dir / BASE_TEMPLATE).is_file():
        problems.append(f"no templates in {settings.templates_dir}")
    # English is the templates' own text: its catalog translates nothing and is not needed.
    for lang in UI_LANGUAGES:
        if lang != DEFAULT_LANGUAGE and not catalog_path(lang).is_file():
            problems.append(f"no compiled catalog for {lang!r} ({catalog_path(lang)})")
    return problems


def how_to_fix() -> str:
    if IN_CHECKOUT:
        return "in the checkout, run `make catalogs` (or `pip install -e .` again)"
    return "reinstall fedsph (`pip install --force-reinstall --no-deps` of its wheel or checkout)"


def require(settings: Settings, rendering: bool = True) -> None:
    """Raises UserError (one line: `fedsph` prints it and exits 1) when something is missing."""
    problems = missing(settings, rendering)
    if problems:
        raise UserError(f"this install is incomplete: {'; '.join(problems)}; {how_to_fix()}")
