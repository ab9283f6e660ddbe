"""The pages' own plotly figures: plain data in, `go.Figure` out, no Streamlit.

Figures the HTML report shows too live in pruning/runs/figures.py; they are imported here.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# shared with the HTML report; pages reach every figure as charts.*
from pruning.measure.tasks import Task, get_task
from pruning.runs.figures import (  # noqa: F401
    METRIC_LABELS,
    MULTICLASS,
    PERCENT_KEYS,
    layer_sparsity_figure,
    metric_formats,
    titled,
    upper_first,
)
from pruning.runs.figures import waterfall_figure as size_waterfall_figure  # noqa: F401
from pruning.runs.palette import (  # one colour table for the app and the reports
    BASELINE_COLOR,
    method_color,
)

ZERO_COLOR = "#d62728"
# a structured method's points: it removed filters or units, so the model really shrank
GRANULARITY_SYMBOLS = {"structured": "diamond", "n:m": "square", "unstructured": "circle"}


def _variant(visit: Mapping[str, Any]) -> str:
    """What, beside the method, sets a visited point apart (its trace name says it)."""
    parts = ["global" if visit["scope"] == "global" else ""]
    parts += [f"{visit['finetune_epochs']} ep fine-tuned" if visit["finetune_epochs"] else ""]
    parts += ["BN re-estimated" if visit["recalibrate_bn"] else "", "some layers" if visit["partial"] else ""]
    return ", ".join(p for p in parts if p)


def tradeoff_figure(visits: Sequence[Mapping[str, Any]], current: str) -> go.Figure:
    """The session's visited points: headline metric against MEASURED sparsity, one trace per
    method (and setting), in the method's colour; structured methods as diamonds; the point
    `current` (a visit's key) ringed; the dense baseline as a dashed line.

    Each point's customdata is its `restores` list: what a click on it sets the controls to.
    """
    fig = go.Figure()
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for visit in visits:
        groups.setdefault((visit["method"], _variant(visit)), []).append(visit)
    task = get_task(visits[-1].get("task") if visits else None)
    label = f"test {task.label}"
    y_format = ".1%" if task.unit == "%" else ".4g"
    for (method, variant), rows in groups.items():
        rows = sorted(rows, key=lambda v: v["sparsity"])
        color = method_color(method)
        symbol = GRANULARITY_SYMBOLS.get(rows[0]["granularity"], "circle")
        name = f"{method} ({variant})" if variant else method
        fig.add_scatter(
            x=[v["sparsity"] for v in rows], y=[v["value"] for v in rows], mode="lines+markers", name=name,
            line=dict(color=color, width=1.5), marker=dict(color=color, size=10, symbol=symbol),
            customdata=[v["restores"] for v in rows], unselected=dict(marker=dict(opacity=1)),
            hovertemplate=f"{name} ({rows[0]['granularity']})<br>measured sparsity %{{x:.1%}} "
                          f"(requested %{{customdata[1]:.0%}})<br>{label} %{{y:{y_format}}}"
                          "<br>click to go back to this point<extra></extra>",
        )
    now = [v for v in visits if v["key"] == current]
    if now:
        v = now[0]
        fig.add_scatter(
            x=[v["sparsity"]], y=[v["value"]], mode="markers", name="this point",
            marker=dict(color="rgba(0,0,0,0)", size=20, symbol=GRANULARITY_SYMBOLS.get(v["granularity"], "circle"),
                        line=dict(color="black", width=2.5)),
            customdata=[v["restores"]], unselected=dict(marker=dict(opacity=1)),
            hovertemplate=f"this point<br>measured sparsity %{{x:.1%}}<br>{label} %{{y:{y_format}}}<extra></extra>",
        )
        fig.add_hline(y=v["baseline"], line=dict(color=BASELINE_COLOR, dash="dash"),
                      annotation_text=f"dense baseline {v['baseline']:{y_format}}",
                      annotation_position="bottom left")
    fig.update_xaxes(tickformat=".0%", range=[-0.02, 1.0])
    fig.update_yaxes(tickformat=y_format if task.unit == "%" else "")
    fig.update_layout(clickmode="event+select", dragmode=False)
    return titled(fig, f"Trade-off: {label} vs measured sparsity, every point you visited", "sparsity (measured)",
                  label)


def weight_histogram_figure(hist: Mapping[str, Any], layer: str, method: str) -> go.Figure:
    """Nonzero weights before and after; pruned zeros are counted apart, not drawn, so the hole shows."""
    edges = np.asarray(hist["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    fig = go.Figure()
    fig.add_bar(x=centers, y=hist["before"], width=width, name="before (dense)",
                marker_color=BASELINE_COLOR, opacity=0.55)
    fig.add_bar(x=centers, y=hist["after"], width=width, name="after (nonzero)",
                marker_color=method_color(method), opacity=0.75)
    fig.update_layout(barmode="overlay")
    fig.add_annotation(
        xref="paper", yref="paper", x=1, y=1.08, showarrow=False, align="right",
        text=f"zeros: {hist['zeros_before']:,} before, {hist['zeros_after']:,} after (not drawn)",
        font=dict(color=ZERO_COLOR),
    )
    return titled(fig, f"Weight distribution: {layer}", "weight value", "count")


def mask_image_figure(image: Sequence[Sequence[int]], layer: str) -> go.Figure:
    """Percent of weights kept per cell of the kernel (rows: inputs x kernel positions, columns: outputs)."""
    fig = go.Figure(go.Heatmap(
        z=image, zmin=0, zmax=100, colorscale=[[0, "#ffffff"], [1, "#08306b"]],
        colorbar=dict(title="% kept"), hovertemplate="row %{y}, col %{x}: %{z}% kept<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return titled(fig, f"Mask of {layer} (dark = kept)", "output unit / filter", "input x kernel position")


# -- sweeps and sensitivity (issue 4) -------------------------------------------------------
def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sweep_metric_figure(rows: pd.DataFrame, y: str, title: str, y_title: str,
                        baseline: float | None = None, band: bool = False, y_format: str = "") -> go.Figure:
    """`y` against measured sparsity, one line per method; with `band`, the 95% interval of
    the headline metric `y` (`y`_low..`y`_high) as a shaded band; the dense value as a reference."""
    fig = go.Figure()
    for method, part in rows.groupby("method", sort=False):
        part = part.sort_values("sparsity")
        color = method_color(str(method))
        if band:
            fig.add_scatter(x=part["sparsity"], y=part[f"{y}_high"], mode="lines", line=dict(width=0),
                            showlegend=False, hoverinfo="skip", legendgroup=str(method))
            fig.add_scatter(x=part["sparsity"], y=part[f"{y}_low"], mode="lines", line=dict(width=0),
                            fill="tonexty", fillcolor=_rgba(color, 0.18), name=f"{method} 95% CI",
                            showlegend=False, hoverinfo="skip", legendgroup=str(method))
        fig.add_scatter(
            x=part["sparsity"], y=part[y], mode="lines+markers", name=str(method), legendgroup=str(method),
            line=dict(color=color), marker=dict(color=color), customdata=part["target_sparsity"],
            hovertemplate=f"{method}<br>measured sparsity %{{x:.1%}} (requested %{{customdata:.0%}})"
                          f"<br>{y_title} %{{y{':' + y_format if y_format else ''}}}<extra></extra>",
        )
    if baseline is not None:
        fig.add_hline(y=baseline, line=dict(color=BASELINE_COLOR, dash="dash"),
                      annotation_text="dense baseline", annotation_position="bottom left")
    fig.update_xaxes(tickformat=".0%", range=[-0.02, 1.0])
    if y_format:
        fig.update_yaxes(tickformat=y_format)
    return titled(fig, title, "sparsity (measured)", y_title)


def pareto_front(points: pd.DataFrame, cost: str, value: str = "accuracy",
                 higher_is_better: bool = True) -> pd.DataFrame:
    """The points no other point beats on both: lower `cost` and a better `value` (higher, or
    lower where `higher_is_better` is False: MAE), by cost.

    >>> p = pd.DataFrame({"ms": [1.0, 2.0, 3.0, 4.0], "mae": [0.5, 0.3, 0.4, 0.1]})
    >>> pareto_front(p, "ms", "mae", higher_is_better=False).index.tolist()
    [0, 1, 3]
    >>> pareto_front(p.rename(columns={"mae": "accuracy"}), "ms").index.tolist()
    [0]
    """
    ordered = points.sort_values([cost, value], ascending=[True, not higher_is_better])
    sign = 1.0 if higher_is_better else -1.0  # compare on sign * value: always "higher wins"
    best, keep = -np.inf, []
    for index, row in ordered.iterrows():
        if sign * row[value] > best:
            keep.append(index)
            best = sign * row[value]
    return ordered.loc[keep]


def pareto_figure(rows: pd.DataFrame, cost: str, cost_title: str, baseline: Mapping[str, float],
                  task: Task = MULTICLASS) -> go.Figure:
    """The headline metric of `task` against a cost (latency, gzip size), one colour per method,
    the front as a line: the best value at each cost (highest accuracy, lowest MAE)."""
    m, label = task.metric, f"test {task.label}"
    tick, hover = metric_formats(task)
    fig = go.Figure()
    for method, part in rows.groupby("method", sort=False):
        fig.add_scatter(
            x=part[cost], y=part[m], mode="markers", name=str(method),
            marker=dict(color=method_color(str(method)), size=9), customdata=part["sparsity"],
            hovertemplate=f"{method}<br>sparsity %{{customdata:.1%}}<br>{cost_title} %{{x:.3g}}"
                          f"<br>{task.label} %{{y:{hover}}}<extra></extra>",
        )
    front = pareto_front(rows, cost, m, task.higher_is_better)
    fig.add_scatter(x=front[cost], y=front[m], mode="lines", name="Pareto front",
                    line=dict(color="black", dash="dot", shape="hv"), hoverinfo="skip")
    fig.add_scatter(x=[baseline[cost]], y=[baseline[m]], mode="markers", name="dense baseline",
                    marker=dict(color=BASELINE_COLOR, symbol="star", size=14),
                    hovertemplate=f"dense<br>{cost_title} %{{x:.3g}}<br>{task.label} %{{y:{hover}}}<extra></extra>")
    fig.update_yaxes(tickformat=tick)
    direction = "" if task.higher_is_better else " (lower is better)"
    return titled(fig, f"{upper_first(task.label)} vs {cost_title}{direction}", cost_title, label)


def sensitivity_heatmap(drop: pd.DataFrame, task: Task = MULTICLASS) -> go.Figure:
    """How much worse the headline metric gets (SensitivityReport.drop: positive is worse) with one
    layer pruned at a time: layers (network order) x sparsity; percentage points for a share
    (accuracy), the metric's own units otherwise (MAE: a rise)."""
    percent = task.unit == "%"
    z = (drop.to_numpy() * 100).round(2) if percent else drop.to_numpy().astype(float)
    limit = max(float(np.nanmax(np.abs(z))), 1e-9)
    worse = f"{task.label} drop" if task.higher_is_better else f"{task.label} rise (worse)"
    unit = " points" if percent else ""
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"{r:.0%}" for r in drop.columns], y=list(drop.index), zmin=-limit, zmax=limit,
        colorscale="RdBu_r", zmid=0, colorbar=dict(title="drop (pt)" if percent else f"{task.label} worse by"),
        text=z, texttemplate="%{text:.1f}" if percent else "%{text:.3g}",
        hovertemplate=f"%{{y}} alone at %{{x}}<br>{worse} %{{z:{'.2f' if percent else '.4g'}}}{unit}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=list(drop.index))
    return titled(fig, f"Sensitivity: {worse} with one layer pruned", "sparsity of that layer", "layer")


