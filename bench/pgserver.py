"""A throwaway PostgreSQL cluster for the benchmarks, from Debian's server binaries.

PostgreSQL refuses to run as root, so as root the cluster is created and run as `postgres`.
The benchmarks start one per run and give each measured node a fresh database on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Self

from bench.common import free_port

PG_BIN = Path(os.environ.get("FEDSPH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgresCluster:
    """`with PostgresCluster() as pg: url = pg.new_database()` (an SQLAlchemy asyncpg URL)."""

    def __init__(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="fedsph-bench-pg-"))
        self.datadir = self.workdir / "data"
        self.port = free_port()

    def __enter__(self) -> Self:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} (make postgres-server)")
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        os.chmod(self.workdir, 0o700)
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.datadir), "-A",
                                     "trust", "-U", "postgres", "-E", "UTF8"]),
                       check=True, capture_output=True)
        # Durable settings as a real server has them (fsync on): the figures must be honest.
        options = (f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=300")
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-o", options,
                                     "-l", str(self.workdir / "log"), "-w", "start"]),
                       check=True, capture_output=True)
        return self

    def new_database(self) -> str:
        name = "bench_" + uuid.uuid4().hex[:10]
        subprocess.run(_as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p",
                                     str(self.port), "-U", "postgres", name]),
                       check=True, capture_output=True)
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def __exit__(self, *exc) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m",
                                     "immediate", "-w", "stop"]), check=False, capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
