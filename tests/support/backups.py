"""Helpers of the SQLite backup tests (tests/test_backup.py, tests/test_backup_review2.py)."""

from __future__ import annotations

import io
import sqlite3
import tarfile


def node_and_backup(fedsph, tmp_path):
    """A node with one post, its backup, and a second post made after it."""
    node = tmp_path / "node"
    assert fedsph(node, "migrate")[0] == 0
    assert fedsph(node, "project", "create", "coop", "--name", "Coop")[0] == 0
    assert fedsph(node, "post", "coop", "--text", "Antes")[0] == 0
    archive = tmp_path / "b.tar.gz"
    assert fedsph(node, "backup", str(archive))[0] == 0
    assert fedsph(node, "post", "coop", "--text", "Después")[0] == 0
    return node, archive


def archive_members(archive) -> dict[str, bytes]:
    with tarfile.open(archive) as opened:
        return {m.name: opened.extractfile(m).read() for m in opened.getmembers() if m.isfile()}


def write_archive(archive, members: dict[str, bytes]) -> None:
    with tarfile.open(archive, "w:gz") as opened:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            opened.addfile(info, io.BytesIO(data))


def assert_unchanged(fedsph, node) -> None:
    code, out = fedsph(node, "project", "list")
    assert code == 0 and "coop" in out
    rows = sqlite3.connect(node / "fedsph.sqlite3").execute("SELECT count(*) FROM objects")
    assert rows.fetchone()[0] == 2  # the post made after the backup is still there
