"""AppTest for the home and Prune pages: what is rendered, not only "no exception"."""
from __future__ import annotations

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


def test_home_shows_default_baseline(home):
    assert not home.exception
    shown = metrics(home)
    assert {"Test accuracy", "Train accuracy", "Parameters", "FLOPs (MACs)", "File size", "gzip size",
            "Latency (batch 32)"} <= set(shown)
    assert shown["Parameters"][0] == "21,386"  # cnn on digits, from the layer shapes
    assert float(shown["Test accuracy"][0].rstrip("%")) > 85
    assert home.selectbox(key=state.widget_key(state.DATASET)).value == "digits"
    assert home.selectbox(key=state.widget_key(state.MODEL)).value == "cnn"
    table = home.dataframe[0].value
    assert list(table.loc[table["prunable"], "name"]) == ["conv_1", "conv_2", "dense_1", "dense_2", "predictions"]
    assert any("Device: CPU" in c.value or "Device: GPU" in c.value for c in home.sidebar.caption)


def test_prune_page_opened_directly_uses_defaults_and_renders():
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Sparsity (measured)"] == ("50.00%", "requested 50.00%")
    # masks keep kernels dense: the card says so where the speedup is shown
    assert shown["Latency (masks ≈ 1x)"][1].endswith("x speedup")
    layers = at.dataframe[0].value
    prunable = layers[layers["sparsity"].notna()]
    assert list(prunable["name"]) == ["conv_1", "conv_2", "dense_1", "dense_2", "predictions"]
    assert prunable["sparsity"].between(0.49, 0.51).all()
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    import json

    bar = json.loads(charts[0].proto.spec)
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
    import json

    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT).run()
    assert len(at.dataframe) == 1 and not at.expander
    at.toggle(key=state.widget_key(state.PRESENTATION)).set_value(True).run()
    assert not at.exception
    assert [e.label for e in at.expander] == ["Controls"]
    assert len(at.dataframe) == 0  # the per-layer table is hidden while presenting
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    assert json.loads(charts[0].proto.spec)["layout"]["height"] == 620
    assert metrics(at)["Sparsity (measured)"][0] == "50.00%"  # same numbers, bigger


def test_sensitivity_plan_is_applied_and_can_be_cleared():
    plan = {"conv_1": 0.1, "conv_2": 0.3, "dense_1": 0.8, "dense_2": 0.7, "predictions": 0.2}
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT)
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
