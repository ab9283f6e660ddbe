"""Sweeps: one model pruned by several methods at many sparsities, one measured row per point.

One Workbench serves the whole sweep: masks come from the read-only base weights in numpy
and are assigned to the one working model, so no point rebuilds, clones or retraces it.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional

import pandas as pd

from ..errors import BadInput
from ..specs import (
    METRIC_KEYS, SCOPES, DataRef, ModelRef, ProgressFn, PruneSpec, SpecCodec, derive, spec_fields, validate_sparsity,
)

if TYPE_CHECKING:  # the engine imports TensorFlow; specs and reports must not
    from .engine import Workbench
    from ..methods import Method

PointFn = Callable[[dict[str, Any]], None]

SEED_RATES = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)  # the seed experiment's grid
FINE_RATES = tuple(round(0.05 * i, 2) for i in range(20))  # 0, 5, ..., 95 %: 20 points
Z95 = 1.959963984540054  # two-sided 95 % normal quantile

DERIVED_KEYS = ("accuracy_loss", "parameter_reduction", "speedup", "size_reduction",
                "flops_reduction", "robustness_change")
# Every row has these columns, in this order (timings last).
ROW_KEYS = (
    ("method", "target_sparsity", "sparsity") + METRIC_KEYS
    + ("accuracy_low", "accuracy_high", "accuracy_ci95", "n_test", "base_latency_ms")
    + DERIVED_KEYS + ("finetune_epochs", "prune_s", "finetune_s", "evaluate_s", "measure_s")
)

# The seed's table: (column title, row key, how to show it).
TABLE_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("method", "method", str),
    ("sparsity", "sparsity", lambda v: f"{v:.1%}"),
    ("test accuracy", "accuracy", lambda v: f"{v:.2%}"),
    ("accuracy loss", "accuracy_loss", lambda v: f"{v * 100:+.2f} pt"),
    ("latency (ms)", "latency_ms", lambda v: f"{v:.2f}"),
    ("speedup", "speedup", lambda v: f"{v:.2f}x"),
    ("nonzero params (M)", "nonzero_params", lambda v: f"{v / 1e6:.4f}"),
    ("gzip size (MB)", "gzip_bytes", lambda v: f"{v / 1e6:.3f}"),
    ("FLOPs reduction", "flops_reduction", lambda v: f"{v:.1%}"),
    ("robust accuracy", "robust_accuracy", lambda v: f"{v:.2%}"),
    ("train accuracy", "train_accuracy", lambda v: f"{v:.2%}"),
)


@dataclass(frozen=True)
class SweepSpec(SpecCodec):
    """Which model and data, which methods at which target sparsities, and how to measure."""

    model: ModelRef = field(default_factory=ModelRef)
    data: DataRef = field(default_factory=DataRef)
    methods: tuple[str, ...] = ("magnitude",)
    rates: tuple[float, ...] = SEED_RATES
    scope: str = "layer"
    layers: Optional[tuple[str, ...]] = None  # None = every prunable layer
    finetune_epochs: int = 0  # masked fine-tuning per point (0 = one-shot)
    seed: int = 0
    noise_sigma: float = 0.1
    latency_batch: int = 32

    def __post_init__(self) -> None:
        if not isinstance(self.methods, tuple) or not self.methods:
            raise BadInput("a sweep needs at least one method: give e.g. --methods magnitude,random")
        if len(set(self.methods)) != len(self.methods):
            raise BadInput(f"methods {', '.join(self.methods)} name a method twice: list each once")
        if not isinstance(self.rates, tuple) or not self.rates:
            raise BadInput("a sweep needs at least one sparsity: give e.g. --rates 0,0.5,0.9")
        for rate in self.rates:
            validate_sparsity(rate)
        if len(set(self.rates)) != len(self.rates):
            raise BadInput("the sparsity grid lists a value twice: list each sparsity once")
        if self.scope not in SCOPES:
            raise BadInput(f"scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.layers is not None and len(self.layers) == 0:
            raise BadInput("no layer selected for pruning: select at least one prunable layer")
        if self.finetune_epochs < 0:
            raise BadInput(f"finetune epochs must be >= 0, not {self.finetune_epochs}")

    def point(self, method: str, rate: float) -> PruneSpec:
        """The single prune this sweep runs for (method, rate): `Workbench.prune` of it gives the same row."""
        return PruneSpec(
            model=self.model, data=self.data, method=method, sparsity=rate, scope=self.scope,
            layers=self.layers, finetune_epochs=self.finetune_epochs, seed=self.seed,
            noise_sigma=self.noise_sigma, latency_batch=self.latency_batch,
        )

    def points(self) -> list[tuple[str, float]]:
        """(method, rate) in run order: method by method, so each curve completes in turn."""
        return [(m, float(r)) for m in self.methods for r in self.rates]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "SweepSpec":
        raw = spec_fields(raw)
        raw["methods"] = tuple(raw.get("methods", ("magnitude",)))
        raw["rates"] = tuple(float(r) for r in raw.get("rates", SEED_RATES))
        return cls(**raw)


@dataclass(frozen=True)
class SweepReport:
    """The dense baseline and one row per (method, rate); `rows` has the columns of ROW_KEYS."""

    spec: SweepSpec
    baseline: dict[str, float]
    rows: pd.DataFrame
    timing_s: dict[str, float]  # prune, finetune, evaluate, measure, total (+ points, resumed)
    n_test: int
    environment: dict[str, str]
    notes: tuple[str, ...] = ()  # e.g. a method skipped because it cannot prune this model

    def table(self) -> pd.DataFrame:
        """The seed's table, formatted: one row per point, the columns of TABLE_COLUMNS."""
        return seed_table(self.rows)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "baseline": dict(self.baseline),
            "rows": [{k: _plain(v) for k, v in row.items()} for row in self.rows.to_dict(orient="records")],
            "timing_s": dict(self.timing_s),
            "n_test": self.n_test,
            "spec": self.spec.to_dict(),
            "environment": dict(self.environment),
            "notes": list(self.notes),
        }


