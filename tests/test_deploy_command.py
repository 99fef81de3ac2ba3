"""deploy/fedsph-command, the operator's `sudo fedsph` (issue 14, item 4): it reads the settings
file the way systemd's EnvironmentFile= does (never through a shell, as root), refuses what
systemd would read otherwise, needs its settings and data folder, gives its program a terminal of
its own, and runs the README's `sudo fedsph …` lines (step 5, backups and upgrades) as the service
user. tests/test_deploy_files.py checks the other deploy/ files.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fedsph.config import load_settings, proxy_networks
from tests.support import testdb
from tests.support.caddy import readme_lines

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_PROGRAM = Path(sys.executable).parent / "fedsph"


# Reading settings does not depend on the database engine: run in the SQLite run only. The
# README lines' test (it migrates, backs up, restores) runs on both engines.
engine_independent = pytest.mark.skipif(
    testdb.on_postgresql(), reason="deploy/ files do not depend on the database engine: "
    "runs in the SQLite run")


def _need_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(why)


def _command_env(env_file: Path, program: str = "/usr/bin/env") -> dict[str, str]:
    """The variables the `fedsph` command hands its program (here `env`, which prints them)."""
    return {"PATH": os.environ["PATH"], "FEDSPH_ENV_FILE": str(env_file),
            "FEDSPH_SERVICE_USER": "root", "FEDSPH_PROGRAM": program}


def _run_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DEPLOY / "fedsph-command"), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def _env_lines(path: Path) -> dict[str, str]:
    """The variables of an environment file as the `fedsph` command reads and passes them."""
    shown = _run_command(_command_env(path))
    assert shown.returncode == 0, shown.stderr
    return dict(line.split("=", 1) for line in shown.stdout.splitlines()
                if line.startswith("FEDSPH_") and not line.startswith(
                    ("FEDSPH_ENV_FILE=", "FEDSPH_SERVICE_USER=", "FEDSPH_PROGRAM=")))


@engine_independent
def test_the_environment_file_is_a_valid_fedsph_configuration(tmp_path):
    """Read as the `fedsph` command reads it, the shipped file is a configuration fedsph
    accepts, public on https, listening on loopback, trusting the proxy there."""
    _need_root("the fedsph command runs as root only")
    text = (DEPLOY / "fedsph.env").read_text()
    assert "\nFEDSPH_DATA_DIR=/var/lib/fedsph\n" in text
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(text.replace("=/var/lib/fedsph", f"={tmp_path}/data"))
    values = _env_lines(env_file)
    settings = load_settings(values)
    assert settings.base_url == "https://coop.example.org"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert str(settings.data_dir) == f"{tmp_path}/data"
    assert settings.node_name == "Our housing cooperative"  # quoted: systemd and sh agree
    assert {str(n) for n in proxy_networks(settings.trusted_proxies)} == {"127.0.0.1/32", "::1/128"}
    assert not settings.database_url and not settings.ca_bundle  # commented out


SYSTEMD_STYLE = """\
# a comment
  ; another (systemd takes ; too)
FEDSPH_DATA_DIR=@DATA@
  FEDSPH_NODE_NAME = Our coop $HOME `id` ; two  spaces  
