"""Ray executor throughput: one 16-point sweep with 1 and then 2 actors, on this machine or a cluster.

Goal (issue 8): >= 1.6x the points per second with 2 actors on 2 cores. Models load and the
baseline is measured before the clock starts, so the figures are points, not start-up.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning.executors.ray_actors import RayExecutor  # noqa: E402
from pruning.specs import (  # noqa: E402
    FINE_SPARSITIES,
    DataRef,
    ModelRef,
    SensitivitySpec,  # noqa: E402
    SweepSpec,
)


def warm(executor: RayExecutor, spec: SweepSpec, actors: int) -> None:
    """One point per actor: each loads the model and traces its forward off the clock."""
    executor.sweep(SweepSpec(model=spec.model, data=spec.data, sparsities=FINE_SPARSITIES[-actors:]))


def measure(executor: RayExecutor, spec: SweepSpec) -> dict:
    """`spec` swept once: wall time, points per second and the mean time a point spent in its actor."""
    t0 = time.perf_counter()
    report = executor.sweep(spec)
    wall = time.perf_counter() - t0
    busy = sum(float(report.rows[f"{k}_s"].sum()) for k in ("prune", "finetune", "evaluate", "measure"))
    return {"points": len(report.rows), "wall_s": wall, "points_per_s": len(report.rows) / wall,
            "point_s_mean": busy / len(report.rows)}


def timed_sweep(executor: RayExecutor, spec: SweepSpec, workers: int) -> dict:
    warm(executor, spec, workers)
    return {"workers": workers, **measure(executor, spec)}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --epochs and --dataset, as every Ray benchmark takes them."""
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--epochs", type=int, default=2, help="zoo training epochs (speed, not accuracy, matters)")
    parser.add_argument("--dataset", default="digits")


def model_refs(args: argparse.Namespace) -> tuple[ModelRef, DataRef]:
    model = args.model
    return (ModelRef.parse(model) if model.endswith((".keras", ".h5")) else ModelRef(model, epochs=args.epochs),
            DataRef.parse(args.dataset))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--workers", default="1,2", help="actor counts to compare, comma-separated")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of a local Ray instance (no RAY_ADDRESS)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    model, data = model_refs(args)
    spec = SweepSpec(model=model, data=data, sparsities=FINE_SPARSITIES[:16])
    runs = []
    for workers in (int(w) for w in args.workers.split(",")):
        executor = RayExecutor(workers=workers, num_cpus=None if os.environ.get("RAY_ADDRESS") else args.num_cpus,
                               log_to_driver=False)
        runs.append(timed_sweep(executor, spec, workers))
        if workers == 1:
            # per-evaluation cost of a sensitivity scan, from one actor: the estimate's input
            scan = executor.sensitivity(SensitivitySpec(model=model, data=data, sparsities=(0.5, 0.9)))
            runs[-1]["sensitivity_eval_s"] = scan.timing_s["evaluate"] / scan.timing_s["evaluations"]
            runs[-1]["sensitivity_evaluations"] = scan.timing_s["evaluations"]
            runs[-1]["n_test"] = scan.n_test
        about = executor.describe()
        executor.shutdown()
    result = {"model": args.model, "dataset": args.dataset, "cluster": {k: about[k] for k in ("nodes", "cpus", "gpus")},
              "device": about["device"], "runs": runs,
              "speedup": runs[-1]["points_per_s"] / runs[0]["points_per_s"] if len(runs) > 1 else None}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
