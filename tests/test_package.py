"""fedsph as a volunteer installs it, without make (README, "Install"): a wheel, or the checkout,
installed into a fresh virtual environment outside the repository and run from another folder;
an editable install compiling its catalogs; and `fedsph` refusing an incomplete install.

The wheel tests install the dependencies from the package index (pinned by requirements.lock;
pip's cache makes a second run quick) and print how long the install took. They run the README's
commands as written (with bash, HOME set to the test's folder), and only in the SQLite run of
`make test`: installing is the same on both engines, and only `migrate` would touch one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from fedsph import __version__, cli, i18n
from fedsph.admin import package_data, serve_group
from fedsph.config import load_settings
from tests.fakepeer import free_port
from tests.processes import stop_process, wait_for
from tests.support import testdb

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SPANISH_HOME = ("Proyectos en este nodo", "Últimas novedades")
INSTALL_TIMEOUT = 600
README = (ROOT / "README.md").read_text()
README_INSTALL = README[README.index("<!-- Install "):README.index("<!-- end of Install -->")]
installs = testdb.sqlite_run_only(
    "installing fedsph does not depend on the database engine (only `migrate` touches one)")


def run(command: list, cwd: Path, env: dict, timeout: float = INSTALL_TIMEOUT, check: bool = True):
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, text=True,
                            capture_output=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def outside_env(venv: Path, **extra: str) -> dict:
    """The environment of someone who never saw the repository: nothing of ours on the path,
    no FEDSPH_* of the test run, the virtual environment's bin first. pip's cache stays the
    real one (a second run downloads nothing) when HOME is the test's folder."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FEDSPH_", "PYTHON", "VIRTUAL_ENV"))}
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def readme_home(tmp_path: Path) -> dict:
    """HOME is tmp_path, so the README's ~/fedsph-env is tmp_path/fedsph-env; `python3` is the
    interpreter the tests run on (a pyenv shim would not find its own files under that HOME)."""
    bin_dir = tmp_path / "python-bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = outside_env(tmp_path / "fedsph-env", HOME=str(tmp_path))
    env["PATH"] = f"{env['PATH']}{os.pathsep}{bin_dir}"
    return env


def readme(line: str, cwd: Path, env: dict, **options):
    """One command of the README's Install section, run as written (so `~` and the wheel's
    `dist/fedsph-*.whl` expand as in the reader's shell)."""
    written = (f"\n{line}\n" in README_INSTALL) or (f"`{line}`" in README_INSTALL)
    assert written, f"not a command of the README's Install: {line}"
    return run(["bash", "-c", line], cwd, env, **options)


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


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


BUILD_WHEEL = ("rm -rf dist", "~/fedsph-env/bin/pip wheel --no-deps -w dist .")
INSTALL_WHEEL = "~/fedsph-env/bin/pip install -c requirements.lock dist/fedsph-*.whl"
UPGRADE = ("~/fedsph-env/bin/pip install --force-reinstall --no-deps dist/fedsph-*.whl",
           INSTALL_WHEEL, "~/fedsph-env/bin/fedsph migrate")


def build_and_carry_wheel(src: Path, node_dir: Path, env: dict) -> Path:
    """The README's build in a copy of the repository, then its `dist` and requirements.lock
    carried to the node's folder (another machine, in the README)."""
    for line in BUILD_WHEEL:
        readme(line, src, env)
    shutil.rmtree(node_dir, ignore_errors=True)
    node_dir.mkdir()
    shutil.copytree(src / "dist", node_dir / "dist")
    shutil.copy2(src / "requirements.lock", node_dir)
    [wheel] = (node_dir / "dist").glob("fedsph-*.whl")
    return wheel


