"""Real `fedsph` processes for end-to-end tests: each node has its own data dir and port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.fakepeer import free_port
from tests.support import testdb


class NodeProcess:
    """One fedsph node: CLI commands run as subprocesses, `serve` as a long-running one."""

    def __init__(self, data_dir: Path, port: int | None = None, **env):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.domain = f"127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {**os.environ, "FEDSPH_DATA_DIR": str(data_dir), "FEDSPH_PORT": str(self.port),
                    "FEDSPH_BASE_URL": self.base, "FEDSPH_ALLOW_PRIVATE_NETWORKS": "1",
                    "FEDSPH_RETRY_BASE_SECONDS": "1", **testdb.node_env(data_dir), **env}
        self.server: subprocess.Popen | None = None
        self.log = data_dir / "serve.log"
        # Put before every command (a sandbox, another user): tests/test_deploy_hardening.py.
        self.command_prefix: list[str] = []

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.command_prefix, sys.executable, "-m", "fedsph", *args],
                                env=self.env, input=stdin, check=False,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"fedsph {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def start(self, *serve_args: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            self.server = subprocess.Popen([*self.command_prefix, sys.executable, "-m", "fedsph",
                                            "serve", *serve_args], env=self.env,
                                           stdout=log, stderr=subprocess.STDOUT)
        # Generous: on a busy 2-core machine importing and migrating alone has taken over 30 s.
        wait_for(lambda: self.get("/.well-known/nodeinfo")[0] == 200, timeout=90,
                 what=f"node on port {self.port} to start")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as in a power cut."""
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGKILL)
            self.server.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.server)

    def get(self, path: str, accept: str = "application/activity+json") -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, ""

    def html(self, path: str = "/") -> str:
        return self.get(path, accept="text/html")[1]

    def server_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM, and SIGKILL if it has not exited within 10 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_for(predicate, timeout: float = 30, what: str = "condition", interval: float = 0.2):
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
