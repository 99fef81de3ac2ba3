"""The database, data dir, photos and backups are owner-only (0600/0700), whatever the umask."""

from __future__ import annotations

import asyncio
import os
import stat
import tarfile

import pytest

from fedsph.admin import backup
from fedsph.admin import node as admin_node
from fedsph.db import make_engine
from fedsph.projects.media import _write_atomically, media_dir
from tests.support.nodes import make_settings, start_node

# About the SQLite file's own permissions (and the backups that copy it).
pytestmark = pytest.mark.sqlite

DATABASE = "fedsph.sqlite3"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask():
    """The umask of many shells and services: new files readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_migrate_makes_an_owner_only_data_dir_and_database(tmp_path, permissive_umask):
    settings = make_settings(tmp_path / "data")
    admin_node.migrate(settings)
    assert mode(settings.data_dir) == 0o700
    assert mode(settings.data_dir / DATABASE) == 0o600
    for companion in ("-wal", "-shm"):
        path = settings.data_dir / (DATABASE + companion)
        assert not path.exists() or mode(path) == 0o600


async def test_a_world_readable_database_from_an_older_version_is_closed(tmp_path,
                                                                        permissive_umask):
    settings = make_settings(tmp_path / "data")
    await asyncio.to_thread(admin_node.migrate, settings)  # Alembic runs its own event loop
    (settings.data_dir / DATABASE).chmod(0o644)
    settings.data_dir.chmod(0o755)
    await make_engine(settings).dispose()
    assert mode(settings.data_dir / DATABASE) == 0o600
    assert mode(settings.data_dir) == 0o700


async def test_a_running_node_keeps_its_files_owner_only(tmp_path, permissive_umask):
    node = await start_node(make_settings(tmp_path))
    try:
        await node.create_actor("coop")  # a write: SQLite makes its -wal and -shm now
        data = node.settings.data_dir
        for name in os.listdir(data):
            if name.startswith(DATABASE):
                assert mode(data / name) == 0o600, name
    finally:
        await node.runner.cleanup()


def test_photos_live_in_an_owner_only_directory(tmp_path, permissive_umask):
    settings = make_settings(tmp_path / "data")
    _write_atomically(media_dir(settings), "abc.webp", b"RIFF")
    assert mode(media_dir(settings)) == 0o700


def test_backups_and_restores_are_owner_only(tmp_path, permissive_umask):
    settings = make_settings(tmp_path / "data")
    admin_node.migrate(settings)
    _write_atomically(media_dir(settings), "abc.webp", b"RIFF")
    archive = tmp_path / "backup.tar.gz"
    (tmp_path / "backup.tar.gz.partial").write_bytes(b"left by a crash")
    backup.backup(settings, archive)
    assert mode(archive) == 0o600
    with tarfile.open(archive) as opened:
        assert DATABASE in opened.getnames()

    restored = make_settings(tmp_path / "restored")
    backup.restore(restored, archive)
    assert mode(restored.data_dir) == 0o700
    assert mode(restored.data_dir / DATABASE) == 0o600
    assert mode(media_dir(restored)) == 0o700


def test_the_command_line_sets_an_owner_only_umask_and_gives_it_back(fedsph, tmp_path,
                                                                     permissive_umask):
    code, _ = fedsph("migrate")
    assert code == 0
    assert mode(tmp_path / "data" / DATABASE) == 0o600
    assert os.umask(0o022) == 0o022  # in-process callers get their umask back
