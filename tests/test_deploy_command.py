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
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fedsph.config import load_settings, proxy_networks
from tests.processes import wait_for
from tests.support import testdb
from tests.support.caddy import readme_lines

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_PROGRAM = Path(sys.executable).parent / "fedsph"


# Reading settings does not depend on the database engine: run in the SQLite run only. The
# README lines' test (it migrates, backs up, restores) runs on both engines.
engine_independent = testdb.sqlite_run_only("deploy/ files do not depend on the database engine")


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


def _env_lines(path: Path, **callers: str) -> dict[str, str]:
    """The variables of an environment file as the `fedsph` command reads and passes them;
    `callers`: variables of the shell that runs the command (not passed on)."""
    shown = _run_command({**callers, **_command_env(path)})
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
    the whole value removed and what is inside kept as is. Nothing of it runs as a command, and
    the FEDSPH_* variables of root's shell do not reach the program."""
    _need_root("the fedsph command runs as root only")
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(SYSTEMD_STYLE.replace("@DATA@", f"{tmp_path}/data"))
    assert _env_lines(env_file, FEDSPH_DATABASE_URL="sqlite:///root-chose-this",
                      FEDSPH_C="from root's shell") == {
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
    ("FEDSPH_X=y\r", "Windows line ends: save the file with Unix line ends"),
    ("# a comment\r", "Windows line ends"),
    ("# a comment that goes on \\", "a comment ending in a backslash"),
    ("  ; another one\\  ", "a comment ending in a backslash"),
    ("LD_PRELOAD=/tmp/evil.so", "LD_PRELOAD is not passed on"),
    ("LD_LIBRARY_PATH=/tmp", "LD_LIBRARY_PATH is not passed on"),
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
    (b"FEDSPH_DATA_DIR=/tmp\nFEDSPH_X=a\x00b\n", "holds a NUL byte"),
    (b"FEDSPH_DATA_DIR=/tmp\nFEDSPH_NODE_NAME=Cooperativa Espa\xf1a\n", "is not UTF-8 text"),
])
@engine_independent
def test_the_fedsph_command_needs_its_settings_and_data_folder(tmp_path, text, said):
    _need_root("the fedsph command runs as root only")
    env_file = tmp_path / "fedsph.env"
    if isinstance(text, bytes):
        env_file.write_bytes(text)
    elif text is not None:
        env_file.write_text(text)
    refused = _run_command(_command_env(env_file))
    assert refused.returncode == 1 and refused.stdout == "", refused.stdout
    assert refused.stderr.startswith("fedsph: ") and said in refused.stderr, refused.stderr


# The program as a shell script: what it prints, on which stream, and whether it can open a
# controlling terminal (/dev/tty), through which it could push keystrokes into root's shell.
TERMINAL_PROBE = ("tty; echo to-stderr >&2; "
                  "if (exec 3</dev/tty) 2>/dev/null; then echo HAS-A-TERMINAL; fi")


def _probe_from_terminal(tmp_path, stdout, stderr) -> tuple[subprocess.CompletedProcess, str, str]:
    """Run the command from a new terminal (its controlling one: `setsid --ctty`), stdin on it;
    what ran printed, what appeared on the terminal, and the terminal's name."""
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={tmp_path}/data\n")
    primary, secondary = os.openpty()
    try:
        own = os.ttyname(secondary)
        ran = subprocess.run(
            ["setsid", "--wait", "--ctty", str(DEPLOY / "fedsph-command"), "-c", TERMINAL_PROBE],
            env=_command_env(env_file, shutil.which("sh")), stdin=secondary,
            stdout=secondary if stdout == "terminal" else subprocess.PIPE,
            stderr=secondary if stderr == "terminal" else subprocess.PIPE,
            text=True, timeout=60, check=False)
        os.close(secondary)
        shown = b""
        while True:
            try:
                piece = os.read(primary, 4096)
            except OSError:  # EIO: the terminal has no more writers
                break
            if not piece:
                break
            shown += piece
    finally:
        os.close(primary)
    return ran, shown.decode(), own


