"""The systemd units' hardening still lets a node work (issue 14, item 4). The test machines run
no systemd, so this builds the same view of the system by hand and runs the node in it: every
file system read-only but the data dir (ProtectSystem=strict with ReadWritePaths; /tmp too,
stricter than the units' PrivateTmp), an unprivileged user (User=fedsph; here `nobody`), no
capabilities (CapabilityBoundingSet=) and NoNewPrivileges. In it `fedsph migrate`, the command
line, `serve --no-worker` and `fedsph worker` run as the units run them: a photo is stored, a
post made, and a follow delivered to another server by the worker.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mastodon import Mastodon

from tests.fakepeer import FakePeer
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support import testdb
from tests.support.images import jpeg

pytestmark = pytest.mark.e2e

NOBODY = 65534
PASSWORD = "correct horse battery"
# Run as `unshare --mount … sh -c SANDBOX sandbox DATA_DIR COMMAND…`: in a mount namespace of its
# own, the data dir stays writable and every other mount becomes read-only (the kernel's own
# /proc, /sys and /dev aside, as systemd leaves them); a probe checks it before the command runs.
SANDBOX = """set -eu
data="$1"; shift
mount --bind "$data" "$data"
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r point; do
    case "$point" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$data") continue;; esac
    mount -o remount,bind,ro "$point"
done
for probe in / /tmp /var/tmp "$(dirname "$data")" "$PWD"; do
    if touch "$probe/.fedsph-probe" 2>/dev/null; then echo "still writable: $probe" >&2; exit 3; fi
done
exec setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --bounding-set=-all \
    --inh-caps=-all "$@"
"""


@pytest.fixture
def data_dir():
    if os.geteuid() != 0:
        pytest.skip("building the units' sandbox (a mount namespace, another user) needs root")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespaces here: {probe.stderr.decode().strip()}")
    # In /tmp itself (not pytest's root-only folder), so that `nobody` can reach it.
    folder = Path(tempfile.mkdtemp(prefix="fedsph-hardening-"))
    os.chown(folder, NOBODY, NOBODY)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_a_node_works_in_the_units_sandbox(data_dir):
    # systemd sets HOME to the user's home, /var/lib/fedsph: the data dir (asyncpg looks there
    # for client certificates, and `nobody` may not read root's).
    node = NodeProcess(data_dir, HOME=str(data_dir))
    node.command_prefix = ["unshare", "--mount", "--propagation", "private",
                           "sh", "-c", SANDBOX, "sandbox", str(data_dir)]
    peer = await FakePeer().start()
    bob = peer.add_actor("bob")
    worker = None
    try:
        for args, stdin in ((("migrate",), None),
                            (("project", "create", "coop", "--name", "Coop"), None),
                            (("user", "create", "ana", "--password-stdin", "--project", "coop"),
                             PASSWORD + "\n")):
            await asyncio.to_thread(node.cli, *args, stdin=stdin)
        if not testdb.on_postgresql():
            assert (data_dir / "fedsph.sqlite3").stat().st_uid == NOBODY
        await asyncio.to_thread(node.start, "--no-worker")
        worker = await asyncio.to_thread(_start_worker, node)

        # The web process writes the database and the photos' files.
        await asyncio.to_thread(_post_with_photo, node)
        photos = [path for path in (data_dir / "media").rglob("*") if path.is_file()]
        assert photos and all(path.stat().st_uid == NOBODY for path in photos)

        # The command line and the worker: a follow fetched and delivered to another server.
        await asyncio.to_thread(node.cli, "follow", "coop", bob.uri)
        await asyncio.to_thread(wait_for, lambda: any(
            r.activity.get("type") == "Follow" for r in peer.received), 60,
            "the worker to deliver the Follow")
        assert worker.poll() is None and node.server.poll() is None
    finally:
        stop_process(worker)
        node.stop()
        await peer.stop()
    logs = node.server_log() + (data_dir / "worker.log").read_text()
    assert "Traceback" not in logs and "Read-only file system" not in logs, logs[-3000:]


def _start_worker(node: NodeProcess) -> subprocess.Popen:
    with open(node.data_dir / "worker.log", "a") as log:
        return subprocess.Popen([*node.command_prefix, sys.executable, "-m", "fedsph", "worker"],
                                env=node.env, stdout=log, stderr=subprocess.STDOUT)


def _post_with_photo(node: NodeProcess) -> None:
    client_id, client_secret = Mastodon.create_app("hardening test", api_base_url=node.base)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=node.base)
    api.log_in("ana", PASSWORD, allow_http=True, scopes=["read", "write"])
    media = api.media_post(jpeg(), mime_type="image/jpeg", description="The new roof")
    status = api.status_post("Roof done", media_ids=[media.id])
    assert [attachment.description for attachment in status.media_attachments] == ["The new roof"]
