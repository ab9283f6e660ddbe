"""Plotly figures shared by the HTML report and the app's charts: plain data in, `go.Figure` out.

Pure and Streamlit-free; one colour per method (palette.py) and one layout helper for both.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..measure.tasks import TASKS, Task
from .palette import BASELINE_COLOR, method_color

HIST_COLUMNS = 3
PERCENT_KEYS = ("accuracy", "train_accuracy", "robust_accuracy", "auc")
MULTICLASS = TASKS["multiclass"]  # what runs stored before task heads were measured with
METRIC_LABELS = {
    "accuracy": "test accuracy",
    "robust_accuracy": "robust accuracy (noisy inputs)",
    "train_accuracy": "train accuracy",
    "auc": "test ROC AUC",
    "mae": "test MAE",
    "robust_mae": "robust MAE (noisy inputs)",
    "train_mae": "train MAE",
    "r2": "test R²",
    "loss": "test loss",
    "params": "parameters",
    "nonzero_params": "nonzero parameters",
    "flops": "FLOPs (MACs / sample)",
    "effective_flops": "effective FLOPs (nonzero weights)",
    "size_bytes": ".keras size (bytes)",
    "gzip_bytes": ".keras gzip size (bytes)",
    "latency_ms": "latency (ms / batch)",
    "latency_p90_ms": "latency p90 (ms / batch)",
}
# Where a figure is shown -> its margins and legend: a page column is narrower than a report.
LAYOUTS: dict[str, dict[str, Any]] = {
    "page": {"margin": dict(l=40, r=20, t=50, b=40), "legend": dict(orientation="h", y=-0.25)},
    "report": {"margin": dict(l=50, r=20, t=60, b=50), "legend": dict(orientation="h", y=-0.2)},
}
LayerRows = Union[pd.DataFrame, Sequence[Mapping[str, Any]]]


def metric_formats(task: Task) -> tuple[str, str]:
    """(axis tick format, hover format) of a task's headline metric: percent, or 4 digits.

    >>> metric_formats(TASKS["regression"]), metric_formats(MULTICLASS)
    (('', '.4g'), ('.0%', '.2%'))
    """
    return (".0%", ".2%") if task.unit == "%" else ("", ".4g")


def upper_first(text: str) -> str:
    """"MAE" stays "MAE" (str.capitalize would make it "Mae"): "mean per-label accuracy" -> "Mean per-label accuracy"."""
    return text[:1].upper() + text[1:]


def titled(fig: go.Figure, title: str, x: str, y: str, place: str = "page") -> go.Figure:
    """The house layout: title, axis titles, white template, and the margins of `place` (LAYOUTS)."""
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white", **LAYOUTS[place])
    return fig


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _records(layers: LayerRows) -> list[Mapping[str, Any]]:
    return layers.to_dict(orient="records") if isinstance(layers, pd.DataFrame) else list(layers)


def layer_sparsity_figure(layers: LayerRows, method: str, place: str = "page") -> go.Figure:
    """Measured sparsity per prunable layer, in network order, with the requested one marked.

    Args:
        layers: a report's layer table (a DataFrame, or its rows as stored): `name`,
            `sparsity` (missing for layers with nothing to prune), `nonzero_params`, `params`
            and, where a target was set, `target_sparsity`.
        method: colours the bars.
        place: `page` or `report` (LAYOUTS).
    """
    rows = [r for r in _records(layers) if _given(r.get("sparsity"))]
    names = [r["name"] for r in rows]
    fig = go.Figure()
    fig.add_bar(
        x=names, y=[r["sparsity"] for r in rows], name="measured", marker_color=method_color(method),
        customdata=[[r["nonzero_params"], r["params"]] for r in rows],
        hovertemplate="%{x}<br>measured sparsity %{y:.1%}<br>%{customdata[0]:,} of %{customdata[1]:,} weights left<extra></extra>",
    )
    targets = [r.get("target_sparsity") if _given(r.get("target_sparsity")) else None for r in rows]
    if any(t is not None for t in targets):
        fig.add_scatter(
            x=names, y=targets, mode="markers", name="requested",
            marker=dict(symbol="line-ew-open", size=28, color="black", line=dict(width=2)),
            hovertemplate="%{x}<br>requested %{y:.1%}<extra></extra>",
        )
    fig.update_xaxes(categoryorder="array", categoryarray=names)
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return titled(fig, "Sparsity per layer (measured)", "layer (network order)", "zeros among prunable weights", place)


def metrics_figure(baseline: Mapping[str, Any], pruned: Mapping[str, Any], method: str,
                   task: Task = MULTICLASS) -> go.Figure:
    """Left: the headline metric (test, train, robust) side by side. Right: the pruned model as
    a share of the baseline."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(upper_first(task.label), "Pruned as a share of baseline"))
    m = task.metric
    acc = [k for k in (m, f"train_{m}", f"robust_{m}") if baseline.get(k) is not None and pruned.get(k) is not None]
    labels = [METRIC_LABELS.get(k, k).replace("accuracy", task.label) if task.unit == "%" else METRIC_LABELS.get(k, k)
              for k in acc]
    fig.add_bar(x=labels, y=[baseline[k] for k in acc], name="baseline", marker_color=BASELINE_COLOR, row=1, col=1)
    fig.add_bar(x=labels, y=[pruned[k] for k in acc], name="pruned", marker_color=method_color(method), row=1, col=1)
    shares = [k for k in ("nonzero_params", "effective_flops", "size_bytes", "gzip_bytes", "latency_ms")
              if baseline.get(k) and pruned.get(k) is not None]
    fig.add_bar(x=[METRIC_LABELS[k] for k in shares], y=[pruned[k] / baseline[k] for k in shares],
                name="pruned / baseline", marker_color=method_color(method), showlegend=False, row=1, col=2)
    if task.unit == "%":
        fig.update_yaxes(tickformat=".0%", row=1, col=1, range=[0, 1])
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(barmode="group", template="plotly_white", title="Baseline vs pruned", height=420,
                      legend=dict(orientation="h", y=-0.35))
    return fig


