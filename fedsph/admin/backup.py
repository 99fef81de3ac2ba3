"""Back up and restore a SQLite node as one file: `fedsph backup FILE`, `fedsph restore FILE`.

The archive (.tar.gz) holds a consistent copy of the database, made with SQLite's online backup
API so the node may keep running while it is taken, the media directory (the photos), and a
small manifest. Everything a node is lives in those: the projects' keys are in the database.

A PostgreSQL node backs its database up with pg_dump; these commands say so instead of doing
half the job.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from fedsph import __version__
from fedsph.config import Settings
from fedsph.core.files import FILE_MODE, create_private_file, private_dir
from fedsph.errors import UserError

if TYPE_CHECKING:
    import tarfile

DATABASE = "fedsph.sqlite3"
MEDIA = "media"
MANIFEST = "fedsph-backup.json"


class BackupError(UserError):
    """The backup or restore cannot be done; the message says why and what to do."""


def _database_path(settings: Settings) -> Path:
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        raise BackupError("this node uses PostgreSQL: back its database up with pg_dump "
                          "(and copy FEDSPH_DATA_DIR/media); `fedsph backup` is for SQLite nodes")
    return Path(settings.effective_database_url.split("///", 1)[1])


def backup(settings: Settings, target: Path) -> str:
    """Write the archive to `target` (which must not exist yet); returns a summary line."""
    import tarfile  # here, not at the top: `fedsph serve` loads this module and never needs it

    source = _database_path(settings)
    if not source.exists():
        raise BackupError(f"there is no database at {source}: nothing to back up")
    if target.exists():
        raise BackupError(f"{target} exists already; choose another file name")
    media = settings.data_dir / MEDIA
    manifest = {"fedsph": __version__, "base_url": settings.base_url,
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a backup that was interrupted
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / DATABASE
        live, snapshot = sqlite3.connect(source), sqlite3.connect(copy)
        try:
            live.backup(snapshot)  # consistent even while the node writes
        finally:
            live.close()
            snapshot.close()
        # 0600 from the first byte: the archive holds every project's private key.
        with create_private_file(partial) as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
            archive.add(copy, arcname=DATABASE)
            if media.is_dir():
                archive.add(media, arcname=MEDIA)
    partial.replace(target)  # no half-written archive is ever left under the name asked for
    files = sum(1 for p in media.rglob("*") if p.is_file()) if media.is_dir() else 0
    return f"backed up {source} and {files} media file(s) to {target}"


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Only what `backup` writes: the manifest, the database and files under media/."""
    members = []
    for member in archive.getmembers():
        path = PurePosixPath(member.name)
        allowed = (member.name in (MANIFEST, DATABASE)
                   or (path.parts[:1] == (MEDIA,) and ".." not in path.parts))
        if path.is_absolute() or not allowed or not (member.isfile() or member.isdir()):
            raise BackupError(f"{member.name!r} does not belong in a fedsph backup; "
                              "nothing was restored")
        members.append(member)
    if DATABASE not in {m.name for m in members}:
        raise BackupError("this archive holds no fedsph database; nothing was restored")
    return members


def restore(settings: Settings, source: Path, force: bool = False) -> str:
    """Unpack `source` into the data directory. Stop the node first.

    Refuses to replace an existing database unless `force`. Returns a summary line, with a
    warning when the backup came from a node with another base URL (its actors' ids would no
    longer match the address it is served at).
    """
    import tarfile  # see backup()

    target = _database_path(settings)
    if not source.is_file():
        raise BackupError(f"there is no file {source}")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: stop the node and add --force to replace it")
    private_dir(settings.data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Unpacked beside the data first: a truncated archive leaves the node as it was.
        with tempfile.TemporaryDirectory(dir=settings.data_dir) as scratch, \
                tarfile.open(source, "r:gz") as archive:
            members = _safe_members(archive)
            manifest = {}
            if MANIFEST in archive.getnames():
                manifest = json.loads(archive.extractfile(MANIFEST).read() or b"{}")
                if not isinstance(manifest, dict):
                    raise ValueError("the manifest is not a JSON object")
            archive.extractall(scratch, filter="data",
                               members=[m for m in members if m.name != MANIFEST])
            for suffix in ("-wal", "-shm"):  # leftovers of the replaced database would corrupt it
                target.with_name(target.name + suffix).unlink(missing_ok=True)
            Path(scratch, DATABASE).replace(target)  # the configured path, wherever it is
            target.chmod(FILE_MODE)  # the archive's modes say nothing about who may read it
            media = Path(scratch, MEDIA)
            if media.is_dir():
                shutil.copytree(media, settings.data_dir / MEDIA, dirs_exist_ok=True)
                private_dir(settings.data_dir / MEDIA)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:  # ValueError: bad manifest
        raise BackupError(f"{source} is not a readable fedsph backup ({exc})") from None
    summary = f"restored {source} into {settings.data_dir}"
    if manifest.get("base_url") and manifest["base_url"] != settings.base_url:
        summary += (f"\nwarning: this backup was made at {manifest['base_url']}, and this node is "
                    f"{settings.base_url}; set FEDSPH_BASE_URL to the old address")
    return summary
