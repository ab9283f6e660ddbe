"""numpy's huge-page requests are off in every PruneScope process, unless the user asked for them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import pruning; from numpy._core import multiarray as m; "
         "print(m._set_madvise_hugepage(False))")  # returns the setting it replaces


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT), **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_pruning_turns_numpys_hugepage_madvise_off():
    assert probe() == "False"


def test_an_explicit_numpy_setting_is_kept():
    assert probe(NUMPY_MADVISE_HUGEPAGE="1") == "True"
