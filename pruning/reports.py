"""The plain-data reports the backend returns: baseline, prune, sweep and sensitivity.

Numbers, strings, lists, dicts and DataFrames only (DESIGN §3), so they cache, store, print
as JSON and cross a process boundary; no TensorFlow here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from .plain import to_plain
from .specs import COMPRESSION, METRIC_KEYS, DataRef, ModelRef, PruneSpec, SensitivitySpec, SweepSpec

Z95 = 1.959963984540054  # two-sided 95 % normal quantile

# What the "evaluate" phase of a prune gives, before sizes and latency are measured.
EVALUATED_KEYS = ("accuracy", "loss", "train_accuracy", "robust_accuracy", "params", "nonzero_params",
                  "flops", "effective_flops")
DERIVED_KEYS = ("accuracy_loss", "parameter_reduction", "speedup", "size_reduction",
                "flops_reduction", "robustness_change")
# Every row has these columns, in this order (timings last).
ROW_KEYS = (
    ("method", "target_sparsity", "sparsity") + METRIC_KEYS
    + ("accuracy_low", "accuracy_high", "accuracy_ci95", "n_test", "base_latency_ms")
    + DERIVED_KEYS + ("finetune_epochs", "prune_s", "finetune_s", "evaluate_s", "measure_s")
)

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
    compression: str = COMPRESSION  # how `gzip_bytes` was measured

    def evaluated(self) -> dict[str, Any]:
        """The first phase of this report, as `on_evaluated` streams it (`evaluated_view`)."""
        return evaluated_view(self.method, self.granularity, self.target_sparsity, self.sparsity,
                              self.baseline, self.pruned, self.timing_s)

    def derived(self) -> dict[str, float]:
        """Relative figures, derived from the measured metrics (never measured apart)."""
        return derive(self.baseline, self.pruned)

    def to_json_dict(self) -> dict[str, Any]:
        layers = self.layers[
            ["name", "type", "params", "nonzero_params", "sparsity", "shape_before", "shape_after"]
        ]
        return {
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
    """A prune's first phase: the EVALUATED_KEYS of the pruned model, the full baseline, the
    measured sparsity and the prune/finetune/evaluate timings; sizes and latency follow.

    >>> evaluated_view("magnitude", "unstructured", 0.5, 0.5, {"accuracy": 0.9},
    ...                {"accuracy": 0.8, "latency_ms": 1.0}, {"prune": 0.1, "measure": 2.0})["pruned"]
    {'accuracy': 0.8}
    """
    return {
        "phase": "evaluated", "method": method, "granularity": granularity,
        "target_sparsity": float(target_sparsity), "sparsity": float(sparsity), "baseline": dict(baseline),
        "pruned": {k: pruned[k] for k in EVALUATED_KEYS if k in pruned},
        "timing_s": {k: timing_s[k] for k in ("prune", "finetune", "evaluate") if k in timing_s},
    }


def derive(baseline: dict[str, float], pruned: dict[str, float]) -> dict[str, float]:
    def ratio(num: float, den: float) -> float:
        return float(num / den) if den else float("nan")

    return {
        "accuracy_loss": baseline["accuracy"] - pruned["accuracy"],
        "parameter_reduction": 1.0 - ratio(pruned["nonzero_params"], baseline["nonzero_params"]),
        "speedup": ratio(baseline["latency_ms"], pruned["latency_ms"]),
        "size_reduction": 1.0 - ratio(pruned["gzip_bytes"], baseline["gzip_bytes"]),
        "flops_reduction": 1.0 - ratio(pruned["effective_flops"], baseline["effective_flops"]),
        "robustness_change": pruned["robust_accuracy"] - baseline["robust_accuracy"],
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
    compression: str = COMPRESSION  # how `gzip_bytes` was measured

    def table(self) -> pd.DataFrame:
        """The reference table, formatted: one row per point, the columns of TABLE_COLUMNS."""
        return reference_table(self.rows)

    def to_json_dict(self) -> dict[str, Any]:
        return {
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


def reference_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows (as from a SweepReport) shown like the reference table: strings, one column each."""
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


@dataclass(frozen=True)
class SensitivityReport:
    """Test accuracy with one layer pruned at a time: layers (rows, network order) x rates (columns)."""

    spec: SensitivitySpec
    baseline_accuracy: float
    n_test: int
    accuracy: pd.DataFrame  # index: layer; columns: the spec's rates
    drop: pd.DataFrame  # baseline_accuracy - accuracy, same shape (negative: pruning helped)
    layer_sizes: dict[str, list[int]]  # layer -> sizes of its prunable tensors (an LSTM has two)
    layer_types: dict[str, str]
    timing_s: dict[str, float]  # prune, evaluate, total, evaluations (count)

    def layer_params(self) -> dict[str, int]:
        return {layer: int(sum(sizes)) for layer, sizes in self.layer_sizes.items()}

    def to_json_dict(self) -> dict[str, Any]:
        rates = [float(r) for r in self.accuracy.columns]
        layers = [
            {"name": layer, "type": self.layer_types[layer], "params": int(sum(self.layer_sizes[layer])),
             "accuracy": [float(v) for v in self.accuracy.loc[layer]],
             "drop": [float(v) for v in self.drop.loc[layer]]}
            for layer in self.accuracy.index
        ]
        return {"baseline_accuracy": self.baseline_accuracy, "n_test": self.n_test, "rates": rates,
                "layers": layers, "timing_s": dict(self.timing_s), "spec": self.spec.to_dict()}