def sensitivity_curves_figure(accuracy: pd.DataFrame, baseline: float, task: Task = MULTICLASS) -> go.Figure:
    """The headline metric (SensitivityReport.accuracy) against the sparsity of each layer alone,
    one line per layer."""
    tick, hover = metric_formats(task)
    fig = go.Figure()
    for layer, row in accuracy.iterrows():
        fig.add_scatter(x=list(accuracy.columns), y=list(row), mode="lines+markers", name=str(layer),
                        hovertemplate=f"{layer}<br>sparsity %{{x:.0%}}<br>{task.label} %{{y:{hover}}}<extra></extra>")
    fig.add_hline(y=baseline, line=dict(color=BASELINE_COLOR, dash="dash"), annotation_text="dense baseline")
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(tickformat=tick)
    return titled(fig, f"{upper_first(task.label)} with one layer pruned", "sparsity of that layer",
                  f"test {task.label}")


def plan_figure(plan: Mapping[str, float], uniform: float, method: str = "magnitude") -> go.Figure:
    """Planned sparsity per layer (network order) beside the uniform sparsity it replaces."""
    layers = list(plan)
    fig = go.Figure()
    fig.add_bar(x=layers, y=[plan[k] for k in layers], name="plan", marker_color=method_color(method),
                hovertemplate="%{x}<br>planned %{y:.1%}<extra></extra>")
    fig.add_scatter(x=layers, y=[uniform] * len(layers), mode="lines", name=f"uniform {uniform:.0%}",
                    line=dict(color=BASELINE_COLOR, dash="dash"), hoverinfo="skip")
    fig.update_xaxes(categoryorder="array", categoryarray=layers)
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return titled(fig, "Per-layer sparsity plan", "layer (network order)", "sparsity")


