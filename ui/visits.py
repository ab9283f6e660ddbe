"""The Prune page's visited points: every prune seen in this session, as plain data.

They feed the live trade-off chart; a point clicked on it moves the page's controls back there.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import streamlit as st

from pruning.reports import PruneReport

from . import state

# the controls a visited point restores when clicked (session keys, in widget order)
RESTORED = (state.METHOD, state.SPARSITY, state.SCOPE, state.FINETUNE, state.RECALIBRATE_BN)


def headline(report: PruneReport) -> tuple[str, bool]:
    """The report's headline metric key and whether higher is better (DESIGN §5).

    Reports that do not name one yet are classifiers scored by accuracy.
    """
    return str(getattr(report, "metric", "accuracy")), bool(getattr(report, "higher_is_better", True))


def visit_of(report: PruneReport) -> dict[str, Any]:
    """One visited point as plain data: what the chart plots and what a click restores."""
    spec = report.spec
    metric, higher = headline(report)
    return {
        "key": spec.to_json(), "model": spec.model.label, "data": spec.data.name,
        "method": report.method, "granularity": report.granularity, "metric": metric,
        "task": str(getattr(report, "task", "multiclass")),  # names the metric: "mean per-label accuracy"
        "higher_is_better": higher, "value": float(report.pruned[metric]),
        "baseline": float(report.baseline[metric]), "sparsity": float(report.sparsity),
        "target_sparsity": float(report.target_sparsity), "scope": spec.scope,
        "finetune_epochs": int(spec.finetune_epochs), "recalibrate_bn": bool(spec.recalibrate_bn),
        "partial": spec.layers is not None or spec.layer_sparsity is not None,
        "restores": [report.method, float(report.target_sparsity), spec.scope, int(spec.finetune_epochs),
                     bool(spec.recalibrate_bn)],  # RESTORED's order: the chart's customdata
    }


def record(report: PruneReport) -> list[dict[str, Any]]:
    """Add `report` to this session's visits (a revisit moves it to the end, the oldest go
    beyond `state.VISITS_LIMIT`); returns the visits of the same model and dataset."""
    visit = visit_of(report)
    visits = [v for v in st.session_state.get(state.VISITS, []) if v["key"] != visit["key"]] + [visit]
    st.session_state[state.VISITS] = visits[-state.VISITS_LIMIT:]
    return [v for v in visits if v["model"] == visit["model"] and v["data"] == visit["data"]]


def clicked_point(event: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    """The controls a chart selection points at (its first point's customdata), or None."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    data = points[0].get("customdata") if points else None
    if not data or len(data) < len(RESTORED):
        return None  # the dense baseline line, or an empty selection (a click elsewhere)
    return dict(zip(RESTORED, data))


def move_to_clicked() -> None:
    """The chart's on_select callback: set the controls to the clicked point before the rerun
    (`ui.sidebar.persistent` then seeds the widgets from these keys)."""
    chosen = clicked_point(st.session_state.get(state.TRADEOFF_CHART))
    if chosen is not None:
        st.session_state.update(chosen)
