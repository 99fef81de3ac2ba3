"""fedsph as a volunteer installs it, without make (README, "Install"): a wheel, or the checkout,
installed into a fresh virtual environment outside the repository and run from another folder;
an editable install compiling its catalogs; and `fedsph` refusing an incomplete install.

The wheel tests install the dependencies from the package index (pinned by requirements.lock;
pip's cache makes a second run quick) and print how long the install took.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fedsph import cli, i18n
from fedsph.config import load_settings
from tests.fakepeer import free_port
from tests.processes import stop_process, wait_for
from tests.support import testdb

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SPANISH_HOME = ("Proyectos en este nodo", "Últimas novedades")
INSTALL_TIMEOUT = 600


def run(command: list, cwd: Path, env: dict, timeout: float = INSTALL_TIMEOUT, check: bool = True):
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, text=True,
                            capture_output=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def outside_env(venv: Path, **extra: str) -> dict:
    """The environment of someone who never saw the repository: nothing of ours on the path,
    no FEDSPH_* of the test run, the virtual environment's bin first."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FEDSPH_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def new_venv(path: Path, cwd: Path) -> Path:
    # The interpreter the tests run on, not its venv's packages: a bare environment like
    # `python3 -m venv` gives (with the pip that Python bundles).
    run([sys.executable, "-m", "venv", path], cwd=cwd, env=outside_env(path), timeout=120)
    return path


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def timed_install(venv: Path, target, cwd: Path, lock: Path | str = LOCK) -> float:
    started = time.monotonic()
    run([venv / "bin" / "pip", "install", "-q", "-c", lock, target], cwd=cwd, env=outside_env(venv))
    seconds = time.monotonic() - started
    print(f"\npip install -c requirements.lock {target} (from {cwd}): {seconds:.1f} s")
    return seconds


def copy_build_sources(target: Path) -> Path:
    """The files the Dockerfile's COPY lines name, as a fresh clone has them (no compiled
    catalogs, no caches): what the README's checkout install and the image's build read."""
    copies = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    ignore = shutil.ignore_patterns("*.mo", "__pycache__", "*.pyc")
    target.mkdir()
    for name in (name for line in copies for name in line.split()):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    assert not list(target.glob("fedsph/locale/*/LC_MESSAGES/*.mo"))
    return target


def html(url: str, language: str) -> str:
    request = urllib.request.Request(url, headers={"Accept": "text/html",
                                                   "Accept-Language": language})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.e2e
