"""The plain-data reports the backend returns: baseline, prune, sweep, sensitivity and deploy.

Numbers, strings, lists, dicts and DataFrames only (DESIGN §3), so they cache, store, print
as JSON and cross a process boundary; no TensorFlow here.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

import pandas as pd

from .errors import BadInput
from .measure.tasks import TASKS, get_task
from .plain import to_plain
from .specs import (
    COMPRESSION,
    METRIC_KEYS,
    DataRef,
    DeploySpec,
    ModelRef,
    PointFn,
    ProgressFn,
    PruneSpec,
    SensitivitySpec,
    SweepSpec,
)

Z95 = 1.959963984540054  # two-sided 95 % normal quantile

# What a prune's "measure" phase adds after its "evaluate" phase: sizes and latency. The
# evaluated view streams everything else first (the headline metric of any task included).
MEASURED_KEYS = ("size_bytes", "gzip_bytes", "latency_ms", "latency_p10_ms", "latency_p90_ms")

# `metric_change`: how much worse the headline metric got, in its units, whatever its
# direction (accuracy: baseline - pruned; MAE: pruned - baseline); negative: it improved.
DERIVED_KEYS = ("accuracy_loss", "metric_change", "parameter_reduction", "speedup", "size_reduction",
                "flops_reduction", "robustness_change")
SIZE_KEYS = METRIC_KEYS[4:]  # params ... latency_p90_ms: the same for every task


def metric_keys(task: str = "multiclass") -> tuple[str, ...]:
    """The metric keys of DESIGN §5 for `task`: METRIC_KEYS for multi-class classifiers."""
    return get_task(task).metric_keys + SIZE_KEYS


def derived_keys(task: str = "multiclass") -> tuple[str, ...]:
    """DERIVED_KEYS; `accuracy_loss` only where the headline metric is accuracy."""
    return tuple(k for k in DERIVED_KEYS if k != "accuracy_loss" or get_task(task).metric == "accuracy")


def row_keys(task: str = "multiclass") -> tuple[str, ...]:
    """A sweep row's columns for `task`, in order (timings last); ROW_KEYS for multi-class."""
    metric = get_task(task).metric
    return (("method", "target_sparsity", "sparsity") + metric_keys(task)
            + (f"{metric}_low", f"{metric}_high", f"{metric}_ci95", "n_test", "base_latency_ms")
            + derived_keys(task) + ("finetune_epochs", "prune_s", "finetune_s", "evaluate_s", "measure_s"))


def task_fields(task: str) -> dict[str, Any]:
    """`task`, `metric`, `higher_is_better`: what every report's JSON names (DESIGN §8)."""
    row = get_task(task)
    return {"task": row.name, "metric": row.metric, "higher_is_better": row.higher_is_better}


# Every multi-class row has these columns, in this order (timings last).
ROW_KEYS = row_keys("multiclass")

# The reference table (the article's): (column title, row key, how to show it).
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
class BaselineReport:
    """The dense model before any pruning: its metrics and its layers."""

    model: ModelRef
    data: DataRef
    description: str  # how the weights were obtained, e.g. "trained 30 epochs on digits"
    metrics: dict[str, float]
    layers: pd.DataFrame  # name, type, output_shape, params, prunable, reason
    dataset: dict[str, Any]  # name, input_shape, classes, n_train, n_test
    environment: dict[str, str]
    model_path: str
    task: str = "multiclass"  # pruning.measure.tasks.TASKS: its headline metric and direction

    @property
    def metric(self) -> str:
        return get_task(self.task).metric

    @property
    def higher_is_better(self) -> bool:
        return get_task(self.task).higher_is_better
    compression: str = COMPRESSION  # how `gzip_bytes` was measured


