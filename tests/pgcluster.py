"""A throwaway PostgreSQL cluster for the tests, started from Debian's server binaries.

PostgreSQL refuses to run as root, so when the tests run as root the cluster is created and
started as the `postgres` user, in a temporary directory that user owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.fakepeer import free_port

PG_BIN = Path(os.environ.get("FEDSPH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _run(args: list[str], what: str) -> None:
    """Run a server command; on failure show what PostgreSQL said instead of a bare exit code."""
    result = subprocess.run(_as_postgres(args), check=False, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def pg_server():
    """Start a cluster on a free loopback port; yields the server URL without a database."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL server binaries not found in {PG_BIN} (make test installs them)")
    workdir = Path(tempfile.mkdtemp(prefix="fedsph-pg-"))
    datadir = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    os.chmod(workdir, 0o700)
    port = free_port()
    _run([str(PG_BIN / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres",
          "--no-sync", "-E", "UTF8"], "initdb")
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        _run([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-o", options, "-l",
              str(workdir / "log"), "-w", "start"], "pg_ctl start")
    except BaseException:
        log = workdir / "log"
        print(log.read_text() if log.exists() else "no server log")
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate",
                                     "-w", "stop"]), check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def pg_database_url(pg_server):
    """A fresh, empty database on the test cluster, as an SQLAlchemy asyncpg URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(pg_server + "/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield pg_server.replace("postgresql://", "postgresql+asyncpg://") + "/" + name
