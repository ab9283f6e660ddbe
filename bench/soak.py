"""A soak of the app's backend (issue 13 part 5): N mixed jobs through ui.backend and its worker.

Prunes, sweeps (2 points each), exports (recipe, .keras copy, download bytes, TFLite in the worker)
and HTML reports, as pages call them; measures this (server) process's RSS after a warm-up and at
the end, temporary files left (a private TMPDIR and PRUNESCOPE_HOME), processes left below this
one, and the worker's recycling. tests/unit/test_soak.py runs a short one.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("prune", "prune", "prune", "prune", "prune", "sweep", "sweep", "export", "export", "report")  # 50/20/20/10 %
METHODS = ("magnitude", "random", "lamp", "taylor")
EXPORTS = ("recipe", "keras", "download", "recipe", "keras", "download", "recipe", "keras", "download", "tflite")
TEMP_MARKERS = (".part", ".tmp")  # besides write_atomic's and mkstemp's dot-names


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, from /proc (zombies included: a worker not reaped is a leak)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return sorted(found)


def temp_files(tmpdir: Path, home: Path) -> list[str]:
    """Files in the private TMPDIR, and temporary-looking files (dot-names, .part, .tmp) under home."""
    found = [str(p) for p in tmpdir.rglob("*") if p.is_file()]
    for path in home.rglob("*"):
        if path.is_file() and (path.name.startswith(".") or any(m in path.name for m in TEMP_MARKERS)):
            found.append(str(path))
    return sorted(found)


def last_prune_run(db: Path) -> int:
    """The newest prune run's id, read straight from SQLite (listing every run would cost O(runs))."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT max(id) FROM runs WHERE kind = 'prune'").fetchone()[0]


def rss_mb(pid: int) -> float:
    from pruning.executors.worker import rss_bytes

    return round(rss_bytes(pid) / 2**20, 1)


def run_soak(jobs: int, model: str = "mlp", dataset: str = "digits", warmup: int = 50,
             max_jobs: Optional[int] = None, out_dir: Optional[Path] = None) -> dict[str, Any]:
    """Run `jobs` mixed backend calls; what was measured, as plain data.

    Call with TMPDIR and PRUNESCOPE_HOME already set to private folders (the worker inherits both),
    before anything imports `pruning`. `max_jobs`: recycle the worker after that many of its jobs
    (None: the executor's own limit). RSS is taken after `warmup` jobs and after the last.
    """
    from pruning.runs.export import export_keras
    from pruning.specs import DataRef, ModelRef, PruneSpec, SweepSpec
    from ui import backend

    tmpdir, home = Path(tempfile.gettempdir()), Path(os.environ["PRUNESCOPE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix="soak-exports-", dir=home))
    executor = backend.get_executor()
    if max_jobs is not None:
        executor.max_jobs = max_jobs
    model_ref, data_ref = ModelRef.parse(model), DataRef.parse(dataset)
    backend.baseline(model_ref, data_ref)
    before = {"temp_files": temp_files(tmpdir, home), "processes": descendants(os.getpid())}

    counts = {kind: 0 for kind in set(KINDS)} | {f"export_{e}": 0 for e in set(EXPORTS)}
    workers: list[int] = []
    prune_runs: list[int] = []
    warm: dict[str, Any] = {}
    spent: dict[str, float] = {}  # seconds per kind of job
    started = time.perf_counter()
    for i in range(jobs):
        kind = KINDS[i % len(KINDS)]
        if kind in ("export", "report") and not prune_runs:
            kind = "prune"
        counts[kind] += 1
        t0 = time.perf_counter()
        if kind == "prune":  # distinct sparsities: never a cache hit
            spec = PruneSpec(model=model_ref, data=data_ref, method=METHODS[i % len(METHODS)],
                             target_sparsity=round(0.05 + 0.9 * i / jobs, 4))
            backend.prune(spec)
            prune_runs.append(last_prune_run(home / "runs.db"))
        elif kind == "sweep":
            a = round(0.1 + 0.8 * i / jobs, 4)
            backend.sweep(SweepSpec(model=model_ref, data=data_ref, methods=(METHODS[i % 2],),
                                    sparsities=(a, round(a + 0.05, 4))))
        elif kind == "export":
            how = EXPORTS[counts["export"] % len(EXPORTS)]
            counts[f"export_{how}"] += 1
            run_id = prune_runs[-1]
            if how == "recipe":
                backend.recipe_bytes(run_id)
            elif how == "keras":
                target = out_dir / f"run-{run_id}.keras"
                export_keras(backend.run_store().get(run_id), target)
                target.unlink()  # the exported file is the user's: not a leak, not kept either
            elif how == "download":
                backend.read_bytes(backend.run_store().get(run_id).artifact_path)
            else:
                backend.deploy(run_id)
        else:
            backend.report_html(prune_runs[-1])
        spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - t0
        if executor.worker_pid and executor.worker_pid not in workers:
            workers.append(executor.worker_pid)
        if i + 1 == warmup:
            gc.collect()
            warm = {"rss_mb": rss_mb(os.getpid()), "seconds": round(time.perf_counter() - started, 1)}
    gc.collect()
    end_rss = rss_mb(os.getpid())
    seconds = round(time.perf_counter() - started, 1)
    during = descendants(os.getpid())
    executor.stop()
    time.sleep(0.5)
    after_stop = descendants(os.getpid())
    after = temp_files(tmpdir, home)
    old_workers_alive = [pid for pid in workers if pid in after_stop]
    return {
        "jobs": jobs, "model": model, "dataset": dataset, "counts": counts, "warmup_jobs": warmup,
        "rss_after_warmup_mb": warm.get("rss_mb"), "rss_end_mb": end_rss,
        "rss_growth": round(end_rss / warm["rss_mb"] - 1, 4) if warm else None,
        "temp_files_before": len(before["temp_files"]), "temp_files_after": len(after),
        "temp_files_left": sorted(set(after) - set(before["temp_files"])),
        "processes_before": len(before["processes"]), "processes_at_end": len(during),
        "processes_after_stop": len(after_stop), "worker_pids": workers, "worker_starts": executor.starts,
        "old_workers_alive": old_workers_alive, "tensorflow_in_server": "tensorflow" in sys.modules,
        "seconds": seconds, "seconds_warmup": warm.get("seconds"),
        "seconds_by_kind": {kind: round(t, 1) for kind, t in sorted(spent.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--max-jobs", type=int, default=None, help="recycle the worker after this many of its jobs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prunescope-soak-"))
    (work / "tmp").mkdir()
    os.environ["TMPDIR"] = str(work / "tmp")  # the worker inherits it: every temp file lands where it is counted
    tempfile.tempdir = None
    os.environ["PRUNESCOPE_HOME"] = str(work / "home")
    os.environ["PRUNESCOPE_EXECUTOR"] = "worker"
    sys.path.insert(0, str(ROOT))
    result = run_soak(args.jobs, args.model, args.dataset, args.warmup, args.max_jobs)
    print(json.dumps(result, indent=2))
    ok = (result["rss_growth"] < 0.10 and not result["temp_files_left"] and not result["old_workers_alive"]
          and result["processes_at_end"] == result["processes_before"] and not result["tensorflow_in_server"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