@installs
@pytest.mark.e2e
def test_a_wheel_in_a_fresh_environment_migrates_serves_speaks_spanish_and_upgrades(tmp_path):
    """The README's wheel install, command by command, its first run from another folder, the
    repair of an incomplete install, and its upgrade to a changed version with the same number."""
    env = readme_home(tmp_path)
    venv = tmp_path / "fedsph-env"
    readme("python3 -m venv ~/fedsph-env", tmp_path, env, timeout=120)
    src = copy_build_sources(tmp_path / "src")
    # An earlier build's leftovers in the copy: a removed module in build/, an old wheel.
    stale = src / "build" / "lib" / "fedsph" / "removed_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    (src / "dist").mkdir()
    # An editor's leftovers and a link out of the repository: none of them is package data.
    (src / "templates" / "base.html~").write_text("backup")
    (src / "templates" / ".base.html.swp").write_text("swap")
    (src / "templates" / "elsewhere.html").symlink_to(tmp_path / "outside.html")
    (tmp_path / "outside.html").write_text("not ours")
    (src / "dist" / "fedsph-0.0.9-py3-none-any.whl").write_text("")
    node_dir = tmp_path / "node"
    wheel = build_and_carry_wheel(src, node_dir, env)
    assert not stale.exists() and wheel.name == f"fedsph-{__version__}-py3-none-any.whl"
    started = time.monotonic()
    readme(INSTALL_WHEEL, node_dir, env)
    print(f"\n{INSTALL_WHEEL}: {time.monotonic() - started:.1f} s")
    installed = site_packages(venv) / "fedsph"
    for data in ("templates/base.html", "migrations/env.py", "migrations/versions/0001_initial_schema.py",
                 "locale/es/LC_MESSAGES/messages.mo"):
        assert (installed / data).is_file(), data
    assert not list(installed.rglob("*.po")) and not list(installed.rglob("*.pot"))
    assert not (installed / "removed_module.py").exists()
    assert not {"base.html~", ".base.html.swp", "elsewhere.html"} & {
        path.name for path in (installed / "templates").iterdir()}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    data_dir = tmp_path / "fedsph-data"
    assert "\nexport FEDSPH_DATA_DIR=~/fedsph-data\n" in README_INSTALL
    env = {**env, "FEDSPH_DATA_DIR": str(data_dir), "FEDSPH_PORT": str(port),
           "FEDSPH_BASE_URL": f"http://127.0.0.1:{port}", **testdb.node_env(data_dir)}
    where = run([venv / "bin" / "python", "-c", "import fedsph; print(fedsph.__file__)"],
                cwd=elsewhere, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT)
    fedsph = venv / "bin" / "fedsph"
    assert "database is up to date" in readme("~/fedsph-env/bin/fedsph migrate", elsewhere,
                                              env).stdout
    assert "created project @demo@" in readme("~/fedsph-env/bin/fedsph bootstrap", elsewhere,
                                              env).stdout
    assert "\n~/fedsph-env/bin/fedsph serve\n" in README_INSTALL
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
    repair = "~/fedsph-env/bin/pip install --force-reinstall --no-deps dist/fedsph-*.whl"
    readme(repair, node_dir, env)  # the fix the message and the README give
    assert run([fedsph, "queue"], cwd=elsewhere, env=env, timeout=60).returncode == 0
    # One template deleted by hand: only the install's RECORD knows it was there.
    (installed / "templates" / "login.html").unlink()
    refused = run([fedsph, "queue"], cwd=elsewhere, env=env, timeout=60, check=False)
    assert refused.returncode == 1 and "1 of its installed files are gone" in refused.stderr
    assert "templates/login.html" in refused.stderr and "reinstall fedsph" in refused.stderr
    readme(repair, node_dir, env)
    assert run([fedsph, "queue"], cwd=elsewhere, env=env, timeout=60).returncode == 0

    # The upgrade: a changed module and template, the same version number.
    with (src / "fedsph" / "__init__.py").open("a") as module:
        module.write('\nUPGRADE_MARK = "the new version"\n')
    with (src / "templates" / "base.html").open("a") as template:
        template.write("{# the new version #}\n")
    build_and_carry_wheel(src, node_dir, env)
    for line in UPGRADE:
        readme(line, node_dir, env)
    upgraded = run([venv / "bin" / "python", "-c", "import fedsph; print(fedsph.UPGRADE_MARK)"],
                   cwd=elsewhere, env=env)
    assert upgraded.stdout.strip() == "the new version"
    assert "the new version" in (installed / "templates" / "base.html").read_text()
    assert run([fedsph, "queue"], cwd=elsewhere, env=env, timeout=60).returncode == 0


