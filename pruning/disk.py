"""Free space on the disk under a path, and the one-line DiskFull that names that disk.

Writes that can fill a disk (saved models, copied artifacts, the run database) go through
`writing`, so a full disk reads as what it is, not as an internal error.
"""
from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .errors import DiskFull

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# SQLite reports a full disk as a plain I/O error where it grows its shared-memory file
# (SQLITE_IOERR_SHMSIZE): below this much free space, that is what such an error means
LOW_WATER_BYTES = 4 * 1024 * 1024


def is_disk_full(exc: BaseException, path: Optional[str | Path] = None) -> bool:
    """Whether `exc` says the disk (or the user's quota) is full; `path`: the SQLite file, if any.

    >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device")), is_disk_full(OSError(errno.EACCES, "no"))
    (True, False)
    >>> is_disk_full(sqlite3.OperationalError("database or disk is full"))
    True
    """
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "disk is full" in text:  # SQLITE_FULL
            return True
        return "disk i/o error" in text and path is not None and free_bytes(path) < LOW_WATER_BYTES
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_of(path: str | Path) -> tuple[str, str, str]:
    """(device, mount point, filesystem type) of the disk holding `path` (Linux /proc/self/mounts)."""
    where = os.path.realpath(_existing(Path(path)))
    best = ("?", "/", "?")
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        device, point, fstype = fields[0], fields[1].replace("\\040", " "), fields[2]
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[1]):
            best = (device, point, fstype)
    return best


def free_bytes(path: str | Path) -> int:
    """Bytes free to this user on the disk holding `path`."""
    return int(shutil.disk_usage(_existing(Path(path))).free)


def human(n: float) -> str:
    """Bytes for a person: 1,536 -> '1.5 kB' (powers of 1000, like df -H).

    >>> human(999), human(1536), human(2_500_000)
    ('999 B', '1.5 kB', '2.5 MB')
    """
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def disk_full(path: str | Path, needed: Optional[int], what: str = "") -> DiskFull:
    """The one-line DiskFull for a write of about `needed` bytes to `path` that found no room."""
    device, point, fstype = mount_of(path)
    try:
        free = human(free_bytes(path))
    except OSError:
        free = "unknown space"
    need = f"it needs at least {human(needed)}" if needed else "it needs more space"
    return DiskFull(
        f"the disk at {point} ({fstype} {device}, {free} free) is full: writing {what or Path(path).name} "
        f"failed, {need}; free space there or set PRUNESCOPE_HOME to a larger disk, then run it again"
    )


def ensure_free(path: str | Path, needed: int, what: str = "") -> None:
    """Raise DiskFull before writing when the disk holding `path` has less than `needed` bytes free."""
    if free_bytes(path) < needed:
        raise disk_full(path, needed, what)


@contextmanager
def writing(path: str | Path, needed: Optional[int] = None, what: str = "") -> Iterator[None]:
    """Turn a full-disk error inside the block into a DiskFull naming the disk of `path`."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full(path, needed, what) from exc
