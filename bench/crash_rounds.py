"""kill -9 of `python -m pruning sweep` N times, the same command each time (issue 13, part 2).

Each round starts the same CLI sweep, kills it once it has stored 1-3 points more than the
run it resumed from, and checks the store; a last run finishes. Reports points lost/recomputed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_files(folder: Path) -> tuple[Path, Path]:
    """The tests' tiny CNN (trained 5 epochs) and synthetic 8x8 data, in `folder`."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_tiny_cnn, make_xy

    x_train, y_train = make_xy(256, seed=1)
    x_test, y_test = make_xy(128, seed=2)
    data = folder / "tiny.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    model = build_tiny_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5, batch_size=32, verbose=0)
    model.save(folder / "tiny.keras")
    return folder / "tiny.keras", data


def points_of(db: Path, run_id: int | None = None) -> list[tuple[int, dict]]:
    """(run id, row) of every stored point (of one run), read straight from SQLite."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            sql = "SELECT run_id, row_json FROM sweep_points" + (" WHERE run_id = ?" if run_id else "") + \
                  " ORDER BY run_id, seq"
            return [(r, json.loads(t)) for r, t in conn.execute(sql, (run_id,) if run_id else ())]
    except sqlite3.OperationalError:
        return []


def stored_after(db: Path, run_id: int) -> int:
    """How many points the runs newer than `run_id` have stored (0 before the database exists)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM sweep_points WHERE run_id > ?", (run_id,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def newest_run(db: Path) -> tuple[int, str] | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="magnitude,random,lamp,taylor",
                        help="4 x the 20 FINE_SPARSITIES = 80 points: room for 20 rounds of 1-3 new points")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prunescope-crash-"))
    home = work / "home"
    env = dict(os.environ, PRUNESCOPE_HOME=str(home), PYTHONPATH=str(ROOT))
    model, data = make_files(work)
    from pruning.specs import FINE_SPARSITIES

    rates = ",".join(str(r) for r in FINE_SPARSITIES)
    total = len(FINE_SPARSITIES) * len(args.methods.split(","))
    argv = [sys.executable, "-m", "pruning", "sweep", "--model", str(model), "--dataset", str(data),
            "--methods", args.methods, "--rates", rates, "--format", "json"]
    db = home / "runs.db"
    rng = random.Random(args.seed)
    totals = {"rounds": 0, "killed_mid_sweep": 0, "interrupted": 0, "integrity_ok": 0, "stored_before_kill": 0,
              "lost": 0, "recomputed": 0, "duplicates": 0}
    prior: dict[tuple, dict] = {}  # the finished points of the run the next start resumes
    started = time.perf_counter()
    for _ in range(args.rounds):
        want = len(prior) + rng.randint(1, 3)
        if want >= total:
            break
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        newest = (newest_run(db) or (0,))[0] if db.exists() else 0
        while True:  # a count, not the rows: reading every stored row each poll let the sweep run ahead
            if stored_after(db, newest) >= want or proc.poll() is not None:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        totals["rounds"] += 1
        totals["killed_mid_sweep"] += proc.returncode == -signal.SIGKILL
        run_id, _ = newest_run(db)
        stored = [row for _, row in points_of(db, run_id)]
        keys = [(row["method"], row["target_sparsity"]) for row in stored]
        totals["duplicates"] += len(keys) - len(set(keys))
        here = dict(zip(keys, stored))
        totals["lost"] += sum(1 for key in prior if key not in here)
        totals["recomputed"] += sum(1 for key, row in prior.items() if key in here and here[key] != row)
        totals["stored_before_kill"] += len(stored)
        # the next start (here: `runs --json`) must read the dead process's run as interrupted
        listed = json.loads(subprocess.run([sys.executable, "-m", "pruning", "runs", "--json"], cwd=ROOT, env=env,
                                           capture_output=True, text=True, check=True).stdout)[0]
        totals["interrupted"] += (listed["id"], listed["status"], listed["points"]) == (run_id, "interrupted",
                                                                                        len(stored))
        with sqlite3.connect(db) as conn:
            totals["integrity_ok"] += conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        prior = here
    last = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    final = json.loads(last.stdout)
    keys = [(r["method"], r["target_sparsity"]) for r in final["rows"]]
    final_rows = dict(zip(keys, final["rows"]))
    totals.update(
        final_points=len(final["rows"]), final_resumed_points=final["resumed_points"], expected_resumed=len(prior),
        final_lost=sum(1 for key in prior if key not in final_rows),
        final_recomputed=sum(1 for key, row in prior.items() if final_rows.get(key) != row),
        final_duplicates=len(keys) - len(set(keys)), total_points=total,
        final_status=newest_run(db)[1], wall_s=round(time.perf_counter() - started, 1),
    )
    print(json.dumps(totals, indent=2))
    ok = (totals["lost"] == totals["recomputed"] == totals["duplicates"] == 0
          and totals["interrupted"] == totals["integrity_ok"] == totals["killed_mid_sweep"] == totals["rounds"]
          and final["resumed_points"] == len(prior) and totals["final_lost"] == totals["final_recomputed"] == 0
          and len(final["rows"]) == total)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
