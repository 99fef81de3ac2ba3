"""Owner-only files: the data directory, the SQLite database, photos and backups.

The database holds every project's private key, so nobody but the account that runs fedsph may
read it, whatever the umask. `fedsph` sets a umask of 0o077 when it starts (fedsph/cli.py); these
helpers also set the modes explicitly, because files made by older versions, by a restore, or by
code that does not start from the CLI (tests, an embedding server) were made under another umask.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) if needed, and make it owner-only (0700)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)
    return path


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases and in-memory SQLite."""
    if not database_url.startswith("sqlite") or "///" not in database_url:
        return None
    name = database_url.split("///", 1)[1].split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def protect_database(database_url: str) -> None:
    """Make a SQLite database file and its -wal/-shm/-journal owner-only (0600)."""
    path = sqlite_path(database_url)
    if path is None:
        return
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(FILE_MODE)


def create_private_file(path: Path):
    """A new file opened for binary writing, 0600 from the start; FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is masked by the umask; this is not
    return os.fdopen(fd, "wb")
