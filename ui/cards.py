"""Metric cards shared by pages: the baseline card and the pruned-vs-baseline cards.

Every number shown is a measured metric from a report; relative figures are derived.
"""
from __future__ import annotations

import math
from typing import Mapping

import streamlit as st

from pruning.measure.tasks import Task, get_task
from pruning.reports import MEASURED_KEYS, PruneReport, derive
from pruning.specs import COMPRESSION

HELP = {
    "accuracy": "Top-1 accuracy on the test split.",
    "train_accuracy": "Accuracy on (up to 2,000 samples of) the training split; the gap to test accuracy shows over-fitting.",
    "robust_accuracy": "Test accuracy with Gaussian noise added to the inputs (sigma in the spec, default 0.1).",
    "params": "All weights of the model, prunable or not (biases and BatchNorm included).",
    "nonzero_params": "Weights that are not exactly zero.",
    "flops": "Dense multiply-accumulates per sample.",
    "effective_flops": "Multiply-accumulates with a nonzero weight: what a sparse kernel could skip to.",
    "size_bytes": "The saved .keras file (no optimizer, no pruning wrappers).",
    "gzip_bytes": f"Weights and config compressed in memory: {COMPRESSION} (an export reports gzip -9 of the "
                  "written file). Zeros compress, so this is where masks pay off.",
    "latency_ms": "Median time of one batch (32 samples) over timed calls of a traced function after warm-up "
                  "(0.5 s of calls, at least 5); the note below the cards gives the dense model's p90.",
    "mae": "Mean absolute error on the test split, in the targets' units (lower is better).",
    "train_mae": "MAE on (up to 2,000 samples of) the training split; the gap to test MAE shows over-fitting.",
    "robust_mae": "Test MAE with Gaussian noise added to the inputs (sigma in the spec, default 0.1).",
    "sparsity": "Fraction of zeros among the prunable weights the target applies to, counted in the pruned model.",
    "memory_bytes": ("Inference memory of one sample: the weights as held in memory (float32; masked zeros are "
                     "still stored, so masks save none) plus the peak live activations, read off the Keras graph "
                     "on every move (no TFLite conversion; the Runs page's Deploy measures each TFLite file too)."),
    "per_mflop": ("The headline metric per effective MFLOP: per million multiply-accumulates with a nonzero weight, "
                  "per sample. The seed's efficiency figure; the delta is its change against the dense model."),
    "per_mb": "The headline metric per MB (1e6 bytes) of inference memory; the delta is its change against the dense model.",
    "r2": "Coefficient of determination on the test split (1 is perfect, 0 is predicting the mean; higher is better).",
    "auc": "ROC AUC of the positive-class probability on the test split (0.5 is chance; higher is better).",
}
EXTRA_LABELS = {"r2": "R²", "auc": "ROC AUC"}


# Both pages time the dense model the same way (median of 30 calls of batch 32 after warm-up);
# they differ in when. The labels say which, so two figures for one model never look like one.
LOAD_LATENCY_LABEL = "Latency (batch 32, at load)"
LOAD_LATENCY_HELP = ("Timed once, when the model was first loaded in the worker (on a fresh start right "
                     "after training it, while the app starts up). The Prune page times the dense model "
                     "again beside every pruned one, under the same load; its speedups use that figure.")
PRUNE_LATENCY_HELP = ("Delta: against the dense model timed alternately with this one in the same run "
                      "(the home page's figure is from when the model was loaded).")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _pct(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2%}"


def points(change: float) -> str:
    """An accuracy change in percentage points: 0.0123 -> "+1.23 pt"."""
    return f"{change * 100:+.2f} pt"


def percent(change: float) -> str:
    """A relative change of a size or a time: -0.5 -> "-50.0%"."""
    return f"{change:+.1%}"


def latency_delta(pruned_ms: float, dense_ms: float, dense_p90_ms: float) -> tuple[str, str]:
    """The pruned latency against the dense one timed alongside, as the card's delta and its
    delta_color: "+12.0% slower" in red (inverse: up is bad), "-30.0% faster" in green, and a
    change within the dense timing's own spread (p90 over median) grey, "within noise"."""
    change = pruned_ms / dense_ms - 1.0 if dense_ms else float("nan")
    noise = dense_p90_ms / dense_ms - 1.0 if dense_ms else float("nan")
    if abs(change) <= noise:
        return f"{percent(change)} within noise", "off"
    return f"{percent(change)} {'slower' if change > 0 else 'faster'}", "inverse"