@dataclass(frozen=True)
class PruneReport:
    """A pruned model measured against its baseline (DESIGN §3, §5, §8)."""

    spec: PruneSpec
    method: str
    granularity: str
    target_sparsity: float
    sparsity: float  # measured zeros among the weights the target applies to
    baseline: dict[str, float]
    pruned: dict[str, float]
    layers: pd.DataFrame  # name, type, params, nonzero_params, sparsity, shape_before, shape_after
    histograms: dict[str, dict[str, Any]]  # layer -> edges, before, after, zeros_before, zeros_after
    mask_images: dict[str, list[list[int]]]  # layer -> percent of weights kept per cell, rows x cols
    timing_s: dict[str, float]
    model_path: str  # "" until the model is written (`Executor.save`, the run store, `prune --out`)
    environment: dict[str, str]
    notes: tuple[str, ...] = ()
    task: str = "multiclass"

    @property
    def metric(self) -> str:
        return get_task(self.task).metric

    @property
    def higher_is_better(self) -> bool:
        return get_task(self.task).higher_is_better
    compression: str = COMPRESSION  # how `gzip_bytes` was measured

    def evaluated(self) -> dict[str, Any]:
        """The first phase of this report, as `on_evaluated` streams it (`evaluated_view`)."""
        return evaluated_view(self.method, self.granularity, self.target_sparsity, self.sparsity,
                              self.baseline, self.pruned, self.timing_s)

    def derived(self) -> dict[str, float]:
        """Relative figures, derived from the measured metrics (never measured apart)."""
        return derive(self.baseline, self.pruned, self.task)

    def to_json_dict(self) -> dict[str, Any]:
        layers = self.layers[
            ["name", "type", "params", "nonzero_params", "sparsity", "shape_before", "shape_after"]
        ]
        return {
            **task_fields(self.task),
            "method": self.method,
            "granularity": self.granularity,
            "target_sparsity": self.target_sparsity,
            "sparsity": self.sparsity,
            "baseline": self.baseline,
            "pruned": self.pruned,
            "derived": self.derived(),
            "layers": json.loads(layers.to_json(orient="records")),
            "timing_s": self.timing_s,
            "model_path": self.model_path,
            "compression": self.compression,
            "environment": self.environment,
            "notes": list(self.notes),
            "spec": self.spec.to_dict(),
        }


def evaluated_view(method: str, granularity: str, target_sparsity: float, sparsity: float,
                   baseline: Mapping[str, float], pruned: Mapping[str, float],
                   timing_s: Mapping[str, float]) -> dict[str, Any]:
    """A prune's first phase: the pruned metrics but MEASURED_KEYS, the full baseline, the
    measured sparsity and the prune/finetune/evaluate timings; sizes and latency follow.

    >>> evaluated_view("magnitude", "unstructured", 0.5, 0.5, {"accuracy": 0.9},
    ...                {"accuracy": 0.8, "latency_ms": 1.0}, {"prune": 0.1, "measure": 2.0})["pruned"]
    {'accuracy': 0.8}
    """
    return {
        "phase": "evaluated", "method": method, "granularity": granularity,
        "target_sparsity": float(target_sparsity), "sparsity": float(sparsity), "baseline": dict(baseline),
        "pruned": {k: v for k, v in pruned.items() if k not in MEASURED_KEYS},
        "timing_s": {k: timing_s[k] for k in ("prune", "finetune", "evaluate") if k in timing_s},
    }