def histograms_figure(histograms: Mapping[str, Mapping[str, Any]], method: str) -> go.Figure:
    """Nonzero weights before (grey) and after, one panel per layer; zeros counted in the title."""
    layers = list(histograms)
    rows = max(1, math.ceil(len(layers) / HIST_COLUMNS))
    titles = [f"{name} (zeros {h['zeros_before']:,} -> {h['zeros_after']:,})" for name, h in histograms.items()]
    fig = make_subplots(rows=rows, cols=HIST_COLUMNS, subplot_titles=titles)
    for i, (name, hist) in enumerate(histograms.items()):
        edges = list(hist["edges"])
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        row, col = divmod(i, HIST_COLUMNS)
        fig.add_bar(x=centers, y=list(hist["before"]), name="before (dense)", legendgroup="before",
                    showlegend=i == 0, marker_color=BASELINE_COLOR, opacity=0.55, row=row + 1, col=col + 1)
        fig.add_bar(x=centers, y=list(hist["after"]), name="after (nonzero)", legendgroup="after",
                    showlegend=i == 0, marker_color=method_color(method), opacity=0.8, row=row + 1, col=col + 1)
    fig.update_layout(barmode="overlay", bargap=0, template="plotly_white", height=260 * rows + 80,
                      title="Weight distributions per layer (pruned zeros are counted, not drawn)",
                      legend=dict(orientation="h", y=-0.08))
    return fig


def waterfall_figure(stages: pd.DataFrame) -> go.Figure:
    """Bytes from the dense .keras file to a compressed int8 TFLite file (export.size_waterfall's
    frame); each bar says its size and, where measured, its headline metric (the frame's column
    after `ratio`: `accuracy` as a percentage, `mae` and the like in 4 digits)."""
    values = [int(v) for v in stages["bytes"]]
    columns = list(stages.columns)
    metric = (columns[columns.index("ratio") + 1] if "ratio" in columns[:-1]
              else next((k for k in ("accuracy", "mae") if k in columns), None))
    metric = None if metric == "measured_by" else metric
    scores = list(stages[metric]) if metric else [None] * len(values)
    shown = "{:.1%}" if metric == "accuracy" else f"{'MAE' if metric == 'mae' else metric} " + "{:.4g}"
    text = [f"{v / 1024:,.1f} KB" + (f" · {shown.format(a)}" if _given(a) else "") for v, a in zip(values, scores)]
    measure = list(stages["measure"]) if "measure" in stages else ["absolute"] + ["relative"] * (len(values) - 1)
    # an absolute bar starts from zero (the dense file, or a second branch), a relative one from the bar before
    changes = [v if m == "absolute" else v - values[i - 1] for i, (v, m) in enumerate(zip(values, measure))]
    fig = go.Figure(go.Waterfall(
        x=list(stages["stage"]), y=changes, measure=measure,
        text=text, textposition="outside",
        decreasing=dict(marker=dict(color="#2ca02c")), increasing=dict(marker=dict(color="#d62728")),
        totals=dict(marker=dict(color=BASELINE_COLOR)),
    ))
    return titled(fig, f"Model size, step by step (and {'MAE' if metric == 'mae' else metric or 'accuracy'})", "", "bytes", "report")


def tradeoff_figure(points: Iterable[Mapping[str, Any]], highlight: Optional[Mapping[str, Any]] = None,
                    x: str = "sparsity", y: str = "accuracy") -> go.Figure:
    """The metric `y` (the headline: accuracy, MAE) against measured sparsity, one line per
    (sweep `run_id`, method); `highlight` as a star."""
    fig = go.Figure()
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for p in points:
        if p.get(x) is not None and p.get(y) is not None:
            groups.setdefault((p.get("run_id"), p.get("method", "?")), []).append(p)
    for (run_id, method), rows in groups.items():
        rows = sorted(rows, key=lambda r: r[x])
        label = method if run_id is None else f"{method} (sweep #{run_id})"
        fig.add_scatter(x=[r[x] for r in rows], y=[r[y] for r in rows], mode="lines+markers", name=label,
                        line=dict(color=method_color(method)))
    if highlight is not None:
        fig.add_scatter(x=[highlight[x]], y=[highlight[y]], mode="markers", name="this run",
                        marker=dict(symbol="star", size=16, color="black"))
    label = METRIC_LABELS.get(y, y)
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(tickformat=".0%" if y in PERCENT_KEYS else "")
    return titled(fig, f"Trade-off: {label} vs measured sparsity", "measured sparsity", label, "report")
