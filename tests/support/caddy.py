"""Debian's Caddy in front of real nodes, configured from the shipped deploy/Caddyfile, with its
internal certificate authority: what tests/test_deploy_caddy.py needs to run HTTPS end to end.

Each node gets the shipped site block with only its name and upstream replaced (and a `bind`, so
the test listens on its own loopback address alone). The global options make it a test: the
internal authority instead of Let's Encrypt (`local_certs`), nothing added to the system's trust
store, no admin endpoint, no port 80, and Caddy's storage in the test's folder.
"""

from __future__ import annotations

import http.client
import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from tests.processes import stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "Caddyfile"
SHIPPED_NAME, SHIPPED_UPSTREAM = "coop.example.org", "127.0.0.1:8080"
TEST_OPTIONS = """{
	admin off
	local_certs
	skip_install_trust
	auto_https disable_redirects
}
"""


def shipped_site_block() -> str:
    """The site block of deploy/Caddyfile, as shipped."""
    text = SHIPPED.read_text()
    match = re.search(rf"^{re.escape(SHIPPED_NAME)} \{{\n.*?^\}}\n", text, re.MULTILINE | re.DOTALL)
    assert match, f"no `{SHIPPED_NAME} {{ … }}` site block in {SHIPPED}"
    block = match.group(0)
    assert block.count(SHIPPED_UPSTREAM) == 1, "the site block should name its upstream once"
    return block


def site_for(address: str, upstream: str) -> str:
    """The shipped block for https://ADDRESS, proxying to UPSTREAM, listening on ADDRESS only."""
    block = shipped_site_block()
    return (block.replace(f"{SHIPPED_NAME} {{\n", f"https://{address} {{\n\tbind {address}\n", 1)
            .replace(SHIPPED_UPSTREAM, upstream))


def readme_lines(prefix: str | tuple[str, ...]) -> list[str]:
    """The command lines of the README's "Deploy" section that start with `prefix` (or one of
    them), in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploy\n"):readme.index("<!-- /Deploy -->")]
    return [line.split("  #")[0].strip() for line in section.splitlines()
            if line.startswith(prefix)]


def loopback_addresses(count: int) -> list[str]:
    """`count` loopback addresses whose port 443 is free, in a range of this xdist worker's and
    engine's own (tests/fakepeer.py splits ports the same way). Skips without the right to bind
    port 443 (not root, no CAP_NET_BIND_SERVICE)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    engine = 1 if os.environ.get("FEDSPH_TEST_DATABASE", "").lower().startswith("p") else 0
    first = 10 + engine * 120 + (int(worker) % 12 if worker.isdigit() else 0) * 10
    for third in range(first, first + 10):
        addresses = [f"127.0.{third}.{n}" for n in range(2, 2 + count)]
        try:
            for address in addresses:
                with socket.socket() as sock:
                    sock.bind((address, 443))
        except PermissionError:
            pytest.skip("binding port 443 needs root or CAP_NET_BIND_SERVICE; the Caddy test "
                        "serves real https:// URLs on the default port")
        except OSError:
            continue  # another run holds one of them
        return addresses
    # Checked only now: a listener on [::]:443 that is IPv6-only leaves the IPv4 loopback
    # addresses free (the binds above succeed); a dual-stack one, or 0.0.0.0:443, takes them.
    if _wildcard_listener_on_443():
        pytest.skip("something listens on port 443 of every address (a web server on this "
                    "machine?): the test needs port 443 of loopback addresses of its own")
    raise AssertionError(f"port 443 is taken on every address of 127.0.{first}-{first + 9}.*")


def _wildcard_listener_on_443() -> bool:
    """A socket listening on *:443 (0.0.0.0 or ::), which takes port 443 of every address."""
    for table, wildcard in (("/proc/net/tcp", "00000000"), ("/proc/net/tcp6", "0" * 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local == f"{wildcard}:01BB":  # LISTEN on port 443
                return True
    return False


class Caddy:
    """One `caddy run` serving `sites` ({address: upstream}) with its internal authority."""

    def __init__(self, folder: Path, sites: dict[str, str]):
        for tool in ("caddy", "curl"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed (`make tls-proxies` installs it)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "Caddyfile"
        self.config.write_text(TEST_OPTIONS + "\n" + "\n".join(
            site_for(address, upstream) for address, upstream in sites.items()))
        self.sites = sites
        self.log = folder / "caddy.log"
        self.env = {**os.environ, "HOME": str(folder), "XDG_DATA_HOME": str(folder / "data"),
                    "XDG_CONFIG_HOME": str(folder / "config")}
        self.process: subprocess.Popen | None = None

    @property
    def root_certificate(self) -> Path:
        """The internal authority's root (what FEDSPH_CA_BUNDLE names), once Caddy made it."""
        return self.folder / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                ["caddy", "run", "--adapter", "caddyfile", "--config", str(self.config)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.process.poll() is not None or self.root_certificate.exists(),
                 timeout=60, what="Caddy to make its authority")
        assert self.process.poll() is None, f"caddy exited:\n{self.log.read_text()}"
        for address in self.sites:
            wait_for(lambda address=address: self._handshake(address), timeout=60,
                     what=f"Caddy's certificate for {address}")

    def _handshake(self, address: str) -> bool:
        try:
            with socket.create_connection((address, 443), timeout=5) as sock, \
                    self.client_context().wrap_socket(sock, server_hostname=address):
                return True
        except (OSError, ssl.SSLError):
            return False

    def client_context(self) -> ssl.SSLContext:
        """Trusts the internal authority only (not the system's): a visitor who added it."""
        return ssl.create_default_context(cafile=str(self.root_certificate))

    def request(self, method: str, url: str, headers: dict | None = None,
                source: str | None = None, body: bytes | None = None) -> tuple[int, dict, str]:
        """(status, headers, body) of one HTTPS request through Caddy, from `source` if given."""
        host = re.match(r"https://([^/]+)", url).group(1)
        connection = http.client.HTTPSConnection(
            host, 443, timeout=15, context=self.client_context(),
            source_address=(source, 0) if source else None)
        try:
            connection.request(method, url.removeprefix(f"https://{host}") or "/",
                               body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()

    def stop(self) -> None:
        stop_process(self.process)

    def logged(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class CountingUpstream:
    """A plain HTTP server that reads every request body to its end and records its length:
    what Caddy passed on of a body past the Caddyfile's `request_body` limit."""

    def __init__(self, port: int):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length, left = 0, int(self.headers.get("Content-Length", "0"))
                try:
                    while left > 0 and (chunk := self.rfile.read(min(left, 1 << 20))):
                        length += len(chunk)
                        left -= len(chunk)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # Caddy cut the body off: what counts is how much came
                finally:
                    received.append(length)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
