"""Pure plotly figure builders: plain data in, `go.Figure` out, no Streamlit.

One colour per method, the same on every page (`method_color`).
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

BASELINE_COLOR = "#7f7f7f"
ZERO_COLOR = "#d62728"
METHOD_COLORS: dict[str, str] = {
    "magnitude": "#1f77b4",
    "random": "#8c564b",
    "lamp": "#2ca02c",
    "taylor": "#9467bd",
    "nm": "#17becf",
    "gradual": "#ff7f0e",
    "filters-l1": "#e377c2",
    "filters-l2": "#bcbd22",
    "filters-fpgm": "#393b79",
    "neurons": "#637939",
    "lstm-units": "#8c6d31",
    "apoz": "#843c39",
    "bn-scale": "#7b4173",
}
_FALLBACK = ("#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#6baed6", "#fd8d3c", "#74c476")


def method_color(method: str) -> str:
    """The method's colour everywhere; unknown names get a stable colour from their hash."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return _FALLBACK[int(hashlib.md5(method.encode()).hexdigest(), 16) % len(_FALLBACK)]


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
        margin=dict(l=40, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.25),
    )
    return fig


def layer_sparsity_figure(layers: pd.DataFrame, method: str) -> go.Figure:
    """Measured sparsity per prunable layer, in network order, with the target marked."""
    rows = layers[layers["sparsity"].notna()]
    fig = go.Figure()
    fig.add_bar(
        x=rows["name"], y=rows["sparsity"], name="measured", marker_color=method_color(method),
        customdata=np.stack([rows["nonzero_params"], rows["params"]], axis=-1),
        hovertemplate="%{x}<br>measured sparsity %{y:.1%}<br>%{customdata[0]:,} of %{customdata[1]:,} weights left<extra></extra>",
    )
    if "target_sparsity" in rows and rows["target_sparsity"].notna().any():
        fig.add_scatter(
            x=rows["name"], y=rows["target_sparsity"], mode="markers", name="requested",
            marker=dict(symbol="line-ew-open", size=28, color="black", line=dict(width=2)),
            hovertemplate="%{x}<br>requested %{y:.1%}<extra></extra>",
        )
    fig.update_xaxes(categoryorder="array", categoryarray=list(rows["name"]))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, "Sparsity per layer (measured)", "layer (network order)", "zeros among prunable weights")


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
    return _layout(fig, f"Weight distribution: {layer}", "weight value", "count")


def mask_image_figure(image: Sequence[Sequence[float]], layer: str) -> go.Figure:
    """Kept fraction per cell of the kernel (rows: inputs x kernel positions, columns: outputs)."""
    fig = go.Figure(go.Heatmap(
        z=image, zmin=0, zmax=1, colorscale=[[0, "#ffffff"], [1, "#08306b"]],
        colorbar=dict(title="kept"), hovertemplate="row %{y}, col %{x}: %{z:.0%} kept<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"Mask of {layer} (dark = kept)", "output unit / filter", "input x kernel position")