def dense_latency_note(report: PruneReport, at_load_ms: float) -> str:
    """Both dense latencies, each named by when it was timed (the home page shows the second)."""
    base = report.baseline
    return (f"Dense latency timed alongside this model: {base['latency_ms']:.2f} ms (p90 "
            f"{base['latency_p90_ms']:.2f} ms), the latency delta's reference; timed at load (the home page's "
            f"figure): {at_load_ms:.2f} ms. Same definition (median of timed batches of "
            f"{report.spec.latency_batch}), different moments.")


def shown(task: Task, value: float) -> str:
    """A headline-metric value in its unit: a percentage for accuracy, 4 digits for MAE."""
    if task.unit == "%":
        return _pct(value)
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def baseline_cards(metrics: Mapping[str, float], task: str = "multiclass") -> None:
    row = get_task(task)
    m = row.metric
    top, bottom = st.columns(4), st.columns(4)
    top[0].metric(f"Test {row.label}", shown(row, metrics[m]), help=HELP.get(m, HELP["accuracy"]))
    top[1].metric(f"Train {row.label}", shown(row, metrics[f"train_{m}"]), help=HELP.get(f"train_{m}", ""))
    top[2].metric("Parameters", f"{metrics['params']:,}", help=HELP["params"])
    top[3].metric("FLOPs (MACs)", f"{metrics['flops']:,}", help=HELP["flops"])
    bottom[0].metric("File size", human_bytes(metrics["size_bytes"]), help=HELP["size_bytes"])
    bottom[1].metric("gzip size", human_bytes(metrics["gzip_bytes"]), help=HELP["gzip_bytes"])
    bottom[2].metric(LOAD_LATENCY_LABEL, f"{metrics['latency_ms']:.2f} ms",
                     help=HELP["latency_ms"] + " " + LOAD_LATENCY_HELP)
    for key in row.extra[:1]:  # binary: ROC AUC; regression: R² (the headline's companion)
        bottom[3].metric(f"Test {EXTRA_LABELS[key]}", f"{metrics[key]:.4g}", help=HELP[key])


def resource_cards(baseline: Mapping[str, float], pruned: Mapping[str, float], task: str = "multiclass") -> None:
    """Inference memory and efficiency, pruned against dense: a row of cards beside `pruned_cards`.

    Takes plain metric dicts (a report's, or its evaluated view's: every figure here is measured in
    the evaluate phase), so the row can show before sizes and latency arrive.
    """
    row = get_task(task)
    m = row.metric
    if "memory_bytes" not in pruned:  # a report stored before memory was measured
        return

    def given(value) -> bool:  # NaN in process, None once it crossed as JSON: not measured
        return value is not None and not (isinstance(value, float) and math.isnan(value))

    cols = st.columns(6)
    memory, dense_memory = pruned["memory_bytes"], baseline.get("memory_bytes")
    if given(memory) and given(dense_memory) and dense_memory:
        cols[0].metric("Inference memory", human_bytes(memory),
                       delta=f"{percent(memory / dense_memory - 1.0)} of {human_bytes(dense_memory)}",
                       delta_color="off" if memory == dense_memory else "inverse",  # masks: no change, no red arrow
                       help=HELP["memory_bytes"])
    else:  # a model with no graph to read its activations off (a subclassed one)
        cols[0].metric("Inference memory", "n/a", help=HELP["memory_bytes"])
    for col, key, title, help_key in ((cols[1], f"{m}_per_mflop", f"{row.label} per MFLOP", "per_mflop"),
                                      (cols[2], f"{m}_per_mb", f"{row.label} per MB", "per_mb")):
        value, dense = pruned.get(key), baseline.get(key)
        gain = value / dense if given(value) and given(dense) and dense else None
        col.metric(title, f"{value:.4g}" if given(value) else "n/a",
                   delta=None if gain is None else f"{percent(gain - 1.0)} vs dense ({gain:.2f}x)",
                   delta_color="off" if gain is None or not row.higher_is_better else "normal",
                   help=HELP[help_key] + ("" if row.higher_is_better else
                                          f" {row.label} is lower-is-better: a larger figure here is not better."))


