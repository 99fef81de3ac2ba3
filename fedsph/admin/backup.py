"""Back up and restore a node as one file: `fedsph backup FILE`, `fedsph restore FILE`.

The archive (.tar.gz) holds a consistent copy of the database, the media directory (the photos),
and a small manifest (fedsph's version, the engine, the schema revision). Everything a node is
lives in those: the projects' keys are in the database. The database part is, on SQLite, a copy
made with SQLite's online backup API (the node may keep running while it is taken); on
PostgreSQL, a pg_dump custom-format file (fedsph/admin/backup_pg.py), itself one snapshot.

An archive is only restored into a node of the engine it was made on: a SQLite node moves to
PostgreSQL with `fedsph db copy`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from fedsph import __version__
from fedsph.admin import backup_pg
from fedsph.config import Settings
from fedsph.core.files import FILE_MODE, create_private_file, private_dir
from fedsph.db import known_revisions
from fedsph.errors import UserError

if TYPE_CHECKING:
    import tarfile

DATABASE = "fedsph.sqlite3"
PG_DUMP = "fedsph.pgdump"  # pg_dump --format=custom
MEDIA = "media"
MANIFEST = "fedsph-backup.json"
SCRATCH = ".fedsph-backup-"
# tempfile.mkdtemp's names: the prefix, then 8 of its random letters, digits and underscores
SCRATCH_NAME = re.compile(re.escape(SCRATCH) + r"[a-z0-9_]{8}")
STALE_SCRATCH = 24 * 3600  # seconds: surely left by a backup that was killed
SCRIPT_MARGIN = 5  # times the dump: the plain SQL script pg_restore writes from it (not compressed)


class BackupError(UserError):
    """The backup or restore cannot be done; the message says why and what to do."""


def _database_path(settings: Settings) -> Path:
    return Path(settings.effective_database_url.split("///", 1)[1])


def backup(settings: Settings, target: Path) -> str:
    """Write the archive to `target` (which must not exist yet); returns a summary line."""
    import tarfile  # here, not at the top: `fedsph serve` loads this module and never needs it

    if target.exists():
        raise BackupError(f"{target} exists already; choose another file name")
    media = settings.data_dir / MEDIA
    manifest = {"fedsph": __version__, "base_url": settings.base_url,
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a backup that was interrupted
    _remove_stale_scratch(target.parent)
    # Scratch beside the archive (mkdtemp: 0700), not in $TMPDIR: the copy holds private keys,
    # and /tmp is often a small tmpfs (a Raspberry Pi's is a share of its memory).
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=SCRATCH) as scratch:
        if backup_pg.is_postgresql(settings):
            copy, source = Path(scratch) / PG_DUMP, "the PostgreSQL database"
            manifest |= backup_pg.dump(settings, copy)
        else:
            copy = Path(scratch) / DATABASE
            source = _database_path(settings)
            manifest |= _copy_sqlite(source, copy)
        # 0600 from the first byte: the archive holds every project's private key.
        with create_private_file(partial) as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
            archive.add(copy, arcname=copy.name)
            if media.is_dir():
                archive.add(media, arcname=MEDIA)
    partial.replace(target)  # no half-written archive is ever left under the name asked for
    files = sum(1 for p in media.rglob("*") if p.is_file()) if media.is_dir() else 0
    return f"backed up {source} and {files} media file(s) to {target}"


def _remove_stale_scratch(folder: Path) -> None:
    """Scratch folders of backups and restores killed (kill -9, a power cut: no cleanup ran)
    more than a day ago: each holds a copy of the database, private keys included. A younger
    one may be one running now. Only a folder named as mkdtemp names ours and owned by this
    user: the folder may be shared (a backup written to /srv/backups), and another's is not
    ours to remove."""
    for old in folder.glob(SCRATCH + "*"):
        try:
            info = old.lstat()  # of the name itself: a link is never followed
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() \
                    and SCRATCH_NAME.fullmatch(old.name) \
                    and time.time() - info.st_mtime > STALE_SCRATCH:
                shutil.rmtree(old)
        except OSError:
            pass  # another backup's, removed meanwhile, or not ours to remove: leave it


def _copy_sqlite(source: Path, copy: Path) -> dict:
    if not source.exists():
        raise BackupError(f"there is no database at {source}: nothing to back up")
    live, snapshot = sqlite3.connect(source), sqlite3.connect(copy)
    try:
        live.backup(snapshot)  # consistent even while the node writes
        revision = snapshot.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        revision = None  # not migrated yet: still worth keeping what is there
    finally:
        live.close()
        snapshot.close()
    return {"engine": "sqlite", "revision": revision[0] if revision else None}


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Only what `backup` writes: the manifest, one database and files under media/. No links,
    devices or paths leading out: the archive is a file from elsewhere, hostile until checked."""
    members = []
    for member in archive.getmembers():
        path = PurePosixPath(member.name)
        allowed = ((member.name in (MANIFEST, DATABASE, PG_DUMP) and member.isfile())
                   or (path.parts[:1] == (MEDIA,) and ".." not in path.parts))
        if path.is_absolute() or not allowed or not (member.isfile() or member.isdir()):
            raise BackupError(f"{member.name!r} does not belong in a fedsph backup; "
                              "nothing was restored")
        members.append(member)
    if len({DATABASE, PG_DUMP} & {m.name for m in members}) != 1:
        raise BackupError("this archive holds no fedsph database; nothing was restored")
    return members


def _read_manifest(archive: tarfile.TarFile) -> dict:
    if MANIFEST not in archive.getnames():
        return {}  # archives of the first versions had none
    manifest = json.loads(archive.extractfile(MANIFEST).read() or b"{}")
    if not isinstance(manifest, dict):
        raise ValueError("the manifest is not a JSON object")  # noqa: TRY004 (restore says: not readable)
    return manifest


