"""Interop with a real bovine-herd server (PyPI bovine-herd 0.5.19) on loopback over http.

A bovine user follows a fedsph project and receives its update; a fedsph project follows the
bovine user and shows that user's post. bovine runs from .venv-peers as its own process
(tests/peers/bovine_driver.py); fedsph runs as a real `fedsph serve` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest
from mastodon import MastodonNotFoundError

from tests.fakepeer import free_port
from tests.mastodon_client import PASSWORD, logged_in
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support import testdb

pytestmark = pytest.mark.peers

DRIVER = Path(__file__).parent / "peers" / "bovine_driver.py"
# Each inbox poll is a fresh peers-python process; leave room for a loaded machine.
STEP_TIMEOUT = 60
DEFAULT_PEERS_PYTHON = Path(__file__).resolve().parent.parent / ".venv-peers" / "bin" / "python"


def peers_python() -> str:
    python = os.environ.get("FEDSPH_PEERS_PYTHON") or str(DEFAULT_PEERS_PYTHON)
    if not Path(python).is_file():
        pytest.fail(f"peers python not found at {python}: run `make peers` (it installs "
                    "bovine-herd into .venv-peers) or set FEDSPH_PEERS_PYTHON")
    return python


class Bovine:
    """One bovine-herd server and one user on it, driven through the driver script."""

    def __init__(self, data_dir: Path):
        self.python = peers_python()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.domain = f"127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = data_dir / "bovine.sqlite3"
        self.log = data_dir / "bovine.log"
        self.server: subprocess.Popen | None = None
        self.actor_id = self.secret = ""

    def run(self, *args: str) -> object:
        result = subprocess.run([self.python, str(DRIVER), *args], capture_output=True,
                                text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise AssertionError(f"bovine_driver {args[0]} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}\n--- server log ---\n"
                                 f"{self.server_log()}")
        return json.loads(result.stdout)

    def client(self, command: str, *args: str) -> object:
        return self.run(command, "--base", self.base, "--secret", self.secret, *args)

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.server = subprocess.Popen(
                [self.python, str(DRIVER), "serve", "--db", str(self.db), "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.server.poll() is not None or self.nodeinfo_ok(), timeout=60,
                 what="bovine-herd to start")
        assert self.server.poll() is None, f"bovine-herd exited:\n{self.server_log()}"

    def nodeinfo_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/.well-known/nodeinfo", timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def register(self, handle: str) -> None:
        user = self.run("register", "--db", str(self.db), "--base", self.base, "--handle", handle)
        self.actor_id, self.secret = user["actor_id"], user["secret"]

    def inbox(self) -> list[dict]:
        return self.client("inbox")

    def stop(self) -> None:
        stop_process(self.server)

    def server_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


# One bovine server and one fedsph node for the module: starting them is most of the cost. The two
# tests touch disjoint relations (bovine -> beta, alpha -> bovine), so their order does not matter.
@pytest.fixture(scope="module")
def bovine(tmp_path_factory):
    peer = Bovine(tmp_path_factory.mktemp("bovine"))
    peer.start()
    peer.register("moocow")
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def fedsph(tmp_path_factory):
    node = NodeProcess(tmp_path_factory.mktemp("fedsph"))
    node.cli("migrate")
    node.cli("project", "create", "alpha", "--name", "Project Alpha")
    node.cli("project", "create", "beta", "--name", "Project Beta")
    for name in ("dora", "enzo"):  # issue 13: a DM addressed on the activity alone
        node.cli("user", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
    node.start()
    yield node
    node.stop()


def collection_items(node: NodeProcess, path: str) -> list:
    status, body = node.get(path + "?page=1")
    return json.loads(body)["orderedItems"] if status == 200 else []


def eventually(predicate, what: str, fedsph: NodeProcess, bovine: Bovine):
    """wait_for with both servers' logs in the failure message: they say which side dropped what."""
    try:
        return wait_for(predicate, timeout=STEP_TIMEOUT, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- fedsph ---\n{fedsph.server_log()}\n"
                             f"--- bovine ---\n{bovine.server_log()}") from None


