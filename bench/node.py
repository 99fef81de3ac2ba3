"""A real fedsph node for benchmarks: `fedsph migrate`, `project create`, `serve --no-worker`."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from bench.common import PYTHON, ROOT, free_port, http_get, start, stop, wait_for

PROJECT = "bench"


class BenchNode:
    def __init__(self, data_dir: Path, config, database_url: str = ""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.domain = f"127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            "FEDSPH_DATA_DIR": str(data_dir), "FEDSPH_PORT": str(self.port),
            "FEDSPH_HOST": "127.0.0.1", "FEDSPH_BASE_URL": self.base,
            # The sinks live on loopback, which fedsph refuses to contact unless told otherwise.
            "FEDSPH_ALLOW_PRIVATE_NETWORKS": "1",
            "FEDSPH_DELIVERY_CONCURRENCY": str(config.concurrency),
            "FEDSPH_WORKER_BATCH": str(config.worker_batch),
        }
        if database_url:  # empty: SQLite in data_dir, as `make run` has it
            self.env["FEDSPH_DATABASE_URL"] = database_url
        self.server = None

    @property
    def actor_url(self) -> str:
        return f"{self.base}/actors/{PROJECT}"

    @property
    def webfinger_url(self) -> str:
        return f"{self.base}/.well-known/webfinger?resource=acct:{PROJECT}@{self.domain}"

    def cli(self, *args: str) -> None:
        import os

        subprocess.run([PYTHON, "-m", "fedsph", *args], env={**os.environ, **self.env}, cwd=ROOT,
                       check=True, capture_output=True, timeout=120)

    def setup(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cli("migrate")
        self.cli("project", "create", PROJECT, "--name", "Bench")

    def serve(self) -> None:
        self.server = start([PYTHON, "-m", "fedsph", "serve", "--no-worker"], env=self.env,
                            log=self.data_dir / "serve.log")
        wait_for(lambda: http_get(self.actor_url)[0] == 200, what="fedsph serve", proc=self.server)

    def stop(self) -> None:
        stop(self.server)

    def settings(self):
        from fedsph.config import load_settings

        return load_settings(environ=self.env)

    def project_key(self) -> tuple[str, str, str]:
        """(key_id, private PEM, public PEM) of the project actor, read from the database."""
        return asyncio.run(self._project_key())

    async def _project_key(self):
        from fedsph.db import make_engine, make_sessionmaker
        from fedsph.federation.actors import get_local_actor

        engine = make_engine(self.settings())
        try:
            async with make_sessionmaker(engine)() as db:
                actor = await get_local_actor(db, PROJECT)
                return actor.key_id, actor.private_key_pem, actor.public_key_pem
        finally:
            await engine.dispose()
