"""AppTest: a prune that removed nothing is never presented as pruned.

The Prune page shows the measured sparsity (0.00%) and a warning, not the requested value.
"""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui import state

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180
NOTHING = "Nothing was pruned: the measured sparsity is 0%."


def test_zero_measured_sparsity_is_flagged(tiny_refs):
    model, data = tiny_refs
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT)
    at.session_state[state.MODEL_FILE] = dict(model.__dict__)
    at.session_state[state.DATA_FILE] = dict(data.__dict__)
    at.session_state[state.MODEL] = state.UPLOADED_MODEL
    at.session_state[state.DATASET] = state.UPLOADED_DATA
    # only `conv` (36 weights) at 1%: tfmot's rule keeps max(round(36 * 0.99), 1) = 36, so 0 zeros
    at.session_state[state.SPARSITY] = 0.01
    at.session_state[state.EXCLUDE] = ["hidden", "out"]
    at.run()
    assert not at.exception
    shown = {m.label: (m.value, m.delta) for m in at.metric}
    assert shown["Sparsity (measured)"] == ("0.00%", "requested 1.00%")
    assert [w.value for w in at.warning] == [NOTHING]

    at.multiselect(key=state.widget_key(state.EXCLUDE)).set_value([]).run()  # 1% of 1,124 kernel weights: 11 zeros
    assert not at.exception
    assert NOTHING not in [w.value for w in at.warning]
    assert float({m.label: m.value for m in at.metric}["Sparsity (measured)"].rstrip("%")) > 0
