"""The one build step pyproject.toml cannot say (everything else about the package is there).

Every install, `pip install .`, `pip install -e .` and a wheel, must be complete: a node
missing its catalogs serves every page in English, one missing templates/ or migrations/ cannot
start. So the build itself, not the Makefile, makes them part of the package:

- the interface catalogs, fedsph/locale/<lang>/LC_MESSAGES/messages.po, are compiled to .mo;
- the repository's top-level templates/ and migrations/ (they stay there: translators and
  Alembic's tools expect them there) are copied to fedsph/templates and fedsph/migrations.

An editable install builds nothing into the package: it runs from the checkout, so the .mo are
written next to their .po, and templates/ and migrations/ are used where they are.
fedsph.config.package_data_dir finds either layout at run time; ARCHITECTURE.md, "Package data".
"""

from __future__ import annotations

import shutil
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Repository folder -> the package folder it becomes in a wheel.
MAPPED = {"templates": "fedsph/templates", "migrations": "fedsph/migrations"}
# Caches, editors' backups and hidden files of a used checkout are not package data.
SKIPPED_NAMES = shutil.ignore_patterns("__pycache__", "*.py[co]", ".*", "*~", "*.swp", "*.bak")


def skipped(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: the names above, and symbolic links (a link in templates/ could point
    anywhere on the building machine; what ships is what the repository holds)."""
    links = {name for name in names if Path(folder, name).is_symlink()}
    return set(SKIPPED_NAMES(folder, names)) | links


def compile_catalogs(target_root: Path) -> list[Path]:
    """Compiles every fedsph/locale/*/LC_MESSAGES/messages.po under target_root; returns the .mo.

    A catalog with errors, or marked fuzzy as a whole, stops the build: `pybabel compile` would
    skip it with a message nobody reads, and the language would quietly be English."""
    written = []
    for po in sorted(ROOT.glob("fedsph/locale/*/LC_MESSAGES/messages.po")):
        lang = po.parts[-3]
        with po.open("rb") as fp:
            catalog = read_po(fp, locale=lang)
        if catalog.fuzzy:
            raise SystemExit(f"{po}: the catalog is marked fuzzy; review it and remove the flag")
        errors = [f"{message.id!r}: {error}" for message, problems in catalog.check()
                  for error in problems]
        if errors:
            raise SystemExit(f"{po}: " + "; ".join(errors))
        mo = target_root / po.relative_to(ROOT).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with mo.open("wb") as fp:
            write_mo(fp, catalog, use_fuzzy=False)
        written.append(mo)
    return written


class BuildWithPackageData(build_py):
    def run(self) -> None:
        if self.editable_mode:  # the checkout is the package: only the .mo are missing there
            super().run()
            compile_catalogs(ROOT)
            return
        build_lib = Path(self.build_lib)
        # pip builds in the checkout's build/, and a wheel takes all of build/lib: a module or
        # template deleted from the repository would otherwise still ship.
        shutil.rmtree(build_lib / "fedsph", ignore_errors=True)
        super().run()
        compile_catalogs(build_lib)
        for source, target in MAPPED.items():
            shutil.copytree(ROOT / source, build_lib / target, ignore=skipped)


setup(cmdclass={"build_py": BuildWithPackageData})