# -- Runs page (issue 5) --------------------------------------------------------------------
RUN_PATTERNS = ("", "/", "x", ".", "\\", "+", "-", "|")  # tells apart runs of the same method


def compare_layers_figure(runs: Sequence[tuple[str, str, Sequence[Mapping[str, Any]]]]) -> go.Figure:
    """Measured sparsity per layer for several runs, overlaid: (label, method, layer rows) each.
    Colour is the method's; runs of one method differ by bar pattern."""
    fig = go.Figure()
    order: list[str] = []
    for i, (label, method, layers) in enumerate(runs):
        rows = [r for r in layers if r.get("sparsity") is not None]
        order += [r["name"] for r in rows if r["name"] not in order]
        fig.add_bar(x=[r["name"] for r in rows], y=[r["sparsity"] for r in rows], name=label,
                    marker=dict(color=method_color(method), pattern_shape=RUN_PATTERNS[i % len(RUN_PATTERNS)]),
                    hovertemplate=f"{label}<br>%{{x}}: %{{y:.1%}}<extra></extra>")
    fig.update_layout(barmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return titled(fig, "Sparsity per layer, run by run", "layer (network order)", "measured sparsity")


def compare_curves_figure(curves: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
                          marks: Sequence[tuple[str, str, float, float]] = (), task: Task = MULTICLASS) -> go.Figure:
    """The headline metric of `task` vs measured sparsity: each sweep's points as lines (one per
    method), and single prune runs as marks (label, method, sparsity, metric value)."""
    m, (tick, _) = task.metric, metric_formats(task)
    fig = go.Figure()
    for label, points in curves:
        by_method: dict[str, list[Mapping[str, Any]]] = {}
        for p in points:
            by_method.setdefault(str(p["method"]), []).append(p)
        for method, rows in by_method.items():
            rows = sorted(rows, key=lambda r: r["sparsity"])
            fig.add_scatter(x=[r["sparsity"] for r in rows], y=[r.get(m) for r in rows], mode="lines+markers",
                            name=f"{label}: {method}", line=dict(color=method_color(method)))
    for label, method, sparsity, accuracy in marks:
        fig.add_scatter(x=[sparsity], y=[accuracy], mode="markers", name=label,
                        marker=dict(color=method_color(method), size=13, symbol="diamond",
                                    line=dict(color="black", width=1)))
    fig.update_xaxes(tickformat=".0%", range=[-0.02, 1.0])
    fig.update_yaxes(tickformat=tick)
    return titled(fig, f"{upper_first(task.label)} vs sparsity, runs overlaid", "sparsity (measured)",
                  f"test {task.label}")