FEDSPH_A="  kept $x  "
FEDSPH_B='single $y "x"'
FEDSPH_C=
FEDSPH_D=pa$$word!$(id)
"""


@engine_independent
def test_the_fedsph_command_reads_settings_as_systemd_does(tmp_path):
    """systemd's EnvironmentFile= rules, not a shell's: the value taken literally ($, backticks,
    spaces, ; inside it), spaces around the name, = and an unquoted value dropped, quotes around
    the whole value removed and what is inside kept as is. Nothing of it runs as a command."""
    _need_root("the fedsph command runs as root only")
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(SYSTEMD_STYLE.replace("@DATA@", f"{tmp_path}/data"))
    assert _env_lines(env_file) == {
        "FEDSPH_DATA_DIR": f"{tmp_path}/data",
        "FEDSPH_NODE_NAME": "Our coop $HOME `id` ; two  spaces",
        "FEDSPH_A": "  kept $x  ",
        "FEDSPH_B": "single $y \"x\"",
        "FEDSPH_C": "",
        "FEDSPH_D": "pa$$word!$(id)",
    }


@pytest.mark.parametrize(("line", "said"), [
    ("FEDSPH_X=a\\ b", "a backslash"),
    ('FEDSPH_X=a"b c"', "no such quote inside"),
    ('FEDSPH_X="open', "no such quote inside"),
    ("touch /tmp/SHOULD-NOT-EXIST", "not NAME=value"),
    ("1X=y", "not a variable name"),
    ("FEDSPH-X=y", "not a variable name"),
])
@engine_independent
def test_the_fedsph_command_refuses_lines_systemd_would_read_otherwise(tmp_path, line, said):
    """A line the reader cannot read exactly as systemd does: one line naming it, nothing run."""
    _need_root("the fedsph command runs as root only")
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={tmp_path}/data\n{line}\n")
    marker = tmp_path / "ran"
    refused = _run_command(_command_env(env_file, f"{shutil.which('touch')}"), str(marker))
    assert refused.returncode == 1 and not marker.exists()
    assert refused.stderr.count("\n") == 1 and f"{env_file} line 2: " in refused.stderr
    assert said in refused.stderr, refused.stderr
    assert not Path("/tmp/SHOULD-NOT-EXIST").exists()


@pytest.mark.parametrize(("text", "said"), [
    (None, "no settings file"),
    ("FEDSPH_NODE_NAME=x\n", "must be a full path"),
    ("FEDSPH_DATA_DIR=data\n", "must be a full path"),
    ("FEDSPH_DATA_DIR=/nonexistent/fedsph\n", "no data folder /nonexistent/fedsph"),
])
@engine_independent
def test_the_fedsph_command_needs_its_settings_and_data_folder(tmp_path, text, said):
    _need_root("the fedsph command runs as root only")
    env_file = tmp_path / "fedsph.env"
    if text is not None:
        env_file.write_text(text)
    refused = _run_command(_command_env(env_file))
    assert refused.returncode == 1 and refused.stdout == "", refused.stdout
    assert refused.stderr.startswith("fedsph: ") and said in refused.stderr, refused.stderr


@engine_independent
def test_the_fedsph_command_gives_its_program_a_terminal_of_its_own(tmp_path):
    """Run from a terminal, the program (as the fedsph user) gets a new one from runuser --pty:
    it cannot push keystrokes into root's terminal (TIOCSTI)."""
    _need_root("the fedsph command runs as root only")
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={tmp_path}/data\n")
    primary, secondary = os.openpty()
    try:
        ran = subprocess.run([str(DEPLOY / "fedsph-command")],
                             env=_command_env(env_file, shutil.which("tty")), stdin=secondary,
                             capture_output=True, text=True, timeout=60, check=False)
        assert ran.returncode == 0, ran.stderr
        own = os.ttyname(secondary)
    finally:
        os.close(primary)
        os.close(secondary)
    assert ran.stdout.strip().startswith("/dev/pts/") and ran.stdout.strip() != own, ran.stdout


def test_the_fedsph_command_runs_as_the_service_user_with_its_settings(tmp_path):
    """deploy/fedsph-command (installed as /usr/local/bin/fedsph): the README's `sudo fedsph …`
    steps, run against a data dir in tmp_path; only root may run it."""
    if os.geteuid() != 0:
        pytest.skip("the fedsph command switches user with runuser, which needs root")
    data = tmp_path / "data"
    env_file = tmp_path / "fedsph.env"
    env_file.write_text((DEPLOY / "fedsph.env").read_text()
                        .replace("FEDSPH_DATA_DIR=/var/lib/fedsph", f"FEDSPH_DATA_DIR={data}"))
    data.mkdir(mode=0o700)
    env = {"PATH": os.environ["PATH"], "FEDSPH_ENV_FILE": str(env_file),
           "FEDSPH_SERVICE_USER": "root", "FEDSPH_PROGRAM": str(VENV_PROGRAM),
           **testdb.node_env(data)}

    def fedsph(line: str) -> subprocess.CompletedProcess:
        command = (line.replace("sudo fedsph ", f"{DEPLOY / 'fedsph-command'} ", 1)
                   .replace("/var/lib/fedsph/", f"{data}/"))
        return subprocess.run(command, shell=True, env=env, capture_output=True, text=True,
                              timeout=120, check=False, stdin=subprocess.DEVNULL)

    # The README's step 5, as written but for `sudo` (the test runs as root already).
    migrate, create_project, create_user, *later = readme_lines("sudo fedsph ")
    assert "database is up to date" in fedsph(migrate).stdout
    assert fedsph(create_project).returncode == 0
    created = fedsph(create_user)
    assert "created user maria with password: " in created.stdout, created.stderr
    listed = fedsph("sudo fedsph project list").stdout
    assert "coop\tOur housing cooperative\thttps://coop.example.org/actors/coop" in listed, listed
    # Backups and upgrades: a dated backup, the one before an upgrade, migrate, and the restore
    # of the latter, in the data folder the command runs in.
    assert [line.split()[2] for line in later] == ["backup", "backup", "migrate", "restore"], later
    for line in later:
        done = fedsph(line)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
    assert sorted(path.name for path in data.glob("*.tar.gz")) == [
        f"backup-{datetime.date.today().isoformat()}.tar.gz",
        "before-upgrade.tar.gz"]
    listed = fedsph("sudo fedsph project list").stdout
    assert "coop\tOur housing cooperative" in listed, listed
    refused = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              str(DEPLOY / "fedsph-command"), "project", "list"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1 and "run it with sudo" in refused.stderr