def report_from_rows(spec: SweepSpec, baseline: Mapping[str, float], rows: Iterable[Mapping[str, Any]],
                     timing_s: Mapping[str, float], environment: Mapping[str, str]) -> SweepReport:
    """A SweepReport rebuilt from stored rows (JSON nulls become NaN), e.g. from the run store."""
    frame = pd.DataFrame([dict(r) for r in rows], columns=list(ROW_KEYS))
    for key in ROW_KEYS:
        if key != "method":
            frame[key] = pd.to_numeric(frame[key])
    baseline = {k: float("nan") if v is None else v for k, v in baseline.items()}
    n_test = int(frame["n_test"].iloc[0]) if len(frame) else 0
    return SweepReport(spec=spec, baseline=baseline, rows=frame, timing_s=dict(timing_s), n_test=n_test,
                       environment=dict(environment))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (full precision, unlike `to_json`)."""
    return value.item() if hasattr(value, "item") else value


def wilson_interval(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion measured on `n` samples.

    Unlike the normal approximation it stays inside [0, 1] and does not collapse to zero
    width at 0 % or 100 %, which pruned models on small test sets often hit.

    >>> low, high = wilson_interval(0.9, 100)
    >>> round(low, 4), round(high, 4), round((high - low) / 2, 4)
    (0.8256, 0.9448, 0.0596)
    """
    if n <= 0:
        return float("nan"), float("nan")
    denom = 1.0 + z * z / n
    centre = (accuracy + z * z / (2 * n)) / denom
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def seed_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows (as from a SweepReport) shown like the seed's table: strings, one column each."""
    return pd.DataFrame(
        [{title: _show(fmt, row[key]) for title, key, fmt in TABLE_COLUMNS} for _, row in rows.iterrows()],
        columns=[title for title, _, _ in TABLE_COLUMNS],
    )


