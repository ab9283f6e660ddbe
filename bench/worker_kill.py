"""kill -9 of the worker during a sweep, N times (issue 6): points lost, store integrity, run state.

Each round streams a sweep into a fresh run, kills the worker at a random moment after its
first point, then checks the store and that a new worker serves the next job.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("PRUNESCOPE_HOME", tempfile.mkdtemp(prefix="prunescope-kill-"))

    from pruning.executors.worker import WorkerDied, WorkerExecutor
    from pruning.runs.store import open_store
    from pruning.specs import FINE_SPARSITIES, DataRef, ModelRef, PruneSpec, SweepSpec

    model, data = ModelRef.parse(args.model), DataRef.parse(args.dataset)
    spec = SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=FINE_SPARSITIES)
    store = open_store()
    worker = WorkerExecutor()
    worker.baseline(model, data)  # trains the zoo model once, outside the timed rounds
    rng = random.Random(args.seed)
    totals = {"rounds": 0, "died_with_message": 0, "streamed": 0, "stored": 0, "lost": 0, "integrity_ok": 0,
              "interrupted": 0, "next_job_served": 0, "finished_before_kill": 0}
    for _ in range(args.rounds):
        seen: list[dict] = []
        first = threading.Event()
        delay = rng.uniform(0.0, 1.5)

        def killer():
            first.wait()
            time.sleep(delay)
            pid = worker.worker_pid
            if pid:
                os.kill(pid, signal.SIGKILL)

        def work(store_point):
            def on_point(row):
                store_point(row)
                seen.append(row)
                first.set()

            return worker.sweep(spec, on_point=on_point)

        threading.Thread(target=killer, daemon=True).start()
        totals["rounds"] += 1
        try:
            store.record_points("sweep", spec, work, source="bench")
            totals["finished_before_kill"] += 1
        except WorkerDied as exc:
            totals["died_with_message"] += "died (signal 9)" in str(exc) and "run it again" in str(exc)
        run = store.list(kind="sweep")[0]
        stored = store.points(run.id)
        totals["streamed"] += len(seen)
        totals["stored"] += len(stored)
        totals["lost"] += sum(1 for row in json.loads(json.dumps(seen)) if row not in stored)
        totals["interrupted"] += run.status == "interrupted"
        with sqlite3.connect(store.path) as conn:
            totals["integrity_ok"] += conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        first.set()
        time.sleep(delay + 0.1)  # a late killer must not hit the next round's worker
        totals["next_job_served"] += worker.prune(PruneSpec(model=model, data=data, target_sparsity=0.5)).sparsity > 0
    totals["worker_starts"] = worker.starts
    worker.stop()
    print(json.dumps(totals, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
