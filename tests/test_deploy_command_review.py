"""deploy/fedsph-command, review round 5: the program (as the fedsph user) is never handed a
descriptor of root's terminal, even when only some of stdin/stdout/stderr are one; Ctrl-C
reaches a Python program as KeyboardInterrupt; the group comes from the passwd entry's gid."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import wait_for
from tests.support import testdb

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
# As in tests/test_deploy_command.py: the command does not depend on the database engine.
engine_independent = testdb.sqlite_run_only("deploy/ files do not depend on the database engine")


def _need_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(why)


def _command_env(env_file: Path, program: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "FEDSPH_ENV_FILE": str(env_file),
            "FEDSPH_SERVICE_USER": "root", "FEDSPH_PROGRAM": program}


FD_PROBE = ("for fd in 0 1 2; do [ -t $fd ] && echo FD$fd-IS-A-TERMINAL; done; "
            "echo to-stdout; echo to-stderr >&2; exit 3")


def _settings(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    env_file = tmp_path / "fedsph.env"
    env_file.write_text(f"FEDSPH_DATA_DIR={tmp_path}/data\n")
    return env_file


def _from_terminal(env_file: Path, stdin: str, stdout: str, stderr: str, probe: str = FD_PROBE):
    """Run the probe from a new controlling terminal, each of stdin/stdout/stderr on it or not;
    the command's result and what appeared on the terminal."""
    primary, secondary = os.openpty()
    try:
        pick = {"terminal": secondary, "pipe": subprocess.PIPE}
        # setsid --ctty takes the terminal from stdin: a stdin of /dev/null comes after it
        then = ["sh", "-c", 'exec "$0" "$@" </dev/null'] if stdin == "null" else []
        ran = subprocess.run(
            ["setsid", "--wait", "--ctty", *then, str(DEPLOY / "fedsph-command"), "-c",
             probe],
            env={**_command_env(env_file, shutil.which("sh")), "PATH": os.environ["PATH"]},
            stdin=secondary,
            stdout=pick[stdout], stderr=pick[stderr], text=True, timeout=60, check=False)
        os.close(secondary)
        shown = b""
        while True:
            try:
                piece = os.read(primary, 4096)
            except OSError:  # EIO: no more writers
                break
            if not piece:
                break
            shown += piece
    finally:
        os.close(primary)
    return ran, shown.decode()


@pytest.mark.parametrize("stdin, stdout, stderr", [
    ("terminal", "terminal", "pipe"), ("terminal", "pipe", "terminal"),
    ("terminal", "pipe", "pipe"), ("null", "terminal", "terminal"),
    ("null", "terminal", "pipe")])
@engine_independent
def test_the_program_gets_no_descriptor_of_roots_terminal(tmp_path, stdin, stdout, stderr):
    """Only some of the three on root's terminal (`sudo fedsph x > file`, `… 2>log`, `echo y |
    sudo fedsph …`): none reaches the program as a terminal (stdin becomes /dev/null, output is
    relayed by root's cat), the output still shows on the terminal, in order, line ends kept,
    and the program's exit status is the command's."""
    _need_root("the fedsph command runs as root only")
    ran, shown = _from_terminal(_settings(tmp_path), stdin, stdout, stderr)
    assert ran.returncode == 3, (ran, shown)
    assert "IS-A-TERMINAL" not in shown + (ran.stdout or "") + (ran.stderr or ""), shown
    assert "to-stdout" in (shown if stdout == "terminal" else ran.stdout)
    assert "to-stderr" in (shown if stderr == "terminal" else ran.stderr)
    if stdout == "pipe":
        assert ran.stdout == "to-stdout\n"


# The mark is written inside the try, and the test waits for its text, not for the file: open()
# makes the file before the write, and a Ctrl-C sent then (a loaded machine once did) came
# before the program could catch it.
PYTHON_PROGRAM = """
import sys, time
try:
    open(sys.argv[1], "w").write("started")
    time.sleep(60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(9)
"""


@engine_independent
def test_ctrl_c_reaches_a_python_program_as_keyboard_interrupt(tmp_path):
    """The program runs as a background job of sh (INT ignored there) in a session of its own:
    the command restores INT and passes Ctrl-C on as INT to the program's group, so Python
    raises KeyboardInterrupt and cleans up; its status is the command's."""
    _need_root("the fedsph command runs as root only")
    env_file = _settings(tmp_path)
    started = tmp_path / "started"
    command = subprocess.Popen(
        [str(DEPLOY / "fedsph-command"), "-c", PYTHON_PROGRAM, str(started)],
        env=_command_env(env_file, sys.executable), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: started.exists() and started.read_text() == "started",
                 what="the program to start")
        os.killpg(command.pid, signal.SIGINT)  # Ctrl-C: the terminal's foreground group
        out, err = command.communicate(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert (command.returncode, out) == (9, "interrupted\n"), err


@engine_independent
def test_ctrl_backslash_ends_the_program_not_only_the_command(tmp_path):
    """QUIT (Ctrl-\\) reaches only the command (the program is in a session of its own): the
    command passes it on as TERM and waits, so the program does not run on unwatched."""
    _need_root("the fedsph command runs as root only")
    env_file = _settings(tmp_path)
    started = tmp_path / "started"
    program = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    command = subprocess.Popen(
        [str(DEPLOY / "fedsph-command"), "-c", program, str(started)],
        env=_command_env(env_file, sys.executable), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: started.exists() and started.read_text(), what="the program to start")
        os.killpg(command.pid, signal.SIGQUIT)
        command.communicate(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert command.returncode == 128 + signal.SIGTERM
    assert not Path(f"/proc/{started.read_text()}").exists()


@engine_independent
def test_output_left_open_by_a_leftover_process_does_not_hold_the_command(tmp_path):
    """Something the program left running keeps its output open: root's relays get a few
    seconds, then end, and the command returns with the program's status."""
    _need_root("the fedsph command runs as root only")
    leftover = tmp_path / "leftover"
    try:
        began = time.monotonic()
        ran, shown = _from_terminal(_settings(tmp_path), "null", "terminal", "terminal",
                                    probe=f"sleep 60 & echo $! > {leftover}; echo done; exit 4")
        assert ran.returncode == 4 and "done" in shown, (ran, shown)
        assert time.monotonic() - began < 30  # not the leftover's 60 s
    finally:
        if leftover.exists():
            subprocess.run(["kill", leftover.read_text().strip()], check=False)


@engine_independent
def test_the_program_runs_with_the_group_of_the_users_passwd_entry():
    """nobody's group is nogroup (65534): there is no group named nobody, which --regid=nobody
    asked for."""
    _need_root("switching to another user needs root")
    scratch = Path(tempfile.mkdtemp(prefix="fedsph-regid-"))
    try:
        scratch.chmod(0o755)
        (scratch / "data").mkdir()
        env_file = scratch / "fedsph.env"
        env_file.write_text(f"FEDSPH_DATA_DIR={scratch}/data\n")
        ran = subprocess.run([str(DEPLOY / "fedsph-command"), "-c", "id -u; id -g"],
                             env={**_command_env(env_file, "/bin/sh"),
                                  "FEDSPH_SERVICE_USER": "nobody"},
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=60, check=False)
    finally:
        shutil.rmtree(scratch)
    assert (ran.returncode, ran.stdout) == (0, "65534\n65534\n"), ran.stderr
