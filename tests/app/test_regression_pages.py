"""AppTest for a regression model on the Sweep and Sensitivity pages: MAE, lower is better.

A tiny seeded tf_keras MLP with a linear output on float targets; the Pareto views and the
heatmap must plot MAE (not accuracy), and the plan's budget is in MAE units.
"""
from __future__ import annotations

import base64

import numpy as np
import plotly.io
import pytest
from conftest import APP_TIMEOUT, ROOT
from streamlit.testing.v1 import AppTest

from pruning.specs import DataRef, ModelRef
from ui import state


@pytest.fixture(scope="module")
def regression_refs(tmp_path_factory):
    from pruning._keras import keras

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (200, 6)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 1]).astype(np.float32)
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([L.Input((6,)), L.Dense(8, activation="relu", name="hidden"), L.Dense(1, name="out")])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(x[60:], y[60:], epochs=5, verbose=0)
    folder = tmp_path_factory.mktemp("regression")
    model.save(folder / "reg.keras")
    np.savez(folder / "reg.npz", x_train=x[60:], y_train=y[60:], x_test=x[:60], y_test=y[:60])
    return ModelRef.parse(str(folder / "reg.keras")), DataRef.parse(str(folder / "reg.npz"))


def open_page(script: str, refs) -> AppTest:
    model, data = refs
    at = AppTest.from_file(str(ROOT / script), default_timeout=APP_TIMEOUT)
    at.session_state[state.MODEL_FILE] = dict(model.__dict__)
    at.session_state[state.DATA_FILE] = dict(data.__dict__)
    at.session_state[state.MODEL] = state.UPLOADED_MODEL
    at.session_state[state.DATASET] = state.UPLOADED_DATA
    return at


def array(value) -> np.ndarray:
    """A figure's data array; plotly's JSON keeps numpy arrays as {dtype, bdata, shape}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def scanned(script: str, refs, rates_key: str, rates: str, button: str) -> tuple[AppTest, list]:
    """Open `script` on the regression model, set its grid, press its Run button: the page, its figures."""
    at = open_page(script, refs)
    at.session_state[rates_key] = rates
    at.run()
    at.button(key=button).click().run()
    assert not at.exception
    return at, figures(at)


def stored(kind: str):
    """The newest stored run of `kind` on the regression model."""
    from pruning.runs.store import open_store

    return next(r for r in open_store().list(kind=kind) if r.spec["model"]["name"] == "reg.keras")


def figures(at: AppTest) -> list:
    """The page's plotly figures, decoded (plotly sends arrays as typed binary)."""
    return [plotly.io.from_json(c.proto.spec) for c in at.get("plotly_chart")]


def test_sweep_pareto_views_minimise_mae(regression_refs):
    _, specs = scanned("pages/2_Sweep.py", regression_refs, state.SWEEP_RATES, "0, 60, 90", "run_sweep")
    assert len(specs) == 7  # five metric charts and both Pareto views, drawn for regression too
    pareto = specs[5]
    assert pareto.layout.yaxis.title.text == "test MAE"
    from pruning.runs.store import open_store

    points = open_store().points(stored("sweep").id)
    # the front: by latency, each point a lower MAE than every faster one; its best is the sweep's best
    front = next(t for t in pareto.data if t.name == "Pareto front")
    front_x, front_y = array(front.x), array(front.y)
    assert (np.diff(front_x) >= 0).all() and (np.diff(front_y) < 0).all()
    assert front_y.min() == min(p["mae"] for p in points)
    for p in points:  # nothing off the front is faster and better than the front at that latency
        faster = front_y[front_x <= p["latency_ms"]]
        assert faster.size == 0 or faster.min() <= p["mae"]


def test_sensitivity_heatmap_in_mae_units_and_a_budget_in_them(regression_refs):
    at, specs = scanned("pages/3_Sensitivity.py", regression_refs, state.SENS_RATES, "50, 90", "run_scan")
    heatmap = specs[0]
    assert heatmap.layout.title.text == "Sensitivity: MAE rise (worse) with one layer pruned"
    assert heatmap.data[0].colorbar.title.text == "MAE worse by"
    scan = stored("sensitivity")
    assert scan.task.metric == "mae" and "baseline_mae" in scan.metrics
    drops = [layer["drop"] for layer in scan.details["layers"]]  # hidden, out x 50%, 90%
    np.testing.assert_allclose(array(heatmap.data[0].z), drops)  # MAE units as measured, not x100
    at.radio(key=state.widget_key(state.PLAN_MODE)).set_value("budget").run()
    assert not at.exception
    budget = at.number_input(key=state.widget_key(state.PLAN_BUDGET_UNITS))
    assert budget.value == 0.05 and "MAE rise budget" in budget.label


def test_prune_page_cards_say_mae_and_r2_and_the_download_defaults_to_its_format(regression_refs):
    at = open_page("pages/1_Prune.py", regression_refs)
    at.session_state[state.METHOD] = "neurons"
    at.run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels[0] == "Test MAE" and "Robust MAE" in labels and not any("accuracy" in x for x in labels)
    assert any(c.value.startswith("Test R² ") and "(dense " in c.value for c in at.caption)
    radio = at.radio(key="download_format")
    assert radio.options == ["Keras 2 (tf_keras)", "Keras 3 (import keras)"] and radio.index == 0  # tf_keras in
