"""AppTest for the home and Prune pages: what is rendered, not only "no exception"."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui import state

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


def metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


@pytest.fixture(scope="module")
def home() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    return at.run()


MLP_PARAMS = 64 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10  # the default mlp on 8x8 digits: 50,826


def test_home_shows_default_baseline(home):
    assert not home.exception
    shown = metrics(home)
    assert {"Test accuracy", "Train accuracy", "Parameters", "FLOPs (MACs)", "File size", "gzip size",
            "Latency (batch 32, at load)"} <= set(shown)
    assert shown["Parameters"][0] == f"{MLP_PARAMS:,}"  # mlp on digits, from the layer shapes
    assert float(shown["Test accuracy"][0].rstrip("%")) > 85
    assert home.selectbox(key=state.widget_key(state.DATASET)).value == "digits"
    assert home.selectbox(key=state.widget_key(state.MODEL)).value == "mlp"
    table = home.dataframe[0].value
    assert list(table.loc[table["prunable"], "name"]) == ["dense_1", "dense_2", "predictions"]
    assert any("Device: CPU" in c.value or "Device: GPU" in c.value for c in home.sidebar.caption)
    # the sidebar's page list names the entry page Home (Streamlit's own would say "app")
    assert [link.proto.label for link in home.get("page_link")] == ["Home", "Prune", "Sweep", "Sensitivity", "Runs"]


def test_prune_page_opened_directly_uses_defaults_and_renders():
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT)
    at.session_state[state.MODEL] = "cnn"
    at.session_state[state.SCOPE] = "layer"
    at.session_state[state.SPARSITY] = 0.5
    at.run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Sparsity (measured)"] == ("50.00%", "requested 50.00%")
    # masks keep kernels dense: the card says so, against the dense model timed alongside
    assert re.fullmatch(r"[+-]\d+\.\d% (slower|faster|within noise)", shown["Latency (masks ≈ 1x)"][1])
    note = next(c.value for c in at.caption if c.value.startswith("Dense latency timed alongside"))
    assert re.search(r"timed at load \(the home page's figure\): \d+\.\d\d ms", note)
    layers = at.dataframe[0].value
    prunable = layers[layers["sparsity"].notna()]
    assert list(prunable["name"]) == ["conv_1", "conv_2", "dense_1", "dense_2", "predictions"]
    assert prunable["sparsity"].between(0.49, 0.51).all()
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # the trade-off, per-layer sparsity, histogram, mask
    bar = json.loads(charts[1].proto.spec)
    assert bar["data"][0]["x"] == list(prunable["name"])  # network order
    assert any("Masks set weights to zero" in c.value for c in at.caption)

    at.slider(key=state.widget_key(state.SPARSITY)).set_value(0.9).run()
    assert not at.exception
    assert metrics(at)["Sparsity (measured)"][1] == "requested 90.00%"
    assert float(metrics(at)["Sparsity (measured)"][0].rstrip("%")) == pytest.approx(90.0, abs=0.01)

    at.radio(key=state.widget_key(state.SCOPE)).set_value("global").run()
    assert not at.exception
    layers = at.dataframe[0].value
    assert layers["sparsity"].dropna().nunique() > 1  # one global threshold: uneven per layer

    at.multiselect(key=state.widget_key(state.EXCLUDE)).set_value(["conv_1"]).run()
    layers = at.dataframe[0].value.set_index("name")
    assert layers.loc["conv_1", "sparsity"] == 0.0


def test_prune_page_with_uploaded_model(uploaded_page):
    at = uploaded_page("pages/1_Prune.py")
    at.session_state[state.SPARSITY] = 0.25
    at.run()
    assert not at.exception
    assert metrics(at)["Sparsity (measured)"][1] == "requested 25.00%"
    # 1,148 weights (kernels 36 + 1024 + 64, biases 4 + 16 + 4); at 25% the kernels keep 27, 768 and 48
    assert metrics(at)["Nonzero params"][0] == f"{1148 - (36 - 27) - (1024 - 768) - (64 - 48):,}"
    # 1,148 float32 weights (zeros stored) + the conv's input and output, 64 + 256 floats: 5,872 bytes
    assert metrics(at)["Inference memory"] == ("5.7 KB", "+0.0% of 5.7 KB")
    value, delta = metrics(at)["accuracy per MFLOP"]
    assert float(value) > 0 and delta.endswith("x)") and "vs dense" in delta
    assert "accuracy per MB" in metrics(at)


def test_mismatched_dataset_shows_one_line_and_keeps_serving(uploaded_page, tmp_path):
    import numpy as np

    from pruning.specs import DataRef

    path = tmp_path / "wrong.npz"
    np.savez(path, x_test=np.zeros((4, 28, 28, 1), np.float32), y_test=np.array([0, 1, 2, 3]))
    at = uploaded_page("app.py", data=DataRef.parse(str(path)))
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "model expects (8, 8, 1) inputs, the dataset has (28, 28, 1): pick a matching dataset or model"]
    at.selectbox(key=state.widget_key(state.DATASET)).set_value("digits")
    at.selectbox(key=state.widget_key(state.MODEL)).set_value("cnn").run()
    assert not at.exception and not at.error
    assert metrics(at)["Parameters"][0] == "21,386"


def test_presentation_mode_folds_controls_and_enlarges_charts():
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.dataframe) == 1 and not at.expander
    at.toggle(key=state.widget_key(state.PRESENTATION)).set_value(True).run()
    assert not at.exception
    assert [e.label for e in at.expander] == ["Controls"]
    assert len(at.dataframe) == 0  # the per-layer table is hidden while presenting
    charts = at.get("plotly_chart")
    assert len(charts) == 4
    assert [json.loads(c.proto.spec)["layout"]["height"] for c in charts] == [620] * 4
    assert metrics(at)["Sparsity (measured)"][0] == f"{state.DEFAULT_SPARSITY:.2%}"  # same numbers, bigger


def test_sensitivity_plan_is_applied_and_can_be_cleared():
    plan = {"conv_1": 0.1, "conv_2": 0.3, "dense_1": 0.8, "dense_2": 0.7, "predictions": 0.2}
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT)
    at.session_state[state.MODEL] = "cnn"
    at.session_state[state.SCOPE] = "layer"
    at.session_state[state.SPARSITY] = 0.5
    at.session_state[state.PLAN] = plan
    at.run()
    assert not at.exception
    assert any("per-layer plan" in i.value for i in at.info)
    layers = at.dataframe[0].value.set_index("name")
    assert layers["target_sparsity"].dropna().to_dict() == plan
    sizes = {"conv_1": 150, "conv_2": 2400, "dense_1": 7680, "dense_2": 10080, "predictions": 840}
    from pruning.core.masks import keep_count

    for name, target in plan.items():
        assert layers.loc[name, "sparsity"] == pytest.approx(1 - keep_count(sizes[name], target) / sizes[name])

    at.button(key="clear_plan").click().run()
    assert not at.exception and not at.info
    assert at.dataframe[0].value["target_sparsity"].dropna().unique().tolist() == [0.5]


def test_structured_method_shows_the_shape_diff(uploaded_page):
    at = uploaded_page("pages/1_Prune.py")
    at.session_state[state.METHOD] = "filters-l1"
    at.session_state[state.SPARSITY] = 0.5
    at.run()
    assert not at.exception
    assert "Layer shapes: the model really shrank" in [h.value for h in at.subheader]
    diff = at.dataframe[0].value.set_index("name")
    # half of conv's 4 filters go, and with them half of the Dense inputs after Flatten
    assert list(diff.index) == ["conv", "hidden"]
    assert diff.loc["conv", ["shape_before", "shape_after"]].tolist() == ["(3, 3, 1, 4)", "(3, 3, 1, 2)"]
    assert diff.loc["hidden", ["shape_before", "shape_after"]].tolist() == ["(64, 16)", "(32, 16)"]
    assert not any("Masks set weights to zero" in c.value for c in at.caption)
    assert "Latency (batch 32)" in metrics(at)
    # 616 weights (conv 18 + 2, hidden 512 + 16, out 64 + 4) + the conv's 64 + 128 floats: 3,232 of 5,872 bytes
    assert metrics(at)["Inference memory"] == ("3.2 KB", "-45.0% of 5.7 KB")


MIXED = "Fine-tuned in mixed precision (float16 compute, float32 weights, loss scaling)."
FLOAT32 = ("Mixed precision needs a GPU with compute capability 7.0 or newer, and none is visible: "
           "fine-tuned in float32.")


def test_mixed_precision_checkbox_says_what_really_ran(uploaded_page):
    from pruning.measure.training import mixed_precision_supported

    # the worker sees the GPUs this process sees: a machine without a fast GPU gets float32
    said, not_said = (MIXED, FLOAT32) if mixed_precision_supported() else (FLOAT32, MIXED)
    at = uploaded_page("pages/1_Prune.py")
    at.run()
    assert not at.checkbox  # only offered when there is fine-tuning to do
    at.number_input(key=state.widget_key(state.FINETUNE)).set_value(1).run()
    at.checkbox(key=state.widget_key(state.MIXED_PRECISION)).check().run()
    assert not at.exception
    notes = [c.value for c in at.caption if c.value.startswith("ℹ️ ")]
    assert f"ℹ️ {said}" in notes and f"ℹ️ {not_said}" not in notes


def tradeoff(at: AppTest) -> tuple[list[dict], dict]:
    """The trade-off chart's traces and its element, by widget key."""
    chart = next(c for c in at.get("plotly_chart") if c.key == state.TRADEOFF_CHART)
    return json.loads(chart.proto.spec)["data"], chart


