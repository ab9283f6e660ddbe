"""AppTest: a prune that removed nothing is never presented as pruned.

The Prune page shows the measured sparsity (0.00%) and a warning, not the requested value.
"""
from __future__ import annotations

from ui import state

NOTHING = "Nothing was pruned: the measured sparsity is 0%."


def test_zero_measured_sparsity_is_flagged(uploaded_page):
    at = uploaded_page("pages/1_Prune.py")
    # only `conv` (36 weights) at 1%: tfmot's rule keeps max(round(36 * 0.99), 1) = 36, so 0 zeros
    at.session_state[state.SPARSITY] = 0.01
    at.session_state[state.EXCLUDE] = ["hidden", "out"]
    at.run()
    assert not at.exception
    shown = {m.label: (m.value, m.delta) for m in at.metric}
    assert shown["Sparsity (measured)"] == ("0.00%", "requested 1.00%")
    assert [w.value for w in at.warning] == [NOTHING]

    # every layer at 1%: conv keeps 36 of 36, hidden round(1024 * 0.99) = 1014, out round(64 * 0.99) = 63,
    # so 10 + 1 = 11 zeros among the 1,124 kernel weights (1,148 parameters with the biases)
    at.multiselect(key=state.widget_key(state.EXCLUDE)).set_value([]).run()
    assert not at.exception
    assert NOTHING not in [w.value for w in at.warning]
    shown = {m.label: (m.value, m.delta) for m in at.metric}
    assert shown["Sparsity (measured)"] == (f"{11 / 1124:.2%}", "requested 1.00%")
    assert shown["Nonzero params"][0] == f"{1148 - 11:,}"
