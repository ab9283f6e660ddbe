"""What a sensitivity scan costs beyond its (layers x rates) test-split evaluations.

Goal (issue 4): resnet20 on digits at 5 sparsities finishes in under 1.5x the time of its
evaluations. The evaluation time is also measured apart, on the dense model, as a check.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning.measure.metrics import accuracy_and_loss, predict  # noqa: E402
from pruning.run.sensitivity import run_sensitivity  # noqa: E402
from pruning.run.workbench import Workbench  # noqa: E402
from pruning.specs import SCAN_SPARSITIES, DataRef, ModelRef, SensitivitySpec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--rates", default=",".join(str(r) for r in SCAN_SPARSITIES))
    args = parser.parse_args()
    model, data = ModelRef.parse(args.model), DataRef.parse(args.dataset)
    bench = Workbench(model, data)
    spec = SensitivitySpec(model=model, data=data, sparsities=tuple(float(r) for r in args.rates.split(",")))
    report = run_sensitivity(bench, spec)
    t = report.timing_s
    # one plain test-split evaluation, timed apart: the cost the scan cannot avoid
    x, y = bench.dataset.x_test, bench.dataset.y_test
    accuracy_and_loss(predict(bench.forward, x), y)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        accuracy_and_loss(predict(bench.forward, x), y)
        times.append(time.perf_counter() - start)
    one_eval = float(np.median(times))
    layers = len(report.accuracy.index)
    result = {
        "model": args.model, "dataset": args.dataset, "layers": layers, "rates": list(spec.sparsities),
        "evaluations": int(t["evaluations"]), "timing_s": t,
        "total_over_evaluate": t["total"] / t["evaluate"],
        "one_evaluation_s_median_apart": one_eval,
        "total_over_layers_x_rates_evaluations_apart": t["total"] / (layers * len(spec.sparsities) * one_eval),
        "device": bench.env["device"],
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