@engine_independent
def test_the_fedsph_command_gives_its_program_a_terminal_of_its_own(tmp_path):
    """Run on a terminal (stdin, stdout, stderr), the program (as the fedsph user) gets a new
    one from runuser --pty: it cannot push keystrokes into root's terminal (TIOCSTI)."""
    _need_root("the fedsph command runs as root only")
    ran, shown, own = _probe_from_terminal(tmp_path, "terminal", "terminal")
    assert ran.returncode == 0, shown
    first = shown.splitlines()[0].strip()
    assert first.startswith("/dev/pts/") and first != own, shown
    assert "to-stderr" in shown and "HAS-A-TERMINAL" in shown  # its own terminal, not root's


@pytest.mark.parametrize("stderr", ["terminal", "pipe"])
@engine_independent
def test_the_fedsph_command_piped_keeps_its_output_plain_and_reaches_no_terminal(
        tmp_path, stderr):
    """Typed on a terminal with the output into a pipe (`sudo fedsph project list | less`):
    no --pty, so the output keeps its line ends and errors stay on stderr; the program runs in
    a session of its own, with no controlling terminal: it cannot reach root's."""
    _need_root("the fedsph command runs as root only")
    ran, shown, _ = _probe_from_terminal(tmp_path, "pipe", stderr)
    assert ran.returncode == 0, (ran.stderr, shown)
    assert "\r" not in ran.stdout and ran.stdout.endswith("\n"), ran.stdout
    assert "to-stderr" not in ran.stdout and "HAS-A-TERMINAL" not in ran.stdout, ran.stdout
    assert "to-stderr" in (ran.stderr if stderr == "pipe" else shown)


