"""Sweeps: one model pruned by several methods at many sparsities, one measured row per point.

One Workbench serves the whole sweep: masks come from the read-only base weights in numpy
and are assigned to the one working model, so no point rebuilds, clones or retraces it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from ..errors import BadInput
from ..measure.tasks import get_task
from ..methods import Method, get_method
from ..reports import SweepReport, derive, derived_keys, metric_keys, row_keys
from ..specs import PointFn, ProgressFn, SweepSpec
from ..sweep_rows import SweepRows
from ..tables import wilson_interval
from .prune import prune_once, row_timing

if TYPE_CHECKING:
    from .workbench import Workbench


def run_sweep(bench: "Workbench", spec: SweepSpec, on_point: Optional[PointFn] = None,
              on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport:
    """Prune and measure every (method, rate) of `spec` on `bench`, streaming rows as they finish.

    `on_point(row)` gets each finished row (a flat dict with the task's `row_keys`) at once, so a page
    can grow its chart and a store can save the point. `resume` takes rows of an earlier,
    interrupted run of the same spec: those points are re-emitted, not recomputed.
    """
    if (bench.model_ref, bench.data_ref) != (spec.model, spec.data):
        raise ValueError("the workbench holds a different model or dataset than the sweep spec")
    methods = check_methods(spec)  # every name checked before any work starts
    bench.select(spec.layers)  # unknown layer names fail before any work starts
    rows = SweepRows(spec, resume, on_point, on_progress)
    baseline = dict(bench.baseline_metrics(spec.point(spec.methods[0], 0.0)))
    rows.replay()
    try:
        for i, name, rate in rows.todo():
            if name in rows.failed:
                continue
            try:
                row = _run_point(bench, spec, methods[name], rate, baseline)
            except BadInput as exc:
                # a method that cannot prune this model (no BatchNorm, no LSTM, ...) must
                # not cost the other methods their curves: skip it and say why
                rows.skip(i, str(exc))
                bench.reset()
                continue
            rows.add(i, row)
    finally:
        bench.reset()
    return rows.report(baseline, int(len(bench.dataset.y_test)), bench.env, task=bench.task.name)


def check_methods(spec: SweepSpec) -> dict[str, Method]:
    """Every method of the sweep, checked against its scope before any work starts."""
    methods = {name: get_method(name) for name in spec.methods}
    for method in methods.values():
        if spec.scope not in method.scopes:
            raise BadInput(f"{method.name} supports scope {', '.join(method.scopes)}, not {spec.scope}: "
                           "pick another scope or drop the method")
    return methods


def _run_point(bench: "Workbench", spec: SweepSpec, method: Method, rate: float,
               baseline: Mapping[str, float]) -> dict[str, Any]:
    """One (method, rate) through the prune sequence, as a row (no model file is written)."""
    done = prune_once(bench, spec.point(method.name, rate), method=method)
    metrics = dict(done.metrics, base_latency_ms=done.baseline["latency_ms"])
    return _row(method.name, rate, done.sparsity, metrics, baseline, len(bench.dataset.y_test),
                spec.finetune_epochs, row_timing(done), bench.task.name)


def _row(method: str, rate: float, sparsity: float, metrics: Mapping[str, float],
         baseline: Mapping[str, float], n_test: int, epochs: int, timing: Mapping[str, float],
         task: str = "multiclass") -> dict[str, Any]:
    metric = get_task(task).metric
    # a proportion gets its Wilson band here; a regression metric's bootstrap band came
    # with the metrics, since it needs the per-sample errors
    low, high = (metrics[f"{metric}_low"], metrics[f"{metric}_high"]) if f"{metric}_low" in metrics \
        else wilson_interval(metrics[metric], n_test)
    # speedup against the dense model timed alternately in the same run, not at baseline time
    base_latency = metrics.get("base_latency_ms", baseline["latency_ms"])
    derived = derive(dict(baseline, latency_ms=base_latency), metrics, task)
    row: dict[str, Any] = {"method": method, "target_sparsity": float(rate), "sparsity": float(sparsity)}
    row.update({key: metrics[key] for key in metric_keys(task)})
    row.update({f"{metric}_low": low, f"{metric}_high": high, f"{metric}_ci95": (high - low) / 2, "n_test": n_test,
                "base_latency_ms": base_latency, "finetune_epochs": epochs})
    row.update({key: derived[key] for key in derived_keys(task)})
    row.update(timing)
    return {key: row[key] for key in row_keys(task)}
