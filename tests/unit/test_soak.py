"""A short soak of the app's backend (issue 13 part 5; bench/soak.py runs 500 jobs).

Mixed prunes, sweeps, exports and reports through ui.backend and its worker, recycled every
few jobs: no temporary file and no process may be left behind, and every old worker is gone.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from soak import run_soak  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_short_soak_leaves_no_temp_files_or_processes_and_recycles_the_worker(
        tiny_model_file, tiny_npz, tmp_path, monkeypatch):
    from ui import backend

    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the worker inherits it: its temp files are counted
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setenv("PRUNESCOPE_EXECUTOR", "worker")
    monkeypatch.setenv("PRUNESCOPE_HOME", str(tmp_path / "home"))  # nothing cached or stored by other tests
    backend.get_executor().stop()  # an executor another test made: its worker never saw this TMPDIR
    for cached in (backend.get_executor, backend.run_store, backend.report_cache):
        cached.clear()
    result = run_soak(20, str(tiny_model_file), str(tiny_npz), warmup=10, max_jobs=12)

    assert result["counts"]["prune"] == 10 and result["counts"]["sweep"] == 4
    assert result["counts"]["export"] == 4 and result["counts"]["report"] == 2
    assert result["temp_files_left"] == []
    assert result["processes_at_end"] == result["processes_before"]  # one worker (and multiprocessing's tracker)
    assert result["old_workers_alive"] == []
    # 1 baseline + 10 prunes + 10 saves + 4 sweeps = 25 worker jobs at 12 a worker: recycled twice
    assert result["worker_starts"] == 3 and len(result["worker_pids"]) >= 2
    for cached in (backend.get_executor, backend.run_store, backend.report_cache):
        cached.clear()
