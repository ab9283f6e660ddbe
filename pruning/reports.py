"""The plain-data reports the backend returns: baseline, prune, sweep, sensitivity and deploy.

Numbers, strings, lists, dicts and DataFrames only (DESIGN §3), so they cache, store, print
as JSON and cross a process boundary; no TensorFlow here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pandas as pd

from .measure.tasks import get_task
from .plain import to_plain
from .specs import (
    COMPRESSION,
    METRIC_KEYS,
    DataRef,
    DeploySpec,
    ModelRef,
    PruneSpec,
    SensitivitySpec,
    SweepSpec,
)
from .tables import reference_table

# What a prune's "measure" phase adds after its "evaluate" phase: sizes and latency. The
# evaluated view streams everything else first (the headline metric of any task included).
MEASURED_KEYS = ("size_bytes", "gzip_bytes", "latency_ms", "latency_p10_ms", "latency_p90_ms")

# `metric_change`: how much worse the headline metric got, in its units, whatever its
# direction (accuracy: baseline - pruned; MAE: pruned - baseline); negative: it improved.
DERIVED_KEYS = ("accuracy_loss", "metric_change", "parameter_reduction", "speedup", "size_reduction",
                "flops_reduction", "memory_reduction", "efficiency_gain", "robustness_change")
SIZE_KEYS = METRIC_KEYS[4:]  # params ... latency_p90_ms: the same for every task


def efficiency_keys(task: str = "multiclass") -> tuple[str, ...]:
    """The efficiency figures of `task`: its headline metric per effective MFLOP and per MB of memory."""
    metric = get_task(task).metric
    return f"{metric}_per_mflop", f"{metric}_per_mb"


def metric_keys(task: str = "multiclass") -> tuple[str, ...]:
    """The metric keys of DESIGN §5 for `task`: METRIC_KEYS, then the efficiency figures."""
    return get_task(task).metric_keys + SIZE_KEYS + efficiency_keys(task)


def efficiency(metrics: Mapping[str, float], metric: str) -> dict[str, float]:
    """The headline metric per effective MFLOP (million nonzero-weight MACs per sample) and per MB
    (1e6 bytes) of `memory_bytes`: the seed's efficiency figure, from measured metrics alone.

    For a lower-is-better metric (MAE) a larger figure is not better: compare `metric_change`.

    >>> efficiency({"accuracy": 0.9, "effective_flops": 2_000_000, "memory_bytes": 500_000}, "accuracy")
    {'accuracy_per_mflop': 0.45, 'accuracy_per_mb': 1.8}
    """
    def per(amount: float) -> float:
        return float(metrics[metric] / (amount / 1e6)) if amount else float("nan")

    return {f"{metric}_per_mflop": per(metrics["effective_flops"]),
            f"{metric}_per_mb": per(metrics.get("memory_bytes", 0))}


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



class HeadlineMetric:
    """What every report says of its task (`task` is a field of each): the headline metric's
    key and its direction (DESIGN §5)."""

    task: str

    @property
    def metric(self) -> str:
        return get_task(self.task).metric

    @property
    def higher_is_better(self) -> bool:
        return get_task(self.task).higher_is_better


@dataclass(frozen=True)
class BaselineReport(HeadlineMetric):
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

    compression: str = COMPRESSION  # how `gzip_bytes` was measured


@dataclass(frozen=True)
class PruneReport(HeadlineMetric):
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
    metric, nan = row.metric, float("nan")
    accuracy = {"accuracy_loss": baseline["accuracy"] - pruned["accuracy"]} if metric == "accuracy" else {}
    return accuracy | {
        "metric_change": row.change(baseline[metric], pruned[metric]),
        "parameter_reduction": 1.0 - ratio(pruned["nonzero_params"], baseline["nonzero_params"]),
        "speedup": ratio(baseline["latency_ms"], pruned["latency_ms"]),
        "size_reduction": 1.0 - ratio(pruned["gzip_bytes"], baseline["gzip_bytes"]),
        "flops_reduction": 1.0 - ratio(pruned["effective_flops"], baseline["effective_flops"]),
        # runs stored before memory was measured have neither figure: NaN, not a KeyError
        "memory_reduction": 1.0 - ratio(pruned.get("memory_bytes", nan), baseline.get("memory_bytes", nan)),
        "efficiency_gain": ratio(pruned.get(f"{metric}_per_mflop", nan), baseline.get(f"{metric}_per_mflop", nan)),
        # in the metric's units, pruned minus baseline: for MAE a positive change is worse
        "robustness_change": pruned[f"robust_{metric}"] - baseline[f"robust_{metric}"],
    }


@dataclass(frozen=True)
class SweepReport(HeadlineMetric):
    """The dense baseline and one row per (method, rate); `rows` has the columns of ROW_KEYS."""

    spec: SweepSpec
    baseline: dict[str, float]
    rows: pd.DataFrame
    timing_s: dict[str, float]  # prune, finetune, evaluate, measure, total (+ points, resumed)
    n_test: int
    environment: dict[str, str]
    notes: tuple[str, ...] = ()  # e.g. a method skipped because it cannot prune this model
    task: str = "multiclass"
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


@dataclass(frozen=True)
class SensitivityReport(HeadlineMetric):
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
