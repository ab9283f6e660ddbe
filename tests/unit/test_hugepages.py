"""numpy's huge-page requests are off wherever an Engine prunes, unless the user asked for them;
the app's server process (no Engine) keeps numpy's default."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = "from pruning.run.engine import Engine; Engine(); "
PROBE = "from numpy._core import multiarray as m; print(m._set_madvise_hugepage(False))"  # the setting it replaces


def probe(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT), **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_an_engine_turns_numpys_hugepage_madvise_off_and_the_server_side_keeps_it():
    assert probe(ENGINE + PROBE) == "False"
    assert probe("import pruning, ui.backend; " + PROBE) == probe(PROBE)  # numpy's own default


def test_an_explicit_numpy_setting_is_kept():
    assert probe(ENGINE + PROBE, NUMPY_MADVISE_HUGEPAGE="1") == "True"
