"""What a one-shot sweep costs beyond its evaluations: 20 sparsities on one workbench.

Goal (issue 4): timing_s.prune / timing_s.evaluate <= 0.25, i.e. at most 1.25x the time
of the evaluations, with one working model, numpy masks, no retracing, no clone_model.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning.run.sweep import run_sweep  # noqa: E402
from pruning.run.workbench import Workbench  # noqa: E402
from pruning.specs import FINE_SPARSITIES, DataRef, ModelRef, SweepSpec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--methods", default="magnitude")
    args = parser.parse_args()
    model, data = ModelRef.parse(args.model), DataRef.parse(args.dataset)
    t0 = time.perf_counter()
    bench = Workbench(model, data)
    load_s = time.perf_counter() - t0
    spec = SweepSpec(model=model, data=data, methods=tuple(args.methods.split(",")), sparsities=FINE_SPARSITIES)
    forward = bench.forward
    bench.baseline_metrics(spec.point(spec.methods[0], 0.0))  # traces the forward once, before counting
    traces_before = forward.experimental_get_tracing_count()
    report = run_sweep(bench, spec)
    t = report.timing_s
    result = {
        "model": args.model, "dataset": args.dataset, "points": int(t["points"]), "load_s": load_s,
        "timing_s": t,
        "prune_over_evaluate": t["prune"] / t["evaluate"],
        "total_over_evaluate_and_measure": t["total"] / (t["evaluate"] + t["measure"]),
        "prune_ms_per_point": 1000 * t["prune"] / t["points"],
        "evaluate_ms_per_point": 1000 * t["evaluate"] / t["points"],
        "measure_ms_per_point": 1000 * t["measure"] / t["points"],
        "retraces_during_sweep": forward.experimental_get_tracing_count() - traces_before,
        "device": bench.env["device"],
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
