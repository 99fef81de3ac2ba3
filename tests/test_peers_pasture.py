"""fedsph against fediverse-pasture 0.2.25 (real, from PyPI, run from .venv-peers).

- verify_actor: pasture's six test actors each fetch a fedsph project and POST to its inbox.
  alice and dean post unsigned (we must refuse); bob, claire, emily and frank sign their POSTs
  (we must accept). claire's and frank's documents are only served to signed GETs, so fedsph
  must sign the key fetch; emily and frank have no WebFinger account. It also checks that
  WebFinger for preferredUsername@host leads back to the actor id.
- http_signature: pasture's signature checker verifies a GET and a POST signed by fedsph,
  fetching our keys from a running fedsph node.

Both sides are real processes on 127.0.0.1: `fedsph serve` and pasture's Quart apps.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from fedsph.federation.activitystreams import AP_CONTENT_TYPE
from fedsph.federation.httpsig import sign_request
from fedsph.federation.remote import Remote, Signer, make_client_session
from tests.fakepeer import free_port
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support import testdb

pytestmark = pytest.mark.peers

PEERS_DIR = Path(__file__).parent / "peers"
DEFAULT_PEERS_PYTHON = Path(__file__).resolve().parent.parent / ".venv-peers" / "bin" / "python"


def peers_python() -> str:
    """The python of the peers venv; a missing one is a failure (`make test` installs it)."""
    configured = os.environ.get("FEDSPH_PEERS_PYTHON")
    for candidate in (configured, str(DEFAULT_PEERS_PYTHON)):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(f"fediverse-pasture is not installed: no python at FEDSPH_PEERS_PYTHON="
                f"{configured!r} nor at {DEFAULT_PEERS_PYTHON}; run `make peers`")


def http(url: str, data: bytes | None = None, headers: dict | None = None,
         timeout: float = 10) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


class PastureProcess:
    """One of pasture's Quart apps, run by a script in tests/peers/ on a free loopback port."""

    def __init__(self, script: str, work_dir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.work_dir = work_dir
        self.log = work_dir / "pasture.log"
        work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            # cwd matters: verify_actor writes its generated actor keys to ./data.toml.
            self.process = subprocess.Popen(
                [peers_python(), str(PEERS_DIR / script), str(self.port)], cwd=work_dir,
                stdout=log, stderr=subprocess.STDOUT)
        try:
            # Any HTTP answer means it is serving (the signature checker answers 401 to a bare GET).
            wait_for(lambda: self.process.poll() is not None or http(self.base + "/")[0] != 0,
                     timeout=60, what=f"fediverse-pasture {script} to start")
        except AssertionError:
            self.stop()
            raise AssertionError(f"pasture did not start:\n{self.output()}") from None
        if self.process.poll() is not None:
            raise AssertionError(f"pasture {script} exited:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def fedsph_node(tmp_path):
    node = NodeProcess(tmp_path / "fedsph")
    node.cli("migrate")
    node.cli("project", "create", "cooperativa", "--name", "Cooperativa de vivienda")
    node.start()
    yield node
    node.stop()
    assert "Traceback" not in node.server_log(), node.server_log()


@pytest.fixture
def pasture(tmp_path):
    """Factory: pasture(script) starts that pasture app; all are stopped at teardown."""
    started: list[PastureProcess] = []

    def start(script: str) -> PastureProcess:
        started.append(PastureProcess(script, tmp_path / script.removesuffix(".py")))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def local_signer(node: NodeProcess, username: str) -> Signer:
    """The key pair of a local actor, read from the node's SQLite database."""
    found = testdb.sql(node.data_dir, "SELECT key_id, private_key_pem FROM actors WHERE local "
                       "AND username = :username", username=username)
    assert found, f"no local actor {username!r}"
    return Signer(*found[0])


def ask_verify_actor(verifier: PastureProcess, actor_uri: str) -> tuple[dict, str]:
    """What pasture's web form returns as JSON: the per-actor table and its message log."""
    status, text = http(verifier.base + "/",
                        data=urllib.parse.urlencode({"actor_uri": actor_uri}).encode(),
                        headers={"Accept": "application/json",
                                 "Content-Type": "application/x-www-form-urlencoded"},
                        timeout=180)
    assert status == 200, f"verify_actor answered {status}: {text}\n{verifier.output()}"
    answer = json.loads(text)
    return answer["result"], answer["messages"]


# What pasture should report for each of its actors.
EXPECTED = {
    "alice": {"get_actor": True, "post_inbox": False},  # unsigned POST: refused
    "bob": {"get_actor": True, "post_inbox": True},
    "claire": {"get_actor": True, "post_inbox": True},  # its key needs a signed GET
    "dean": {"get_actor": True, "post_inbox": False},  # unsigned POST: refused
    "emily": {"get_actor": True, "post_inbox": True},  # no WebFinger account
    "frank": {"get_actor": True, "post_inbox": True},  # signed GET needed, no WebFinger
}


@pytest.mark.parametrize("form", ["acct", "url"])
def test_verify_actor(fedsph_node, pasture, form):
    verifier = pasture("pasture_verify.py")
    actor_uri = (f"acct:cooperativa@{fedsph_node.domain}" if form == "acct"
                 else f"{fedsph_node.base}/actors/cooperativa")

    result, messages = ask_verify_actor(verifier, actor_uri)

    context = f"\npasture messages:\n{messages}\nfedsph log:\n{fedsph_node.server_log()}"
    assert result.pop("webfinger") is True, "WebFinger did not lead back to the actor" + context
    assert result == EXPECTED, context
    # The unsigned POSTs were refused as unsigned, not for some other reason.
    assert messages.count("Got 401 for unsigned POST") == 2, context
    # claire's and frank's documents were served to fedsph because pasture verified the
    # signature of our GET, made by the instance actor.
    signed_fetches = verifier.output().count(f"Got validation result {fedsph_node.base}/actor\n")
    assert signed_fetches >= 2, verifier.output()


async def test_http_signature_accepts_signed_get_and_post(fedsph_node, pasture):
    checker = pasture("pasture_http_signature.py")
    url = checker.base + "/"
    # GETs are signed by the instance actor, POSTs by the acting project, as fedsph does.
    instance = local_signer(fedsph_node, "instance")
    project = local_signer(fedsph_node, "cooperativa")
    assert instance.key_id == f"{fedsph_node.base}/actor#main-key"

    session = make_client_session(allow_private=True, timeout=30)
    try:
        remote = Remote(session, instance, allow_private=True)

        # Remote.fetch_json hides the body of a 401, so sign the GET the way it does, by hand.
        headers = sign_request("GET", url, instance.key_id, instance.private_pem)
        async with session.get(url, headers=headers) as resp:
            status, text = resp.status, await resp.text()
        assert status == 200 and "SUCCESS!!!" in text, f"GET: {status} {text}\n{checker.output()}"

        body = json.dumps({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{fedsph_node.base}/activities/pasture-check", "type": "Like",
            "actor": f"{fedsph_node.base}/actors/cooperativa", "object": url,
        }).encode()
        result = await remote.post_signed(url, body, project)
        # 202 is the checker's only success answer (failures are 401); its full log is long.
        assert result.status == 202, f"POST: {result.status} {result.text}\n{checker.output()}"
        assert checker.output().count("SUCCESS!!!") == 2, checker.output()
        assert AP_CONTENT_TYPE in checker.output()  # it saw fedsph's real POST headers
    finally:
        await session.close()