def derive(baseline: Mapping[str, float], pruned: Mapping[str, float], task: str = "multiclass") -> dict[str, float]:
    """The relative figures of DESIGN §5 (`derived_keys(task)`), from measured metrics alone.

    >>> derive({"mae": 0.5, "robust_mae": 0.7, "nonzero_params": 10, "latency_ms": 2.0, "gzip_bytes": 100,
    ...         "effective_flops": 50}, {"mae": 0.6, "robust_mae": 0.9, "nonzero_params": 5, "latency_ms": 2.0,
    ...         "gzip_bytes": 60, "effective_flops": 25}, "regression")["metric_change"]
    0.09999999999999998
    """
    def ratio(num: float, den: float) -> float:
        return float(num / den) if den else float("nan")

    row = get_task(task)
    metric = row.metric
    accuracy = {"accuracy_loss": baseline["accuracy"] - pruned["accuracy"]} if metric == "accuracy" else {}
    return accuracy | {
        "metric_change": row.change(baseline[metric], pruned[metric]),
        "parameter_reduction": 1.0 - ratio(pruned["nonzero_params"], baseline["nonzero_params"]),
        "speedup": ratio(baseline["latency_ms"], pruned["latency_ms"]),
        "size_reduction": 1.0 - ratio(pruned["gzip_bytes"], baseline["gzip_bytes"]),
        "flops_reduction": 1.0 - ratio(pruned["effective_flops"], baseline["effective_flops"]),
        # in the metric's units, pruned minus baseline: for MAE a positive change is worse
        "robustness_change": pruned[f"robust_{metric}"] - baseline[f"robust_{metric}"],
    }


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
    task: str = "multiclass"

    @property
    def metric(self) -> str:
        return get_task(self.task).metric

    @property
    def higher_is_better(self) -> bool:
        return get_task(self.task).higher_is_better
    compression: str = COMPRESSION  # how `gzip_bytes` was measured

    def table(self) -> pd.DataFrame:
        """The reference table, formatted: one row per point, the columns of table_columns(task)."""
        return reference_table(self.rows, self.task)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            **task_fields(self.task),
            "baseline": dict(self.baseline),
            "rows": [{k: to_plain(v, keep_nan=True) for k, v in row.items()} for row in self.rows.to_dict(orient="records")],
            "timing_s": dict(self.timing_s),
            "n_test": self.n_test,
            "spec": self.spec.to_dict(),
            "environment": dict(self.environment),
            "compression": self.compression,
            "notes": list(self.notes),
        }


def report_from_rows(spec: SweepSpec, baseline: Mapping[str, float], rows: Iterable[Mapping[str, Any]],
                     timing_s: Mapping[str, float], environment: Mapping[str, str],
                     task: str = "multiclass") -> SweepReport:
    """A SweepReport rebuilt from stored rows (JSON nulls become NaN), e.g. from the run store."""
    columns = row_keys(task)
    frame = pd.DataFrame([dict(r) for r in rows], columns=list(columns))
    for key in columns:
        if key != "method":
            frame[key] = pd.to_numeric(frame[key])
    baseline = {k: float("nan") if v is None else v for k, v in baseline.items()}
    n_test = int(frame["n_test"].iloc[0]) if len(frame) else 0
    return SweepReport(spec=spec, baseline=baseline, rows=frame, timing_s=dict(timing_s), n_test=n_test,
                       environment=dict(environment), task=task)


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


def table_columns(task: str = "multiclass") -> tuple[tuple[str, str, Callable[[Any], str]], ...]:
    """TABLE_COLUMNS, with the headline metric's columns for a task not measured in accuracy."""
    row = get_task(task)
    if row.metric == "accuracy":
        return TABLE_COLUMNS
    m, name = row.metric, row.label

    def number(v: Any) -> str:
        return f"{v:.4g}"

    swap = {"accuracy": (f"test {name}", m, number), "accuracy_loss": (f"{name} change (+ worse)", "metric_change",
                                                                        lambda v: f"{v:+.4g}"),
            "robust_accuracy": (f"robust {name}", f"robust_{m}", number),
            "train_accuracy": (f"train {name}", f"train_{m}", number)}
    return tuple(swap.get(key, (title, key, fmt)) for title, key, fmt in TABLE_COLUMNS)