@installs
@pytest.mark.e2e
def test_the_checkout_installs_completely_and_an_editable_install_compiles_its_catalogs(tmp_path):
    """The README's `pip install -c requirements.lock .` from a fresh clone (the files the
    Dockerfile copies) puts the package data inside the package; `pip install -e .` writes the
    catalogs next to their .po files and runs from the checkout's templates/ and migrations/."""
    checkout = copy_build_sources(tmp_path / "checkout")
    env = readme_home(tmp_path)
    venv = tmp_path / "fedsph-env"
    readme("python3 -m venv ~/fedsph-env", tmp_path, env, timeout=120)
    started = time.monotonic()
    readme("~/fedsph-env/bin/pip install -c requirements.lock .", checkout, env)
    print(f"\npip install -c requirements.lock . : {time.monotonic() - started:.1f} s")
    installed = site_packages(venv) / "fedsph"
    for lang in ("es", "fr", "pt"):
        assert (installed / "locale" / lang / "LC_MESSAGES" / "messages.mo").is_file()
    assert (installed / "templates" / "base.html").is_file()
    assert (installed / "migrations" / "env.py").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    show = [venv / "bin" / "python", "-c", ("from fedsph import config, db;"
            "print(config.load_settings().templates_dir, db.migrations_dir(), sep='\\n')")]
    assert run(show, cwd=elsewhere, env=env).stdout.split() == [
        str(installed / "templates"), str(installed / "migrations")]
    assert not list(checkout.glob("fedsph/locale/*/LC_MESSAGES/*.mo"))  # built outside the checkout
    # The README's repair, from the checkout.
    (installed / "locale" / "es" / "LC_MESSAGES" / "messages.mo").unlink()
    readme("~/fedsph-env/bin/pip install --force-reinstall --no-deps .", checkout, env)
    assert (installed / "locale" / "es" / "LC_MESSAGES" / "messages.mo").is_file()

    run([venv / "bin" / "pip", "install", "-q", "-c", LOCK, "-e", "."], cwd=checkout, env=env)
    for lang in ("es", "fr", "pt"):
        assert (checkout / "fedsph" / "locale" / lang / "LC_MESSAGES" / "messages.mo").is_file()
    assert run(show, cwd=elsewhere, env=env).stdout.split() == [
        str(checkout / "templates"), str(checkout / "migrations")]


def test_the_build_pins_babel_at_the_locks_version():
    """setup.py compiles the catalogs with the [build-system] Babel, the running node reads them
    with the lock's: the same version, so a build is what the tests ran."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    pinned = {name.lower(): version for name, version in
              (requirement.split("==") for requirement in build)}
    assert all(re.fullmatch(r"[\w.]+", version) for version in pinned.values()), build
    locked = dict(re.findall(r"^([\w.-]+)==(\S+)", LOCK.read_text(), re.MULTILINE))
    assert pinned["babel"] == locked["babel"]


def test_serve_children_ignore_the_working_directorys_packages(tmp_path):
    """`serve --processes N` starts its children with -P: a folder holding another `fedsph`
    (a checkout, Docker's /data) must not be imported by them."""
    decoy = tmp_path / "fedsph"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy was imported')\n")
    (decoy / "__main__.py").write_text("raise SystemExit('the decoy was imported')\n")
    command = serve_group.child_command(0, run_worker=True)
    assert command[:4] == [sys.executable, "-P", "-m", "fedsph"]
    result = subprocess.run([*command[:4], "--version"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and __version__ in result.stdout, result


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
    status = cli.main(["backup", str(tmp_path / "backup.tar.gz")])
    assert "incomplete" not in capsys.readouterr().err
    if not testdb.on_postgresql():  # `fedsph backup` is for SQLite (PostgreSQL: pg_dump)
        assert status == 0 and (tmp_path / "backup.tar.gz").is_file()


def test_missing_templates_stop_every_command_but_the_database_ones(tmp_path, monkeypatch,
                                                                    capsys):
    """Serving, the worker and the other commands refuse; migrate and backup do not (above)."""
    empty = tmp_path / "templates"
    empty.mkdir()
    monkeypatch.setattr(cli, "load_settings", lambda: load_settings(templates_dir=empty))
    for argv in (["serve"], ["worker"], ["project", "list"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert f"no templates in {empty};" in err and err.count("\n") == 1, argv


def test_the_fix_named_fits_the_install(tmp_path, monkeypatch):
    """A checkout is told what to run there, a Docker container to rebuild its image (pip would
    change nothing that survives the container), any other install to reinstall the package."""
    catalog = ["no compiled catalog for 'pt' (…)"]
    assert "make catalogs" in package_data.how_to_fix(catalog)
    assert "git checkout -- templates" in package_data.how_to_fix(["no templates in …"])
    monkeypatch.setattr(package_data, "in_checkout", lambda: False)
    monkeypatch.setattr(package_data, "DOCKER_MARK", tmp_path / "fedsph-image")
    assert "pip install --force-reinstall --no-deps" in package_data.how_to_fix(catalog)
    (tmp_path / "fedsph-image").touch()
    assert "rebuild the image" in package_data.how_to_fix(catalog)