@engine_independent
def test_the_fedsph_command_piped_still_stops_on_ctrl_c_and_reads_its_input(tmp_path):
    """In a session of its own the program gets no Ctrl-C from the terminal: the command passes
    it on, and the program ends. Its stdin is the command's (`echo … | sudo fedsph …`)."""
    _need_root("the fedsph command runs as root only")
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={tmp_path}/data\n")
    env = _command_env(env_file, shutil.which("sh"))
    fed = subprocess.run([str(DEPLOY / "fedsph-command"), "-c", "cat; exit 7"], env=env,
                         input="typed in\n", capture_output=True, text=True, timeout=60,
                         check=False)
    assert (fed.returncode, fed.stdout) == (7, "typed in\n"), fed.stderr
    pid_file = tmp_path / "pid"
    command = subprocess.Popen(
        [str(DEPLOY / "fedsph-command"), "-c", f"echo $$ > {pid_file}; exec sleep 60"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 what="the program to start")
        program = int(pid_file.read_text())
        assert os.getsid(program) != os.getsid(command.pid)  # a session of its own
        os.killpg(command.pid, signal.SIGINT)  # Ctrl-C: the terminal's foreground group
        command.wait(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    wait_for(lambda: _ended(program), what="the program to end")


@engine_independent
def test_the_fedsph_command_piped_lets_its_program_finish_after_a_term(tmp_path):
    """Stopped with TERM (systemd-run, a script's timeout): the program gets it itself and may
    take its time to end cleanly (serve allows 10 s); runuser's watching parent used to SIGKILL
    it 2 s after the TERM. Nothing stands between the command and the program, and the
    command's exit status is the program's own."""
    _need_root("the fedsph command runs as root only")
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={tmp_path}/data\n")
    pid_file, done = tmp_path / "pid", tmp_path / "done"
    script = (f"trap 'sleep 3; echo clean > {done}; exit 5' TERM; echo $$ > {pid_file}; "
              "while :; do sleep 0.1; done")
    command = subprocess.Popen([str(DEPLOY / "fedsph-command"), "-c", script],
                               env=_command_env(env_file, shutil.which("sh")),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 what="the program to start")
        program = int(pid_file.read_text())
        parent = int(Path(f"/proc/{program}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert parent == command.pid  # no runuser (nor anything else) in between
        started = time.monotonic()
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=30) == 5, command.stderr.read()
        assert time.monotonic() - started >= 2.9
        assert done.read_text() == "clean\n"
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()


@engine_independent
def test_the_fedsph_command_piped_runs_with_stdin_closed(tmp_path):
    """Started with fd 0 closed (`fedsph … <&-`, some cron setups): the program reads
    /dev/null instead of the command dying on its own redirection."""
    _need_root("the fedsph command runs as root only")
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={tmp_path}/data\n")
    ran = subprocess.run(["sh", "-c", '"$0" -c "cat; echo read-all" <&-',
                          str(DEPLOY / "fedsph-command")],
                         env=_command_env(env_file, shutil.which("sh")), capture_output=True,
                         text=True, timeout=60, check=False)
    assert (ran.returncode, ran.stdout) == (0, "read-all\n"), ran.stderr


def _ended(pid: int) -> bool:
    try:
        return "(zombie)" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@engine_independent
def test_the_fedsph_command_runs_nothing_planted_in_the_data_folder(tmp_path):
    """Root never looks a program up through a PATH the settings chose (systemd reads
    `PATH=:$PATH` literally: an empty entry is the current folder) nor through the caller's,
    and never runs in the fedsph user's folder, where that user could plant a `runuser`."""
    _need_root("the fedsph command runs as root only")
    data = tmp_path / "data"
    data.mkdir()
    marker = tmp_path / "planted-ran"
    for name in ("runuser", "setpriv", "env", "setsid", "id", "tr", "wc", "iconv", "sh", "touch",
                 "getent", "cut"):
        for folder in (data, data / "bin"):
            folder.mkdir(exist_ok=True)
            planted = folder / name
            planted.write_text(f"#!/bin/sh\necho {name} >> {marker}\n")
            planted.chmod(0o755)
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={data}\nPATH=:$PATH\nPATH=.:bin:$PATH\n")
    ran_marker = tmp_path / "program-ran"
    # The settings' PATH, then also the caller's PATH and folder, pointing at planted programs.
    for callers in ({}, {"PATH": f"{data}:bin:."}):
        env = {**_command_env(env_file, shutil.which("touch")), **callers}
        done = subprocess.run([str(DEPLOY / "fedsph-command"), str(ran_marker)], env=env,
                              cwd=data, capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        assert ran_marker.exists() and not marker.exists(), (callers, marker.read_text())
        ran_marker.unlink()
    # The program itself gets the PATH as systemd would give it: literally.
    shown = _run_command(_command_env(env_file))
    assert "\nPATH=.:bin:$PATH\n" in f"\n{shown.stdout}", shown.stdout
    assert not marker.exists()


def test_the_fedsph_command_runs_as_the_service_user_with_its_settings(tmp_path):
    """deploy/fedsph-command (installed as /usr/local/bin/fedsph): the README's `sudo fedsph …`
    steps, run against a data dir in tmp_path; only root may run it."""
    if os.geteuid() != 0:
        pytest.skip("the fedsph command switches user with runuser, which needs root")
    data = tmp_path / "data"
    env_file = tmp_path / "fedsph.env"
    # The command hands its program nothing of the caller's environment: the test database's
    # URL (PostgreSQL run) goes into the settings file, as an operator would put it there.
    env_file.write_text((DEPLOY / "fedsph.env").read_text()
                        .replace("FEDSPH_DATA_DIR=/var/lib/fedsph", f"FEDSPH_DATA_DIR={data}")
                        + "".join(f"{name}={value}\n"
                                  for name, value in testdb.node_env(data).items()))
    data.mkdir(mode=0o700)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "FEDSPH_ENV_FILE": str(env_file),
           "FEDSPH_SERVICE_USER": "root", "FEDSPH_PROGRAM": str(VENV_PROGRAM),
           "HOME": str(home), "USER": "root"}

    def fedsph(*lines: str) -> subprocess.CompletedProcess:
        """README lines run in one shell (a variable set by one is used by the next)."""
        script = "\n".join(
            line.replace("sudo fedsph ", f"{DEPLOY / 'fedsph-command'} ", 1)
            .replace("sudo -u fedsph ", "runuser -u root -- ")  # root plays the fedsph user
            .removeprefix("sudo ").replace("/var/lib/fedsph/", f"{data}/") for line in lines)
        return subprocess.run(f"set -e\n{script}", shell=True, env=env, capture_output=True,
                              text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)

    # The README's step 5, as written but for `sudo` (the test runs as root already).
    migrate, create_project, create_user, *later = readme_lines(
        ("sudo fedsph ", "BACKUP=", "NAME=", "(umask 077 && sudo -u fedsph cat "))
    assert "database is up to date" in fedsph(migrate).stdout
    assert fedsph(create_project).returncode == 0
    created = fedsph(create_user)
    assert "created user maria with password: " in created.stdout, created.stderr
    listed = fedsph("sudo fedsph project list").stdout
    assert "coop\tOur housing cooperative\thttps://coop.example.org/actors/coop" in listed, listed
    # Backups and upgrades: a dated backup copied to the admin's home folder, then two upgrades
    # (each backs up under a name of its own: `backup` refuses an existing file) and the restore
    # of the latter's backup, in the data folder the command runs in.
    backup_lines, upgrade_lines, [restore] = later[:3], later[3:6], later[6:]
    assert [line.split()[:3] for line in later] == [
        ["BACKUP=backup-$(date", "+%F-%H%M%S).tar.gz"], ["sudo", "fedsph", "backup"],
        ["(umask", "077", "&&"], ["NAME=before-upgrade-$(date", "+%F-%H%M%S).tar.gz"],
        ["sudo", "fedsph", "backup"], ["sudo", "fedsph", "migrate"],
        ["sudo", "fedsph", "restore"]], later
    days = {datetime.date.today().isoformat()}  # a run may cross midnight
    done = fedsph(*backup_lines)
    days.add(datetime.date.today().isoformat())
    assert done.returncode == 0, (backup_lines, done.stdout, done.stderr)
    [copy] = home.glob("backup-*.tar.gz")
    assert any(copy.name.startswith(f"backup-{day}-") for day in days), copy.name
    assert copy.stat().st_mode & 0o777 == 0o600 and copy.stat().st_uid == os.getuid()
    assert copy.read_bytes() == (data / copy.name).read_bytes()
    first = fedsph(*upgrade_lines)
    assert first.returncode == 0, (upgrade_lines, first.stdout, first.stderr)
    time.sleep(1)  # the names have the time to the second
    again = fedsph(*upgrade_lines, restore)
    assert again.returncode == 0, (upgrade_lines, again.stdout, again.stderr)
    assert len(list(data.glob("before-upgrade-*.tar.gz"))) == 2
    listed = fedsph("sudo fedsph project list").stdout
    assert "coop\tOur housing cooperative" in listed, listed
    refused = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              str(DEPLOY / "fedsph-command"), "project", "list"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1 and "run it with sudo" in refused.stderr



@engine_independent
def test_the_home_copy_line_reads_as_the_fedsph_user_not_root(tmp_path):
    """The copy to the home folder, run as written but with an unprivileged user (nobody) for
    fedsph: that user may write in the data folder, so the backup's name there may be a link to
    /etc/shadow. Read as that user, the link leads nowhere: nothing of it reaches the copy."""
    _need_root("switching to another user needs root")
    # Not in tmp_path: pytest's folders above it are root's alone, which nobody cannot cross.
    scratch = Path(tempfile.mkdtemp(prefix="fedsph-home-copy-"))
    try:
        _home_copy_as_nobody(scratch)
    finally:
        shutil.rmtree(scratch)


def _home_copy_as_nobody(scratch: Path) -> None:
    scratch.chmod(0o755)
    data, home = scratch / "data", scratch / "home"
    data.mkdir()
    home.mkdir()
    os.chown(data, 65534, 65534)
    name = "backup-2026-01-01-000000.tar.gz"
    (data / name).symlink_to("/etc/shadow")  # swapped in by whoever runs as the fedsph user
    [line] = readme_lines("(umask 077 && sudo -u fedsph cat ")
    script = line.replace("sudo -u fedsph ", "runuser -u nobody -- ").replace(
        "/var/lib/fedsph/", f"{data}/")
    done = subprocess.run(script, shell=True, env={"PATH": os.environ["PATH"], "HOME": str(home),
                                                   "BACKUP": name},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "Permission denied" in done.stderr, done
    copy = home / name
    assert copy.read_bytes() == b"" and copy.stat().st_mode & 0o777 == 0o600
    (data / name).unlink()
    (data / name).write_bytes(b"the real backup")  # an ordinary backup file: copied
    os.chown(data / name, 65534, 65534)
    (data / name).chmod(0o600)
    copy.unlink()
    done = subprocess.run(script, shell=True, env={"PATH": os.environ["PATH"], "HOME": str(home),
                                                   "BACKUP": name},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert copy.read_bytes() == b"the real backup" and copy.stat().st_mode & 0o777 == 0o600

def test_a_backup_from_elsewhere_is_written_by_the_fedsph_user(tmp_path):
    """The README's line that puts a backup from elsewhere into the data folder: the admin's
    shell reads the file (made 0600 by the home copy, and another account's), the fedsph user
    writes it, owner-only. `install /dev/stdin` failed here: it opens the file again, as the
    fedsph user, who may not read it."""
    _need_root("switching to another user needs root")
    scratch = Path(tempfile.mkdtemp(prefix="fedsph-from-elsewhere-"))
    try:
        scratch.chmod(0o755)
        data = scratch / "data"
        data.mkdir(mode=0o700)
        os.chown(data, 65534, 65534)
        (tmp_path / "backup.tar.gz").write_bytes(b"a backup from elsewhere")
        (tmp_path / "backup.tar.gz").chmod(0o600)  # root's, unreadable by nobody
        [line] = readme_lines("sudo -u fedsph sh -c ")
        script = line.replace("sudo -u fedsph ", "runuser -u nobody -- ").replace(
            "/var/lib/fedsph/", f"{data}/")
        done = subprocess.run(script, shell=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]},
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        put = data / "backup.tar.gz"
        assert put.read_bytes() == b"a backup from elsewhere"
        assert put.stat().st_uid == 65534 and put.stat().st_mode & 0o777 == 0o600
    finally:
        shutil.rmtree(scratch)


def test_the_upgrading_sections_backup_gets_a_new_name_each_time(tmp_path):
    """The Upgrading section's backup lines, run for two upgrades in a row: `backup` refuses an
    existing file, so each upgrade's backup has a name of its own (date and time)."""
    readme = (ROOT / "README.md").read_text()
    upgrading = readme[readme.index("## Upgrading\n"):readme.index("<!-- end upgrade -->")]
    lines = [line.strip() for line in upgrading.splitlines()
             if line.strip().startswith(("NAME=", ".venv/bin/fedsph backup "))]
    assert len(lines) == 2, lines
    data = tmp_path / "data"
    data.mkdir()
    env = {"PATH": os.environ["PATH"], "FEDSPH_DATA_DIR": str(data), **testdb.node_env(data)}
    subprocess.run([str(VENV_PROGRAM), "migrate"], env=env, check=True, capture_output=True,
                   timeout=120)
    script = "set -e\n" + "\n".join(lines).replace(".venv/bin/fedsph", str(VENV_PROGRAM))
    days = {datetime.date.today().isoformat()}  # a run may cross midnight
    for attempt in range(2):
        if attempt:
            time.sleep(1)  # the names have the time to the second
        done = subprocess.run(script, shell=True, env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, (done.stdout, done.stderr)
    days.add(datetime.date.today().isoformat())
    made = sorted(path.name for path in tmp_path.glob("fedsph-before-upgrade-*.tar.gz"))
    assert len(made) == 2 and all(
        any(name.startswith(f"fedsph-before-upgrade-{day}-") for day in days)
        for name in made), made
