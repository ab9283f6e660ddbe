"""Figures built once per report and kept, so a slider move back to a value seen before redraws
without rebuilding a plotly figure (issue 11: cached moves under 200 ms).

Shared by sessions like the report cache; a cached figure is never mutated after it is built.
"""
from __future__ import annotations

from typing import Callable, Optional

import plotly.graph_objects as go
import streamlit as st

from .backend import ReportCache


@st.cache_resource(show_spinner=False)
def _figures() -> ReportCache:
    return ReportCache(capacity=256)  # about four figures per report: the reports' 64, and more


def figure(kind: str, key: str, build: Callable[[], go.Figure], height: Optional[int] = None) -> go.Figure:
    """`build()` once per (kind, key, height): `key` names the report (its spec JSON) and what is
    drawn; `height` (presentation mode) is set on the new figure before it is shared."""

    def built() -> go.Figure:
        fig = build()
        return fig.update_layout(height=height) if height else fig

    return _figures().get_or_compute(kind, f"{key}|{height or ''}", built)
