"""Per-layer sensitivity: each prunable layer pruned alone at each sparsity, the rest dense.

Its accuracy drops feed `pruning.plan`, which gives sensitive layers less sparsity and
robust layers more while hitting an overall target exactly, counted in weights.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd

from ..errors import BadInput
from ..methods import Method, PruneRequest, get_method
from ..reports import SensitivityReport
from ..specs import ProgressFn, SensitivitySpec

if TYPE_CHECKING:
    from .workbench import Workbench


def sensitivity_outcome(report: SensitivityReport):
    """The scan as the run store keeps it: point count, baseline and timing; the grid in details."""
    from ..runs.store import Outcome

    raw = report.to_json_dict()
    metric = raw["metric"]  # the baseline is stored under its headline metric: baseline_accuracy, baseline_mae
    return Outcome(metrics={"points": raw["timing_s"]["evaluations"], f"baseline_{metric}": raw[f"baseline_{metric}"],
                            "task": raw["task"], "timing_s": raw["timing_s"]}, details=raw)


def check_method(name: str) -> Method:
    """The method, if it can prune one layer at a time with masks."""
    method = get_method(name)
    if not method.masks_only:
        raise BadInput(f"a sensitivity scan prunes one layer at a time with masks, and {name} "
                       f"({method.granularity}, needs {', '.join(method.needs)}) cannot: pick magnitude")
    return method


def run_sensitivity(bench: "Workbench", spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None,
                    baseline: Optional[float] = None) -> SensitivityReport:
    """Prune each selected layer alone at each rate and measure test accuracy (nothing else).

    Only the scanned layer's variables are assigned, and restored when the scan moves on,
    so each point costs one mask and one pass over the test split. A `baseline` already
    measured (the dense model's test metric: a scan split by layer over Ray actors) is not
    evaluated again, and `timing_s["evaluations"]` then counts the pruned points alone.
    """
    if (bench.model_ref, bench.data_ref) != (spec.model, spec.data):
        raise ValueError("the workbench holds a different model or dataset than the sensitivity spec")
    method = check_method(spec.method)
    selected = {pw.layer for pw in bench.select(spec.layers)}
    groups = {layer: parts for layer, parts in bench.by_layer().items() if layer in selected}
    y = bench.dataset.y_test
    start = time.perf_counter()
    bench.reset()
    t0 = time.perf_counter()
    evaluations = 0 if baseline is not None else 1
    if baseline is None:
        baseline = bench.test_metric()
    evaluate_s, prune_s = time.perf_counter() - t0, 0.0
    accuracy = np.empty((len(groups), len(spec.sparsities)))
    total = len(groups) * len(spec.sparsities)
    try:
        for li, (layer, parts) in enumerate(groups.items()):
            weights = {pw.key: bench.base_weights[pw.index] for pw in parts}
            for ri, rate in enumerate(spec.sparsities):
                if rate == 0.0:
                    accuracy[li, ri] = baseline  # nothing pruned: the dense model, exactly
                    continue
                t0 = time.perf_counter()
                if method.reads_model:
                    bench.assign(parts, {})  # data/gradient methods read the working model: give them the dense one
                result = method.prune(PruneRequest(
                    weights=weights, sparsity={key: rate for key in weights}, scope="layer",
                    seed=spec.seed, model=bench.model, data=bench.dataset,
                ))
                bench.assign(parts, result.masks)  # a tensor without a mask (n:m cannot prune it) stays dense
                prune_s += time.perf_counter() - t0
                t0 = time.perf_counter()
                accuracy[li, ri] = bench.test_metric()
                evaluate_s += time.perf_counter() - t0
                evaluations += 1
                if on_progress:
                    done = li * len(spec.sparsities) + ri + 1
                    on_progress(done / total, f"{layer} alone at {rate:.0%}: {bench.task.show({bench.task.metric: accuracy[li, ri]})}")
            t0 = time.perf_counter()
            bench.assign(parts, {})
            prune_s += time.perf_counter() - t0
    finally:
        bench.reset()
    rates = [float(r) for r in spec.sparsities]
    acc = pd.DataFrame(accuracy, index=pd.Index(list(groups), name="layer"), columns=rates)
    # the drop is how much worse, in the metric's units: MAE rising is a positive drop
    drop = baseline - acc if bench.task.higher_is_better else acc - baseline
    return SensitivityReport(
        spec=spec, baseline_accuracy=baseline, n_test=int(len(y)), accuracy=acc, drop=drop, task=bench.task.name,
        layer_sizes={layer: [pw.size for pw in parts] for layer, parts in groups.items()},
        layer_types={layer: parts[0].layer_type for layer, parts in groups.items()},
        timing_s={"prune": prune_s, "evaluate": evaluate_s, "total": time.perf_counter() - start,
                  "evaluations": evaluations},
    )