def pruned_cards(report: PruneReport) -> None:
    """Pruned against dense: accuracy changes in points, sizes and times in percent, a
    slowdown in red with the word "slower" (never a green arrow)."""
    _cards(report.baseline, report.pruned, report.task, report.granularity, report.sparsity,
           report.target_sparsity)


def evaluated_cards(view: Mapping, task: str) -> None:
    """The same cards from a prune's first phase (`reports.evaluated_view`, streamed before
    sizes and latency are measured): those two show MEASURING until the full report is in."""
    _cards(view["baseline"], view["pruned"], task, view["granularity"], view["sparsity"], view["target_sparsity"])


MEASURING = "measuring…"  # the value of a card whose figure the measure phase has not sent yet


def _cards(base: Mapping[str, float], pruned: Mapping[str, float], task: str, granularity: str,
           sparsity: float, target_sparsity: float) -> None:
    row = get_task(task)
    m = row.metric
    # what the measure phase has not sent yet derives to nan and its card shows MEASURING
    derived = derive(base, {key: float("nan") for key in MEASURED_KEYS} | dict(pruned), task)
    unstructured = granularity != "structured"
    cols = st.columns(6)
    if m == "accuracy":
        cols[0].metric(f"Test {row.label}", _pct(pruned["accuracy"]), delta=points(-derived["accuracy_loss"]),
                       help=HELP["accuracy"] + " Delta: the change against the dense model, in percentage points.")
    else:  # lower is better: a rise is shown red
        cols[0].metric(f"Test {row.label}", shown(row, pruned[m]), delta=f"{pruned[m] - base[m]:+.4g}",
                       delta_color="normal" if row.higher_is_better else "inverse", help=HELP.get(m, ""))
    cols[1].metric("Sparsity (measured)", _pct(sparsity),
                   delta=f"requested {target_sparsity:.2%}", delta_color="off", help=HELP["sparsity"])
    cols[2].metric("Nonzero params", f"{pruned['nonzero_params']:,}",
                   delta=f"{percent(-derived['parameter_reduction'])} of {base['nonzero_params']:,}",
                   delta_color="inverse", help=HELP["nonzero_params"])
    if "gzip_bytes" in pruned:
        cols[3].metric("gzip size", human_bytes(pruned["gzip_bytes"]),
                       delta=f"{percent(-derived['size_reduction'])} of {human_bytes(base['gzip_bytes'])}",
                       delta_color="inverse", help=HELP["gzip_bytes"])
    else:
        cols[3].metric("gzip size", MEASURING, help=HELP["gzip_bytes"])
    latency_help = HELP["latency_ms"] + " " + PRUNE_LATENCY_HELP + (
        " Masks keep kernels dense, so about 1.0x is expected: zeros are still multiplied." if unstructured else ""
    )
    latency_label = "Latency (masks ≈ 1x)" if unstructured else "Latency (batch 32)"
    if "latency_ms" in pruned:
        latency, color = latency_delta(pruned["latency_ms"], base["latency_ms"], base["latency_p90_ms"])
        cols[4].metric(latency_label, f"{pruned['latency_ms']:.2f} ms", delta=latency, delta_color=color,
                       help=latency_help)
    else:
        cols[4].metric(latency_label, MEASURING, help=latency_help)
    robust = points(derived["robustness_change"]) if row.unit == "%" else f"{derived['robustness_change']:+.4g}"
    cols[5].metric(f"Robust {row.label}", shown(row, pruned[f"robust_{m}"]), delta=robust,
                   delta_color="normal" if row.higher_is_better else "inverse",
                   help=HELP.get(f"robust_{m}", "") + " Delta: against the dense model"
                   + (", in percentage points." if row.unit == "%" else "."))
    extras = [f"{EXTRA_LABELS[k]} {pruned[k]:.4g} (dense {base[k]:.4g})" for k in row.extra
              if k in pruned and k in base]
    if extras:  # the headline's companions: R² beside MAE, ROC AUC beside a binary accuracy
        st.caption("Test " + " · ".join(extras) + ".")