def click_point(at: AppTest, chart, trace: dict, index: int) -> AppTest:
    """What the browser sends when a point is clicked: the chart's selection as its widget value
    (AppTest has no plotly element, so the state goes in beside the other widgets')."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    point = {"curve_number": 0, "point_number": index, "point_index": index, "x": trace["x"][index],
             "y": trace["y"][index], "customdata": trace["customdata"][index]}
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(
        {"selection": {"points": [point], "point_indices": [index], "box": [], "lasso": []}})))
    return at._run(states, timeout=TIMEOUT)


def test_tradeoff_chart_plots_each_visit_and_a_click_moves_the_controls():
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    measured = {}
    for target in (0.3, 0.9, 0.3, state.DEFAULT_SPARSITY):  # 0.3 twice: one point, not two
        measured[target] = float(metrics(at)["Sparsity (measured)"][0].rstrip("%")) / 100
        at.slider(key=state.widget_key(state.SPARSITY)).set_value(target).run()
        assert not at.exception
    measured[state.DEFAULT_SPARSITY] = float(metrics(at)["Sparsity (measured)"][0].rstrip("%")) / 100
    traces, chart = tradeoff(at)
    curve, ring = traces
    assert curve["name"] == "magnitude (global)" and curve["marker"]["symbol"] == "circle"
    assert [round(t, 2) for t in sorted(measured)] == [0.3, 0.7, 0.9]
    # x is the MEASURED sparsity of each visited value, one point each, in order
    assert curve["x"] == pytest.approx(sorted(measured.values()), abs=1e-4)
    assert [c[1] for c in curve["customdata"]] == [0.3, 0.7, 0.9]
    assert curve["y"][0] == pytest.approx(float(metrics(at)["Test accuracy"][0].rstrip("%")) / 100, abs=0.2)
    assert ring["name"] == "this point" and ring["customdata"] == [["magnitude", 0.7, "global", 0, False]]
    baseline = json.loads(chart.proto.spec)["layout"]["shapes"][0]
    assert baseline["y0"] == baseline["y1"] and baseline["line"]["dash"] == "dash"  # the dense line

    click_point(at, chart, curve, 2)  # the 90% point
    assert not at.exception
    assert at.slider(key=state.widget_key(state.SPARSITY)).value == 0.9
    assert metrics(at)["Sparsity (measured)"][1] == "requested 90.00%"
    assert tradeoff(at)[0][1]["customdata"] == [["magnitude", 0.9, "global", 0, False]]

    # another method joins in its own colour; a structured one is drawn with diamonds
    at.selectbox(key=state.widget_key(state.METHOD)).set_value("neurons").run()
    assert not at.exception
    traces, chart = tradeoff(at)
    by_name = {t["name"]: t for t in traces}
    assert by_name["neurons"]["marker"]["symbol"] == "diamond"
    assert by_name["neurons"]["marker"]["color"] != by_name["magnitude (global)"]["marker"]["color"]
    click_point(at, chart, by_name["magnitude (global)"], 0)  # back to magnitude at 30%, global
    assert not at.exception
    assert at.selectbox(key=state.widget_key(state.METHOD)).value == "magnitude"
    assert at.radio(key=state.widget_key(state.SCOPE)).value == "global"
    assert metrics(at)["Sparsity (measured)"][1] == "requested 30.00%"


def test_deltas_have_one_unit_per_kind():
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    shown = metrics(at)
    assert re.fullmatch(r"[+-]\d+\.\d\d pt", shown["Test accuracy"][1])  # accuracy: points
    assert re.fullmatch(r"[+-]\d+\.\d\d pt", shown["Robust accuracy"][1])
    assert re.fullmatch(r"-\d+\.\d% of [\d,]+", shown["Nonzero params"][1])  # sizes: percent
    assert re.fullmatch(r"-\d+\.\d% of [\d.]+ KB", shown["gzip size"][1])
    latency = next(m for m in at.metric if m.label.startswith("Latency"))
    word = re.fullmatch(r"[+-]\d+\.\d% (slower|faster|within noise)", latency.delta).group(1)
    from streamlit.proto.Metric_pb2 import Metric

    # a slowdown is an up-arrow in red, a speedup a down-arrow in green, noise grey
    expected = {"slower": (Metric.UP, Metric.RED), "faster": (Metric.DOWN, Metric.GREEN),
                "within noise": (None, Metric.GRAY)}[word]
    assert latency.proto.color == expected[1]
    if expected[0] is not None:
        assert latency.proto.direction == expected[0]


def test_latency_delta_words_and_colours():
    from ui.cards import latency_delta

    # dense 1.00 ms median, 1.05 ms p90: changes beyond 5% are real, smaller ones noise
    assert latency_delta(1.2, 1.0, 1.05) == ("+20.0% slower", "inverse")
    assert latency_delta(0.5, 1.0, 1.05) == ("-50.0% faster", "inverse")
    assert latency_delta(1.03, 1.0, 1.05) == ("+3.0% within noise", "off")