def _show(fmt: Callable[[Any], str], value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return fmt(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A DataFrame of strings as a GitHub Markdown table (no `tabulate` dependency)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def run_sweep(bench: "Workbench", spec: SweepSpec, on_point: Optional[PointFn] = None,
              on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport:
    """Prune and measure every (method, rate) of `spec` on `bench`, streaming rows as they finish.

    `on_point(row)` gets each finished row (a flat dict with the ROW_KEYS) at once, so a page
    can grow its chart and a store can save the point. `resume` takes rows of an earlier,
    interrupted run of the same spec: those points are re-emitted, not recomputed.
    """
    if (bench.model_ref, bench.data_ref) != (spec.model, spec.data):
        raise ValueError("the workbench holds a different model or dataset than the sweep spec")
    methods = check_methods(spec)  # every name checked before any work starts
    selected = bench.select(spec.layers)
    done = {(str(r["method"]), float(r["target_sparsity"])): dict(r) for r in resume}
    start = time.perf_counter()
    baseline = dict(bench.baseline_metrics(spec.point(spec.methods[0], 0.0)))
    points = spec.points()
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    resumed = 0
    fd, tmp = tempfile.mkstemp(suffix=".keras", prefix="sweep-point-")
    os.close(fd)
    try:
        for i, (name, rate) in enumerate(points):
            if name in skipped:
                continue
            if (name, rate) in done:
                row, resumed = done[(name, rate)], resumed + 1
            else:
                try:
                    row = _run_point(bench, spec, methods[name], rate, selected, baseline, Path(tmp))
                except BadInput as exc:
                    # a method that cannot prune this model (no BatchNorm, no LSTM, ...) must
                    # not cost the other methods their curves: skip it and say why
                    skipped[name] = str(exc)
                    bench.reset()
                    continue
            rows.append(row)
            if on_point:
                on_point(dict(row))
            if on_progress:
                on_progress((i + 1) / len(points),
                            f"{name} at {rate:.0%}: accuracy {row['accuracy']:.2%} ({i + 1}/{len(points)} points)")
    finally:
        bench.reset()
        Path(tmp).unlink(missing_ok=True)
    if not rows and skipped:
        raise BadInput("; ".join(skipped.values()))
    frame = pd.DataFrame(rows, columns=list(ROW_KEYS))
    timing = {key: float(frame[f"{key}_s"].sum()) for key in ("prune", "finetune", "evaluate", "measure")}
    timing.update(total=time.perf_counter() - start, points=len(points), resumed=resumed)
    return SweepReport(spec=spec, baseline=baseline, rows=frame, timing_s=timing,
                       n_test=int(len(bench.dataset.y_test)), environment=dict(bench.env),
                       notes=tuple(f"{name} skipped: {why}" for name, why in skipped.items()))


def check_methods(spec: SweepSpec) -> dict[str, "Method"]:
    from ..methods import get_method

    methods = {name: get_method(name) for name in spec.methods}
    for method in methods.values():
        if spec.scope not in method.scopes:
            raise BadInput(f"{method.name} supports scope {', '.join(method.scopes)}, not {spec.scope}: "
                           "pick another scope or drop the method")
    return methods


def _masks_only(method: "Method") -> bool:
    """Whether a point can take the lean path: masks from the base weights, nothing trained."""
    return method.granularity != "structured" and "training" not in method.needs


def _run_point(bench: "Workbench", spec: SweepSpec, method: "Method", rate: float, selected: list,
               baseline: Mapping[str, float], tmp: Path) -> dict[str, Any]:
    point = spec.point(method.name, rate)
    if not _masks_only(method):
        # Structured and training methods build or train their own model: the full prune
        # path handles them, at the cost of its per-layer plots.
        return _row_from_report(bench.prune(point), bench)
    from ..methods import PruneRequest

    t0 = time.perf_counter()
    if method.needs != ("weights",):
        bench.reset()  # data/gradient methods read the working model: give them the dense one
    request = PruneRequest(
        weights={pw.key: bench.base_weights[pw.index] for pw in selected},
        sparsity=bench.targets(point, selected), scope=spec.scope, seed=spec.seed,
        model=bench.model, data=bench.dataset,
    )
    result = method.prune(request)
    if result.masks is None:  # it built a new model after all: the full path measures that
        return _row_from_report(bench.prune(point), bench)
    bench.apply_masks(result.masks)
    prune_s = time.perf_counter() - t0
    finetune_s = 0.0
    if spec.finetune_epochs:
        t0 = time.perf_counter()
        bench.finetune(result.masks, spec.finetune_epochs, spec.seed)
        finetune_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = bench.evaluate(point)
    evaluate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics.update(bench.measure(point, tmp, against_base=True))
    measure_s = time.perf_counter() - t0
    weights = bench.current_weights()
    zeros = sum(pw.size - int((weights[pw.index] != 0).sum()) for pw in selected)
    if spec.finetune_epochs:
        bench.reset()  # fine-tuning moved every weight (and BatchNorm statistics): restore them
    return _row(method.name, rate, zeros / sum(pw.size for pw in selected), metrics, baseline,
                len(bench.dataset.y_test), spec.finetune_epochs,
                {"prune_s": prune_s, "finetune_s": finetune_s, "evaluate_s": evaluate_s, "measure_s": measure_s})


def _row_from_report(report, bench: "Workbench") -> dict[str, Any]:
    t = report.timing_s
    metrics = dict(report.pruned, base_latency_ms=report.baseline["latency_ms"])
    measure_s = max(t["total"] - t.get("prune", 0.0) - t.get("finetune", 0.0) - t.get("evaluate", 0.0), 0.0)
    return _row(report.method, report.target_sparsity, report.sparsity, metrics, report.baseline,
                len(bench.dataset.y_test), report.spec.finetune_epochs,
                {"prune_s": t.get("prune", 0.0), "finetune_s": t.get("finetune", 0.0),
                 "evaluate_s": t.get("evaluate", 0.0), "measure_s": measure_s})


def _row(method: str, rate: float, sparsity: float, metrics: Mapping[str, float],
         baseline: Mapping[str, float], n_test: int, epochs: int, timing: Mapping[str, float]) -> dict[str, Any]:
    low, high = wilson_interval(metrics["accuracy"], n_test)
    # speedup against the dense model timed alternately in the same run, not at baseline time
    base_latency = metrics.get("base_latency_ms", baseline["latency_ms"])
    derived = derive(dict(baseline, latency_ms=base_latency), metrics)
    row: dict[str, Any] = {"method": method, "target_sparsity": float(rate), "sparsity": float(sparsity)}
    row.update({key: metrics[key] for key in METRIC_KEYS})
    row.update(accuracy_low=low, accuracy_high=high, accuracy_ci95=(high - low) / 2, n_test=n_test,
               base_latency_ms=base_latency, finetune_epochs=epochs)
    row.update({key: derived[key] for key in DERIVED_KEYS})
    row.update(timing)
    return {key: row[key] for key in ROW_KEYS}