def reference_table(rows: pd.DataFrame, task: str = "multiclass") -> pd.DataFrame:
    """Rows (as from a SweepReport) shown like the reference table: strings, one column each."""
    columns = table_columns(task)
    return pd.DataFrame(
        [{title: _show(fmt, row[key]) for title, key, fmt in columns} for _, row in rows.iterrows()],
        columns=[title for title, _, _ in columns],
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


@dataclass(frozen=True)
class SensitivityReport:
    """The headline test metric with one layer pruned at a time: layers (rows, network order) x rates.

    For classifiers the metric is accuracy; the field names say accuracy for every task
    (they hold the headline metric of `task`: MAE for regression).
    """

    spec: SensitivitySpec
    baseline_accuracy: float  # the headline metric of the dense model
    n_test: int
    accuracy: pd.DataFrame  # the headline metric; index: layer; columns: the spec's rates
    drop: pd.DataFrame  # how much worse (metric_change), same shape (negative: pruning helped)
    layer_sizes: dict[str, list[int]]  # layer -> sizes of its prunable tensors (an LSTM has two)
    layer_types: dict[str, str]
    timing_s: dict[str, float]  # prune, evaluate, total, evaluations (count)
    task: str = "multiclass"

    @property
    def metric(self) -> str:
        return get_task(self.task).metric

    @property
    def higher_is_better(self) -> bool:
        return get_task(self.task).higher_is_better

    def layer_params(self) -> dict[str, int]:
        return {layer: int(sum(sizes)) for layer, sizes in self.layer_sizes.items()}

    def to_json_dict(self) -> dict[str, Any]:
        rates = [float(r) for r in self.accuracy.columns]
        metric = self.metric
        layers = [
            {"name": layer, "type": self.layer_types[layer], "params": int(sum(self.layer_sizes[layer])),
             metric: [float(v) for v in self.accuracy.loc[layer]],
             "drop": [float(v) for v in self.drop.loc[layer]]}
            for layer in self.accuracy.index
        ]
        return {**task_fields(self.task), f"baseline_{metric}": self.baseline_accuracy, "n_test": self.n_test,
                "rates": rates, "layers": layers, "timing_s": dict(self.timing_s), "spec": self.spec.to_dict()}



# A sweep report assembled from rows that arrive one point at a time, in any order (Ray),
# or in point order (one workbench): resumed rows replayed, a failing method skipped on.
TIMED_STAGES = ("prune", "finetune", "evaluate", "measure")  # each row's `<stage>_s`, summed


class SweepRows:
    """The rows of one sweep so far; `report()` turns them into its SweepReport, with the rows
    in the spec's point order as `run_sweep` gives them.

    `on_point` gets every kept row as it arrives (resumed ones on `replay()`), and
    `on_progress` the fraction of points done with the latest one named.
    """

    def __init__(self, spec: SweepSpec, resume: Iterable[Mapping[str, Any]] = (),
                 on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None):
        self.spec = spec
        self.points = spec.points()
        self.on_point, self.on_progress = on_point, on_progress
        self.start = time.perf_counter()
        self.resumed = {(str(r["method"]), float(r["target_sparsity"])): dict(r) for r in resume}
        self.rows: dict[int, dict[str, Any]] = {}
        self.failed: dict[str, tuple[int, str]] = {}  # method -> (its first failing point, why)

    def todo(self) -> list[tuple[int, str, float]]:
        """(index, method, rate) of every point still to compute: all but the resumed ones."""
        return [(i, m, r) for i, (m, r) in enumerate(self.points) if (m, r) not in self.resumed]

    def replay(self) -> None:
        """Hand the resumed rows on as if they had just been computed, in point order."""
        for i, point in enumerate(self.points):
            if point in self.resumed:
                self._keep(i, self.resumed[point])

    def add(self, i: int, row: Mapping[str, Any]) -> None:
        """Point `i` finished; dropped if its method already failed at an earlier point."""
        if self._counts(i):
            self._keep(i, dict(row))

    def skip(self, i: int, why: str) -> None:
        """Point `i` could not be computed (BadInput): its method is skipped from here on."""
        name = self.points[i][0]
        if self._counts(i):
            self.failed[name] = (i, why)

    def report(self, baseline: Mapping[str, float], n_test: int, environment: Mapping[str, str],
               task: str = "multiclass") -> SweepReport:
        """The SweepReport of every kept row; BadInput when every method was skipped."""
        kept = [self.rows[i] for i in sorted(self.rows) if self._counts(i)]
        if not kept and self.failed:
            raise BadInput("; ".join(why for _, why in self.failed.values()))
        frame = pd.DataFrame(kept, columns=list(row_keys(task)))
        timing = {key: float(frame[f"{key}_s"].sum()) for key in TIMED_STAGES}
        timing.update(total=time.perf_counter() - self.start, points=len(self.points),
                      resumed=sum(1 for point in self.points if point in self.resumed))
        return SweepReport(spec=self.spec, baseline=dict(baseline), rows=frame, timing_s=timing, n_test=n_test,
                           environment=dict(environment),
                           notes=tuple(f"{name} skipped: {why}" for name, (_, why) in self.failed.items()), task=task)

    def _counts(self, i: int) -> bool:
        """Whether point `i` is before its method's first failure (or the method never failed)."""
        name = self.points[i][0]
        return name not in self.failed or i < self.failed[name][0]

    def _keep(self, i: int, row: dict[str, Any]) -> None:
        self.rows[i] = row
        if self.on_point:
            self.on_point(dict(row))
        if self.on_progress:
            name, rate = self.points[i]
            done, total = len(self.rows), len(self.points)
            self.on_progress(done / total, f"{name} at {rate:.0%}: {task_of(row).show(row)} "
                                           f"({done}/{total} points)")


def task_of(row: Mapping[str, Any]):
    """The task whose headline metric a row carries (rows arrive before the report names it)."""
    return next((task for task in TASKS.values() if task.metric in row), TASKS["multiclass"])


@dataclass(frozen=True)
class DeployReport:
    """A pruned model deployed: its TFLite artifacts measured under the TFLite interpreter.

    `artifacts`: one row per TFLite file (`dense float32`, `pruned float32`, `pruned int8`,
    and `pruned int8 PQAT` with PQAT): `artifact`, `quantization`, `path`, `bytes`,
    `gzip_bytes`, the headline metric and `loss` on the test split, `agreement` (share of
    test predictions equal to the Keras model it came from), `max_abs_diff`, `zeros`,
    `weights`, `sparsity` (read back from its conv/dense weight tensors), `weight_bytes`,
    `activation_bytes`, `memory_bytes`, and `latency_ms` / `latency_p90_ms` per thread
    count (`latency_1t_ms`, `latency_all_ms`, ...). `keras`: `dense` and `pruned` rows with
    `accuracy`, `params`, `zeros` (conv/dense kernels), `memory_bytes` and Keras latency.
    """

    spec: PruneSpec
    options: DeploySpec
    metric: str  # the headline metric the artifacts are scored by
    interface: str  # the int8 model's input/output: float or int8
    threads: int  # "all threads": the cores TFLite was given
    latency_batch: int
    artifacts: list[dict[str, Any]]
    keras: list[dict[str, Any]]
    timing_s: dict[str, float]

    def artifact(self, name: str) -> dict[str, Any]:
        """The row of artifact `name` (KeyError naming the ones there are)."""
        for row in self.artifacts:
            if row["artifact"] == name:
                return row
        raise KeyError(f"no artifact {name!r}: there are {', '.join(r['artifact'] for r in self.artifacts)}")

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"spec": self.spec.to_dict(), "options": self.options.to_dict(), "metric": self.metric,
                         "interface": self.interface, "threads": self.threads, "latency_batch": self.latency_batch,
                         "artifacts": self.artifacts, "keras": self.keras, "timing_s": self.timing_s})

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "DeployReport":
        fields = dict(raw)
        fields["spec"] = PruneSpec.from_dict(fields["spec"])
        fields["options"] = DeploySpec.from_dict(fields["options"])
        return cls(**fields)
