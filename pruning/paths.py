"""Where PruneScope keeps its files on disk: $PRUNESCOPE_HOME, default ~/.cache/prunescope.

Kept free of TensorFlow so that the run store and `python -m pruning runs` start fast.
"""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Where PruneScope keeps baselines, artifacts and runs."""
    return Path(os.environ.get("PRUNESCOPE_HOME", Path.home() / ".cache" / "prunescope"))
