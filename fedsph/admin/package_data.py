"""Refusing to run an incomplete install: the files a node needs besides its Python code.

An install made without the build's catalog step (or a copy of the package missing its data)
would otherwise run: every page in English with a log warning nobody reads, or a template error
on the first page. `fedsph` checks before any command instead and says, on one line, what is
missing and what to run. Where the files are: fedsph.config.package_data_dir, setup.py and
ARCHITECTURE.md, "Package data".

Installed from a wheel or `pip install .`, every file the install wrote is listed in the
distribution's RECORD: all of them are checked (a few hundred stat calls), so a module or
template deleted by hand is caught too. In a checkout there is no such list: the templates'
base, the migrations and the catalogs stand for the rest.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from fedsph.config import PACKAGE_DIR, Settings, in_checkout
from fedsph.core.vocab import UI_LANGUAGES
from fedsph.db import migrations_dir
from fedsph.errors import UserError
from fedsph.i18n import DEFAULT_LANGUAGE, catalog_path

# Every page extends it: a templates folder without it is not one.
BASE_TEMPLATE = "base.html"
DISTRIBUTION = "fedsph"
# Written by the Dockerfile: in the image the fix is a new image, not pip. (Docker's own
# /.dockerenv would not do: it is in every container, a developer's too.)
DOCKER_MARK = Path("/etc/fedsph-image")
SHOWN_FILES = 3


def missing(settings: Settings, rendering: bool = True) -> list[str]:
    """What is missing, one phrase each; rendering=False: only what the database commands need."""
    problems = []
    migrations = migrations_dir()
    if not (migrations / "env.py").is_file() or not any((migrations / "versions").glob("*.py")):
        problems.append(f"no migrations in {migrations}")
    if not rendering:
        return problems
    if not (settings.templates_dir / BASE_TEMPLATE).is_file():
        problems.append(f"no templates in {settings.templates_dir}")
    # English is the templates' own text: its catalog translates nothing and is not needed.
    for lang in UI_LANGUAGES:
        if lang != DEFAULT_LANGUAGE and not catalog_path(lang).is_file():
            problems.append(f"no compiled catalog for {lang!r} ({catalog_path(lang)})")
    if not problems and not in_checkout():
        problems.extend(missing_installed_files())
    return problems


def installed_files() -> list[Path] | None:
    """The package's files as the install recorded them, or None when the fedsph being run is
    not the installed distribution's (a copy on PYTHONPATH, say): its RECORD says nothing then.
    Compiled bytecode is left out: Python writes it again, and deleting it is harmless."""
    try:
        recorded = metadata.files(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None
    ours = [Path(entry.locate()) for entry in recorded
            if entry.parts[0] == DISTRIBUTION and "__pycache__" not in entry.parts]
    if Path(PACKAGE_DIR, "__init__.py") not in ours:
        return None
    return ours


def missing_installed_files() -> list[str]:
    files = installed_files()
    gone = [path for path in files or () if not path.is_file()]
    if not gone:
        return []
    shown = ", ".join(str(path.relative_to(PACKAGE_DIR)) for path in gone[:SHOWN_FILES])
    more = f" and {len(gone) - SHOWN_FILES} more" if len(gone) > SHOWN_FILES else ""
    return [f"{len(gone)} of its installed files are gone from {PACKAGE_DIR} ({shown}{more})"]


def how_to_fix(problems: list[str]) -> str:
    if in_checkout():
        if all(problem.startswith("no compiled catalog") for problem in problems):
            return "in the checkout, run `make catalogs` (or `pip install -e .` again)"
        return ("in the checkout, bring back what is missing (`git checkout -- templates "
                "migrations`), then run `make catalogs`")
    if DOCKER_MARK.exists():
        return "rebuild the image (`docker compose build`, or `docker build` of the repository)"
    return ("reinstall fedsph (`pip install --force-reinstall --no-deps` of its wheel or "
            "checkout; README, \"Install\")")


def require(settings: Settings, rendering: bool = True) -> None:
    """Raises UserError (one line: `fedsph` prints it and exits 1) when something is missing."""
    problems = missing(settings, rendering)
    if problems:
        raise UserError(f"this install is incomplete: {'; '.join(problems)}; "
                        f"{how_to_fix(problems)}")
