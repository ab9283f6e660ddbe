"""ui.figure_cache: a cached figure is serialized as the plain one is, its dict made only once."""
from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio
import plotly.tools

from ui.figure_cache import FrozenFigure


def as_streamlit_sends(fig: go.Figure) -> dict:
    """What st.plotly_chart puts in its proto, parsed back."""
    return json.loads(pio.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True),
                                  validate=False))


def test_frozen_figure_sends_the_same_json_and_builds_its_dict_once(monkeypatch):
    plain = go.Figure(go.Bar(x=["a", "b"], y=[3, 4])).update_layout(template="plotly_white", height=320)
    frozen = FrozenFigure(plain)
    calls = []
    original = go.Figure.to_dict
    monkeypatch.setattr(go.Figure, "to_dict", lambda self: calls.append(1) or original(self))
    first, second = as_streamlit_sends(frozen), as_streamlit_sends(frozen)
    assert first == second == as_streamlit_sends(plain)
    assert first["data"][0]["y"] == [3, 4] and first["layout"]["height"] == 320
    assert len(calls) == 2  # once for the frozen figure (both sends), once for the plain one
