"""Figures built once per report and kept, so a slider move back to a value seen before redraws
without rebuilding a plotly figure, nor copying it into a dict again (issue 11: cached moves under 200 ms).

Shared by sessions like the report cache; a cached figure is never mutated after it is built.
"""
from __future__ import annotations

from typing import Callable, Optional

import plotly.graph_objects as go
import streamlit as st

from .backend import ReportCache


class FrozenFigure(go.Figure):
    """A figure that is never changed after it is built: `to_dict()` is computed once and shared.

    `st.plotly_chart` calls `to_dict()` on every run (a deep copy of every trace and of the
    template), which was most of a cached move's script time (four charts, about 0.1 s; the
    JSON encoding of the dict that follows is a few ms). Nothing in that path writes to the dict.
    """

    def to_dict(self) -> dict:
        if getattr(self, "_frozen_dict", None) is None:
            self._frozen_dict = super().to_dict()
        return self._frozen_dict


@st.cache_resource(show_spinner=False)
def _figures() -> ReportCache:
    return ReportCache(capacity=256)  # about four figures per report: the reports' 64, and more


def figure(kind: str, key: str, build: Callable[[], go.Figure], height: Optional[int] = None) -> go.Figure:
    """`build()` once per (kind, key, height): `key` names the report (its spec JSON) and what is
    drawn; `height` (presentation mode) is set on the new figure before it is shared."""

    def built() -> go.Figure:
        fig = build()
        return FrozenFigure(fig.update_layout(height=height) if height else fig)

    return _figures().get_or_compute(kind, f"{key}|{height or ''}", built)