def created_note_with(text: str, activities: list[dict]) -> dict | None:
    for activity in activities:
        note = activity.get("object")
        if activity.get("type") == "Create" and isinstance(note, dict) and text in str(
                note.get("content", "")):
            return note
    return None


def test_bovine_follows_fedsph_project_and_receives_its_update(bovine, fedsph):
    beta = f"{fedsph.base}/actors/beta"

    bovine.client("follow", beta)
    eventually(lambda: bovine.actor_id in collection_items(fedsph, "/actors/beta/followers"),
               "fedsph to accept bovine's Follow", fedsph, bovine)
    eventually(lambda: any(a.get("type") == "Accept" for a in bovine.inbox()),
               "fedsph's Accept to reach bovine's inbox", fedsph, bovine)

    url = fedsph.cli("post", "beta", "--text", "Mutirão no sábado: tragam pás").stdout.strip()
    note = eventually(lambda: created_note_with("Mutirão no sábado", bovine.inbox()),
                      "the Create{Note} to reach bovine's inbox", fedsph, bovine)
    assert note["id"] == url
    assert note["attributedTo"] == beta
    assert "Traceback" not in fedsph.server_log()


def test_fedsph_project_follows_bovine_user_and_shows_its_post(bovine, fedsph):
    out = fedsph.cli("follow", "alpha", f"moocow@{bovine.domain}").stdout
    assert "pending" in out
    # bovine-herd never accepts on its own: its user (a client) posts the Accept to the outbox.
    eventually(lambda: any(a.get("type") == "Follow" for a in bovine.inbox()),
               "fedsph's Follow to reach bovine's inbox", fedsph, bovine)
    assert bovine.client("accept-follows")["accepted"] == [f"{fedsph.base}/actors/alpha"]
    eventually(lambda: bovine.actor_id in collection_items(fedsph, "/actors/alpha/following"),
               "bovine's Accept to reach fedsph", fedsph, bovine)

    bovine.client("post", "Ordenhando as vacas ao amanhecer")
    eventually(lambda: "Ordenhando as vacas ao amanhecer" in fedsph.html("/"),
               "bovine's post to show on fedsph's home page", fedsph, bovine)
    assert "Traceback" not in fedsph.server_log()


def test_bovine_dm_addressed_on_the_activity_alone_reaches_only_its_addressee(bovine, fedsph):
    """bovine's client posts a Create whose Note has no `to`/`cc`; bovine delivers it by the
    activity's `to` (dora). fedsph keeps it as a direct message for dora alone, with a mention
    notification; enzo, on the same node, sees nothing of it."""
    dora, enzo = logged_in(fedsph, "dora"), logged_in(fedsph, "enzo")
    bovine.client("post-direct", f"{fedsph.base}/actors/dora", "Só para ti: a chave está no vaso")
    [mention] = eventually(lambda: dora.notifications(types=["mention"]),
                           "bovine's DM to reach dora", fedsph, bovine)
    assert mention.status.visibility == "direct" and "chave" in mention.status.content
    assert mention.account.acct == f"moocow@{bovine.domain}"
    creates = testdb.sql(fedsph.data_dir, "SELECT body FROM inbox_items WHERE type = 'Create' "
                         "AND actor_uri = :actor", actor=bovine.actor_id)
    [received] = [json.loads(bytes(body)) for (body,) in creates if b"chave" in bytes(body)]
    dora_uri = f"{fedsph.base}/actors/dora"
    assert received["to"] in (dora_uri, [dora_uri])  # addressed on the activity (compacted)...
    assert isinstance(received["object"], dict) and not received["object"].get("to")  # alone
    assert [c.last_status.id for c in dora.conversations()] == [mention.status.id]
    with pytest.raises(MastodonNotFoundError):
        enzo.status(mention.status.id)
    assert enzo.notifications() == [] and enzo.conversations() == []
    assert "Traceback" not in fedsph.server_log()
