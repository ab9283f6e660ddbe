"""One colour per pruning method, for every chart the project draws (app pages and reports).

The backend's HTML report needs the colours too, and pruning/ must not import ui/, so the
table lives here; pruning/runs/figures.py and ui/charts.py both import it.
"""
from __future__ import annotations

import hashlib

BASELINE_COLOR = "#7f7f7f"
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