def _same_engine(settings: Settings, names: list[str]) -> None:
    """Refuse, before anything is touched, an archive of the other engine."""
    on_postgresql = backup_pg.is_postgresql(settings)
    if on_postgresql and DATABASE in names:
        raise BackupError("this backup is of a SQLite node and this node uses PostgreSQL: restore "
                          "it into a SQLite node (without FEDSPH_DATABASE_URL), then move that "
                          "node with `fedsph db copy --to URL`; nothing was restored")
    if not on_postgresql and PG_DUMP in names:
        raise BackupError("this backup is of a PostgreSQL node and this node uses SQLite: set "
                          "FEDSPH_DATABASE_URL to an empty PostgreSQL database and restore again; "
                          "nothing was restored")


def _check_revision(revision: str | None, manifest: dict) -> None:
    """Refuse a database made by a newer fedsph: migrate could not bring it to this version."""
    if revision is not None and not isinstance(revision, str):  # a manifest from elsewhere
        raise BackupError(f"this backup's manifest names no readable revision ({revision!r}); "
                          "nothing was restored")
    if revision is not None and revision not in known_revisions():
        made_by = f"fedsph {manifest['fedsph']}, " if isinstance(manifest.get("fedsph"), str) else ""
        raise BackupError(f"this backup was made by a newer fedsph ({made_by}revision "
                          f"{revision}); install that version or newer; nothing was restored")


def _sqlite_revision(copy: Path) -> str | None:
    """The revision of a SQLite copy (for archives whose manifest does not say)."""
    connection = sqlite3.connect(copy)  # the scratch copy, not the node's database
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None  # not migrated: migrate makes it all
    finally:
        connection.close()
    return row[0] if row else None


def _check_space(members: list[tarfile.TarInfo], scratch: str) -> None:
    """Room for what is unpacked, and on PostgreSQL for the SQL script made from the dump
    (SCRIPT_MARGIN: an estimate; the database's own growth on its server is not counted). The
    photos are moved into place, not copied (_put_media), so they count once."""
    needed = sum(member.size * (1 + SCRIPT_MARGIN if member.name == PG_DUMP else 1)
                 for member in members)
    free = shutil.disk_usage(scratch).free
    if needed > free:
        raise BackupError(f"the backup needs {needed // 2**20} MB unpacked and the data "
                          f"directory's disk has {free // 2**20} MB free; nothing was restored")


def restore(settings: Settings, source: Path, force: bool = False) -> str:
    """Unpack `source` into the data directory and the database. Stop the node first.

    Refuses to replace an existing database unless `force`. Returns a summary line, with a
    warning when the backup came from a node with another base URL (its actors' ids would no
    longer match the address it is served at).
    """
    import tarfile  # see backup()

    on_postgresql = backup_pg.is_postgresql(settings)
    if not source.is_file():
        raise BackupError(f"there is no file {source}")
    target = None if on_postgresql else _database_path(settings)
    if target is not None and target.exists() and not force:
        raise BackupError(f"{target} exists: stop the node and add --force to replace it")
    private_dir(settings.data_dir)
    _remove_stale_scratch(settings.data_dir)
    try:
        # Unpacked beside the data first: a truncated archive leaves the node as it was.
        with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=SCRATCH) as scratch, \
                tarfile.open(source, "r:gz") as archive:
            members = _safe_members(archive)
            _same_engine(settings, [m.name for m in members])
            manifest = _read_manifest(archive)
            _check_revision(manifest.get("revision"), manifest)
            if on_postgresql:  # a database in use or not empty: refused before unpacking
                backup_pg.check_target(settings, force)
            _check_space(members, scratch)
            archive.extractall(scratch, filter="data",
                               members=[m for m in members if m.name != MANIFEST])
            if target is None:
                script = backup_pg.to_script(settings, Path(scratch, PG_DUMP))
                _check_revision(backup_pg.script_revision(
                    script, backup_pg.current_schema(settings)), manifest)
                backup_pg.load(settings, script, force)
            else:
                _check_revision(_sqlite_revision(Path(scratch, DATABASE)), manifest)
                _put_sqlite(Path(scratch, DATABASE), target)
            _put_media(Path(scratch, MEDIA), settings.data_dir / MEDIA)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:  # ValueError: bad manifest
        raise BackupError(f"{source} is not a readable fedsph backup ({exc})") from None
    summary = f"restored {source} into {settings.data_dir}"
    if manifest.get("base_url") and manifest["base_url"] != settings.base_url:
        summary += (f"\nwarning: this backup was made at {manifest['base_url']}, and this node is "
                    f"{settings.base_url}; set FEDSPH_BASE_URL to the old address")
    return summary


def _put_media(unpacked: Path, media: Path) -> None:
    """The photos, moved into place file by file once the database is in place: the scratch
    directory is in the data directory, so each is a rename needing no more space (copied when
    media/ is a link to another disk). Not atomic: an error stops it halfway, and the message
    says what was done and how to finish."""
    if not unpacked.is_dir():
        return
    try:
        private_dir(media)
        for folder, _dirs, files in os.walk(unpacked):
            into = media / Path(folder).relative_to(unpacked)
            into.mkdir(mode=0o700, exist_ok=True)
            for name in files:
                _move(Path(folder, name), into / name)
    except OSError as exc:
        raise BackupError(f"the database was restored; moving the photos failed ({exc}); fix "
                          "that and run restore --force again") from None


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copy2(source, target)  # another file system: a copy, then the scratch one goes
        source.unlink()


def _put_sqlite(copy: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):  # leftovers of the replaced database would corrupt it
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    copy.replace(target)  # the configured path, wherever it is
    target.chmod(FILE_MODE)  # the archive's modes say nothing about who may read it
