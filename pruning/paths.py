"""Where PruneScope keeps its files on disk: $PRUNESCOPE_HOME, default ~/.cache/prunescope.

Kept free of TensorFlow so that the run store and `python -m pruning runs` start fast.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import BadInput


def home() -> Path:
    """Where PruneScope keeps baselines, artifacts and runs."""
    return Path(os.environ.get("PRUNESCOPE_HOME", Path.home() / ".cache" / "prunescope"))


def write_atomic(out: str | Path, write: Callable[[Path], None]) -> Path:
    """Write through a temp file in the target folder, then rename: never a half-written export."""
    out = Path(out)
    if out.is_dir():
        raise BadInput(f"{out} is a folder: give a file name to export to")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
