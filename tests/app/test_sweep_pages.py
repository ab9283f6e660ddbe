"""AppTest for the Sweep and Sensitivity pages on the tiny model: charts, table, plan, reuse."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from pruning.core.masks import keep_count
from ui import state

SIZES = {"conv": 36, "hidden": 1024, "out": 64}


def chart_specs(at: AppTest) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_sweep_page_waits_for_the_button_then_draws_every_chart(uploaded_page, tiny_refs):
    # a grid no other test uses, so the store holds no earlier run of this spec
    at = uploaded_page("pages/2_Sweep.py")
    at.session_state[state.SWEEP_RATES] = "0, 50, 80"
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 0  # nothing runs until asked
    assert "Run sweep" in at.info[0].value

    at.button(key="run_sweep").click().run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 7  # accuracy, robust, latency, gzip, nonzero, and two Pareto views
    table = at.dataframe[0].value
    assert list(table["method"]) == ["magnitude"] * 3 + ["random"] * 3
    total = sum(SIZES.values())
    zeros = sum(n - keep_count(n, 0.8) for n in SIZES.values())
    assert table["sparsity"].iloc[2] == f"{zeros / total:.1%}"
    accuracy = json.loads(charts[0].proto.spec)
    lines = [trace for trace in accuracy["data"] if trace.get("mode") == "lines+markers"]
    assert [trace["name"] for trace in lines] == ["magnitude", "random"]
    assert lines[0]["line"]["color"] != lines[1]["line"]["color"]  # one colour per method
    assert any(trace.get("fill") == "tonexty" for trace in accuracy["data"])  # the 95% band
    assert {b.label for b in at.get("download_button")} == {"Download CSV (every column)",
                                                           "Download Markdown (this table)"}

    # Cancel forgets the sweep: the next run does not start (or resume) it
    at.button(key="cancel_sweep").click().run()
    assert not at.exception
    assert state.SWEEP_SPEC not in at.session_state
    assert len(at.get("plotly_chart")) == 0 and "Run sweep" in at.info[0].value

    # every point was stored as it finished, in one completed run
    from pruning.runs.store import open_store
    from pruning.specs import SweepSpec

    spec = SweepSpec(model=tiny_refs[0], data=tiny_refs[1], methods=("magnitude", "random"), sparsities=(0.0, 0.5, 0.8))
    runs = [r for r in open_store().list(kind="sweep") if r.source == "app" and SweepSpec.from_dict(r.spec) == spec]
    assert [r.status for r in runs] == ["completed"]
    assert len(open_store().points(runs[0].id)) == 6

    # the same sweep again, with the in-memory cache emptied (a server restart), comes back
    # from the store: no new run
    from ui import backend

    backend.report_cache().clear()
    again = uploaded_page("pages/2_Sweep.py")
    again.session_state[state.SWEEP_RATES] = "0, 50, 80"
    again.run()
    again.button(key="run_sweep").click().run()
    assert not again.exception
    assert again.dataframe[0].value.equals(table)
    assert len([r for r in open_store().list(kind="sweep") if SweepSpec.from_dict(r.spec) == spec]) == 1


def test_sweep_page_rejects_a_bad_grid(uploaded_page):
    at = uploaded_page("pages/2_Sweep.py")
    at.session_state[state.SWEEP_RATES] = "0, 50, 100"
    at.run()
    assert not at.exception
    assert "outside [0, 100)" in at.error[0].value


def test_sweep_page_finer_grid_button(uploaded_page):
    at = uploaded_page("pages/2_Sweep.py").run()
    assert "14 points: 2 method(s) x 7 sparsities." in [c.value for c in at.caption]  # the seed's grid
    at.button(key="sweep_fine_grid").click().run()
    assert not at.exception
    assert at.text_input(key=state.widget_key(state.SWEEP_RATES)).value == state.FINE_GRID
    assert at.multiselect(key=state.widget_key(state.SWEEP_METHODS)).value == ["magnitude", "random"]
    assert "40 points: 2 method(s) x 20 sparsities." in [c.value for c in at.caption]


def test_sensitivity_page_heatmap_plan_and_comparison(uploaded_page):
    at = uploaded_page("pages/3_Sensitivity.py")
    at.session_state[state.SENS_RATES] = "50, 90"
    at.session_state[state.PLAN_TARGET] = 0.6
    at.run()
    assert not at.exception
    at.button(key="run_scan").click().run()
    assert not at.exception
    charts = chart_specs(at)
    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["y"] == ["conv", "hidden", "out"]
    assert heatmap["x"] == ["50%", "90%"]
    assert len(charts) == 3  # heatmap, per-layer curves, plan
    plan = at.dataframe[1].value
    planned = dict(zip(plan["layer"], plan["planned sparsity"]))
    total = sum(SIZES.values())
    assert sum(n - keep_count(n, planned[k]) for k, n in SIZES.items()) == total - keep_count(total, 0.6)
    compare = at.dataframe[0].value
    assert list(compare["pruning"])[0] == "dense" and list(compare["pruning"])[2] == "plan"
    assert compare["sparsity"].iloc[2] == pytest.approx((total - keep_count(total, 0.6)) / total)

    at.radio(key=state.widget_key(state.PLAN_MODE)).set_value("budget").run()
    assert not at.exception
    assert at.slider(key=state.widget_key(state.PLAN_BUDGET)).value == 1.0