def test_a_wheel_in_a_fresh_environment_migrates_serves_and_speaks_spanish(tmp_path):
    """The README's wheel install, command by command, then its first run from another folder."""
    venv = new_venv(tmp_path / "fedsph-env", tmp_path)
    pip = venv / "bin" / "pip"
    dist = tmp_path / "dist"
    # pip builds in the checkout's build/: what an earlier build left there must not ship.
    stale = ROOT / "build" / "lib" / "fedsph" / "removed_module.py"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("")
    run([pip, "wheel", "--no-deps", "-w", dist, "."], cwd=ROOT, env=outside_env(venv))
    wheel = next(dist.glob("fedsph-*.whl"))
    assert not stale.exists()
    timed_install(venv, wheel, tmp_path)
    installed = site_packages(venv) / "fedsph"
    for data in ("templates/base.html", "migrations/env.py", "migrations/versions/0001_initial_schema.py",
                 "locale/es/LC_MESSAGES/messages.mo"):
        assert (installed / data).is_file(), data

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    data_dir = tmp_path / "fedsph-data"
    env = outside_env(venv, FEDSPH_DATA_DIR=str(data_dir), FEDSPH_PORT=str(port),
                      FEDSPH_BASE_URL=f"http://127.0.0.1:{port}", **testdb.node_env(data_dir))
    where = run([venv / "bin" / "python", "-c", "import fedsph; print(fedsph.__file__)"],
                cwd=elsewhere, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT)
    fedsph = venv / "bin" / "fedsph"
    assert "database is up to date" in run([fedsph, "migrate"], cwd=elsewhere, env=env).stdout
    assert "created project @demo@" in run([fedsph, "bootstrap"], cwd=elsewhere, env=env).stdout
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([fedsph, "serve"], cwd=elsewhere, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(base + "/.well-known/nodeinfo"), timeout=90,
                 what="the installed fedsph to serve")
        page = html(base + "/", "es-UY,es;q=0.9,en;q=0.5")
        assert '<html lang="es">' in page and all(text in page for text in SPANISH_HOME), page
        assert "Projects on this node" in html(base + "/", "en")
    finally:
        stop_process(server)
        log.close()
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()

    # The installed package with one catalog gone: serving refuses, migrating still works.
    (installed / "locale" / "fr" / "LC_MESSAGES" / "messages.mo").unlink()
    refused = run([fedsph, "serve"], cwd=elsewhere, env=env, timeout=60, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "no compiled catalog for 'fr'" in refused.stderr and "reinstall fedsph" in refused.stderr
    assert not answers(base + "/.well-known/nodeinfo")
    assert run([fedsph, "migrate"], cwd=elsewhere, env=env).returncode == 0
    shutil.rmtree(installed / "templates")
    refused = run([fedsph, "queue"], cwd=elsewhere, env=env, timeout=60, check=False)
    assert refused.returncode == 1 and "no templates in " in refused.stderr, refused.stderr
    # The fix the message and the README give.
    run([pip, "install", "-q", "--force-reinstall", "--no-deps", wheel], cwd=tmp_path,
        env=outside_env(venv))
    assert run([fedsph, "queue"], cwd=elsewhere, env=env, timeout=60).returncode == 0


@pytest.mark.e2e
def test_the_checkout_installs_completely_and_an_editable_install_compiles_its_catalogs(tmp_path):
    """`pip install -c requirements.lock .` from a fresh clone (the files the Dockerfile copies)
    puts the package data inside the package; `pip install -e .` writes the catalogs next to
    their .po files and runs from the checkout's templates/ and migrations/."""
    checkout = copy_build_sources(tmp_path / "checkout")
    venv = new_venv(tmp_path / "fedsph-env", tmp_path)
    timed_install(venv, ".", checkout, lock="requirements.lock")
    installed = site_packages(venv) / "fedsph"
    for lang in ("es", "fr", "pt"):
        assert (installed / "locale" / lang / "LC_MESSAGES" / "messages.mo").is_file()
    assert (installed / "templates" / "base.html").is_file()
    assert (installed / "migrations" / "env.py").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    show = [venv / "bin" / "python", "-c", ("from fedsph import config, db;"
            "print(config.load_settings().templates_dir, db.MIGRATIONS_DIR, sep='\\n')")]
    assert run(show, cwd=elsewhere, env=outside_env(venv)).stdout.split() == [
        str(installed / "templates"), str(installed / "migrations")]
    assert not list(checkout.glob("fedsph/locale/*/LC_MESSAGES/*.mo"))  # built outside the checkout
    # The README's repair, from the checkout.
    (installed / "locale" / "es" / "LC_MESSAGES" / "messages.mo").unlink()
    run([venv / "bin" / "pip", "install", "-q", "--force-reinstall", "--no-deps", "."],
        cwd=checkout, env=outside_env(venv))
    assert (installed / "locale" / "es" / "LC_MESSAGES" / "messages.mo").is_file()

    run([venv / "bin" / "pip", "install", "-q", "-c", LOCK, "-e", "."], cwd=checkout,
        env=outside_env(venv))
    for lang in ("es", "fr", "pt"):
        assert (checkout / "fedsph" / "locale" / lang / "LC_MESSAGES" / "messages.mo").is_file()
    assert run(show, cwd=elsewhere, env=outside_env(venv)).stdout.split() == [
        str(checkout / "templates"), str(checkout / "migrations")]


def test_a_missing_catalog_stops_serve_with_one_line_and_the_fix(tmp_path, monkeypatch, capsys):
    """A copy of the catalogs without the Portuguese one: serve refuses before it opens anything
    (no database file, no port), migrate still runs."""
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale)
    (locale / "pt" / "LC_MESSAGES" / "messages.mo").unlink()
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("FEDSPH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FEDSPH_PORT", str(free_port()))
    for name, value in testdb.node_env(data_dir).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fedsph: this install is incomplete:")
    assert "no compiled catalog for 'pt'" in err and "make catalogs" in err
    assert "'es'" not in err and "'fr'" not in err
    assert not data_dir.exists()
    assert cli.main(["migrate"]) == 0
    assert "database is up to date" in capsys.readouterr().out
    cli.main(["backup", str(tmp_path / "backup.tar.gz")])  # SQLite only, for now
    assert "incomplete" not in capsys.readouterr().err


def test_missing_templates_stop_every_command_that_renders(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "templates"
    empty.mkdir()
    monkeypatch.setattr(cli, "load_settings", lambda: load_settings(templates_dir=empty))
    for argv in (["serve"], ["worker"], ["project", "list"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert f"no templates in {empty};" in err and err.count("\n") == 1, argv
