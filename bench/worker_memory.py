"""Memory of the calling (server) process over many prune jobs run by the worker (issue 6).

Goal: RSS growth under 10% from after the first job to after the last. `--through backend`
goes through ui.backend.prune as a page does (run store + the process-wide report cache).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--through", default="executor", choices=["executor", "backend"])
    args = parser.parse_args()
    os.environ.setdefault("PRUNESCOPE_HOME", tempfile.mkdtemp(prefix="prunescope-memory-"))
    os.environ["PRUNESCOPE_EXECUTOR"] = "worker"

    from pruning.executors.worker import rss_bytes
    from pruning.specs import DataRef, ModelRef, PruneSpec

    model, data = ModelRef.parse(args.model), DataRef.parse(args.dataset)
    if args.through == "backend":
        from ui import backend

        executor, prune = backend.get_executor(), backend.prune
    else:
        from pruning.executors.base import make_executor

        executor = make_executor("worker")
        prune = executor.prune
    executor.baseline(model, data)
    # distinct sparsities, so no job is answered from a cache
    specs = [PruneSpec(model=model, data=data, target_sparsity=round(i / args.jobs * 0.99, 4)) for i in range(args.jobs)]
    prune(specs[0])
    start = rss_bytes(os.getpid())
    t0 = time.perf_counter()
    samples = []
    for i, spec in enumerate(specs[1:], start=2):
        prune(spec)
        if i % 50 == 0 or i == args.jobs:
            samples.append((i, rss_bytes(os.getpid())))
    end = rss_bytes(os.getpid())
    cleared = None
    if args.through == "backend":
        import gc

        backend.report_cache().clear()  # what is left is not the cache's bounded set of reports
        gc.collect()
        cleared = round(rss_bytes(os.getpid()) / 2**20, 1)
    result = {
        "through": args.through, "jobs": args.jobs, "model": args.model, "dataset": args.dataset,
        "rss_after_first_job_mb": round(start / 2**20, 1), "rss_after_last_job_mb": round(end / 2**20, 1),
        "growth": round(end / start - 1, 4), "rss_after_report_cache_clear_mb": cleared,
        "samples_mb": [(i, round(r / 2**20, 1)) for i, r in samples],
        "worker_rss_mb": round(rss_bytes(executor.worker_pid) / 2**20, 1) if executor.worker_pid else None,
        "worker_starts": executor.starts, "seconds": round(time.perf_counter() - t0, 1),
        "tensorflow_in_server": "tensorflow" in sys.modules,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
