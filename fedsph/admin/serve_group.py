"""`fedsph serve --processes N`: N server processes answering on one port, and their parent.

Each child is a plain `fedsph serve` that binds with SO_REUSEPORT (Linux), so the kernel spreads
new connections over them; they share nothing but the database. The in-process worker runs in
the first child only (none with --no-worker, when `fedsph worker` processes do that work), so
`serve --processes N` alone is still a whole node.

The parent only starts and stops: SIGTERM or SIGINT is passed on to every child (SIGKILL after
STOP_GRACE_SECONDS). If one child exits by itself, the parent does not restart it silently: it
logs which one and how, stops the others and exits with status 1, so the supervisor above it
(systemd, Docker's restart policy) restarts the whole group and the failure shows in its log.

Written by hand rather than run under gunicorn's aiohttp worker: gunicorn would be one more
dependency and server to learn for a volunteer, its workers are identical (our first child also
runs the queue worker), and what is left here is a loop over subprocesses and signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import fedsph
from fedsph.config import Settings
from fedsph.core.logtext import LogFormatter
from fedsph.db import is_sqlite
from fedsph.web.metrics import prepare_directory as prepare_metrics_directory

log = logging.getLogger("fedsph.serve")

STOP_GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1  # linux/prctl.h
MAX_PROCESSES = 64


def child_command(index: int, run_worker: bool) -> list[str]:
    """The argv of child `index`: only the first runs the worker (when one runs in-process)."""
    # -P: without it `-m` puts the working directory first on sys.path, and a child started in a
    # checkout (or in Docker's /data) could import another fedsph than its parent's.
    command = [sys.executable, "-P", "-m", "fedsph", "serve", "--reuse-port"]
    if index > 0 or not run_worker:
        command.append("--no-worker")
    return command


def child_env() -> dict[str, str]:
    """The parent's environment, with the folder the parent's fedsph came from first on
    PYTHONPATH only when a child would not find that same fedsph without it: a parent run as
    `python -m fedsph` in an uninstalled checkout found fedsph in its working directory, which
    -P leaves out of the children's path. Added when not needed, the checkout would come before
    site-packages for every import (its tests/ and bench/ folders too)."""
    env = dict(os.environ)
    root = Path(fedsph.__file__).resolve().parent.parent
    if not _child_finds_ours(env):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


def _child_finds_ours(env: dict[str, str]) -> bool:
    """Whether a child started as child_command starts it (-P, this environment) finds the
    parent's fedsph: asked of the interpreter itself (once per group), since what it finds
    depends on PYTHONPATH, site-packages, .pth files and editable installs' import hooks.
    find_spec only locates the package, it does not run it."""
    probe = "import importlib.util as u; s = u.find_spec('fedsph'); print(s and s.origin or '')"
    try:
        found = subprocess.run([sys.executable, "-P", "-c", probe], env=env, timeout=60,
                               capture_output=True, text=True, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False  # then PYTHONPATH names it: never wrong, at worst not needed
    return bool(found) and Path(found).resolve() == Path(fedsph.__file__).resolve()


def tag_log_lines() -> None:
    """In a child: every log line (the access log too) names the process that wrote it."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(LogFormatter(
            "%(asctime)s %(levelname)s %(name)s [pid %(process)d]: %(message)s"))


def sqlite_warning(settings: Settings, processes: int) -> str | None:
    if processes > 1 and is_sqlite(settings.effective_database_url):
        return (f"fedsph: warning: {processes} processes share one SQLite file, which lets one of "
                "them write at a time; for several processes use PostgreSQL "
                "(FEDSPH_DATABASE_URL=postgresql+asyncpg://…, see README, \"Moving to PostgreSQL\")")
    return None


async def serve_processes(settings: Settings, processes: int, run_worker: bool) -> int:
    """Start the children, wait for a signal or for one of them to exit, stop them all."""
    warning = sqlite_warning(settings, processes)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if settings.metrics_enabled:  # one directory the children share (fedsph/web/metrics.py)
        prepare_metrics_directory(settings, fresh=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    env = child_env()  # one for all: it asks the interpreter once
    children = [await asyncio.create_subprocess_exec(*child_command(i, run_worker),
                                                     env=env, preexec_fn=_end_with_parent)
                for i in range(processes)]
    print(f"fedsph: started {processes} server processes (pids "
          f"{', '.join(str(c.pid) for c in children)}) on {settings.host}:{settings.port}"
          f"{'' if run_worker else ', no worker'}", flush=True)
    waits = {asyncio.create_task(child.wait()): child for child in children}
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopping, *waits], return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if not stop.is_set():  # a child exited by itself (not our signal, which all got on Ctrl-C)
        for task in done:
            child = waits[task]
            log.error("server process %s exited with status %s; stopping the others (not "
                      "restarted here: let systemd or Docker restart the node)", child.pid,
                      child.returncode)
        status = 1
    stopping.cancel()
    await _stop_all(children)
    return status


def _end_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the parent dies, even by SIGKILL, so no
    server process is left answering on the port with nobody watching it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def _stop_all(children: list[asyncio.subprocess.Process]) -> None:
    for child in children:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            await asyncio.wait_for(child.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
