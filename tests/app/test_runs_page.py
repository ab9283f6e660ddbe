"""AppTest for the Runs page: table, comparison, Pareto, rename, TFLite, report, delete, re-run.

Runs are recorded into the page's store ($PRUNESCOPE_HOME/runs.db) with the real engine first.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pruning.paths import home
from pruning.runs.store import RunStore
from pruning.specs import PruneSpec
from ui import state

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


@pytest.fixture(scope="module")
def recorded(engine, tiny_refs):
    model, data = tiny_refs
    store = RunStore(home() / "runs.db")
    ids = []
    for method, rate in (("magnitude", 0.5), ("random", 0.8)):
        spec = PruneSpec(model=model, data=data, method=method, target_sparsity=rate, seed=1)
        ids.append(store.record_prune(spec, lambda: engine.prune(spec), source="test",
                                      save=lambda path: engine.save(spec, path))[0])
    return store, ids


def values(data) -> list:
    """Plotly sends pandas columns as typed arrays ({dtype, bdata}); lists stay lists."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def charts_by_title(at: AppTest) -> dict[str, dict]:
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def open_page(first: int, second: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "4_Runs.py"), default_timeout=TIMEOUT)
    at.session_state[state.RUNS_COMPARE] = [first, second]
    at.session_state[state.RUNS_FOCUS] = first
    # other tests store runs of other models in the same store: pick this one's Pareto front
    run = RunStore(home() / "runs.db").get(first)
    at.session_state[state.RUNS_PARETO] = f"{run.model} · {run.dataset}"
    return at.run()


def test_table_comparison_and_pareto(recorded):
    store, (a, b) = recorded
    at = open_page(a, b)
    assert not at.exception
    table = at.dataframe[0].value
    assert {a, b} <= set(table["id"])
    row = table.set_index("id").loc[b]
    assert (row["method"], row["status"], row["target_sparsity"]) == ("random", "completed", 0.8)

    run_a, run_b = store.get(a), store.get(b)
    compare = at.dataframe[1].value.set_index("metric")
    assert compare.loc["accuracy", run_a.label] == run_a.metrics["pruned"]["accuracy"]
    assert compare.loc["accuracy", f"Δ {run_b.label}"] == pytest.approx(
        run_b.metrics["pruned"]["accuracy"] - run_a.metrics["pruned"]["accuracy"])

    figures = charts_by_title(at)
    layers = figures["Sparsity per layer, run by run"]["data"]
    assert [t["name"] for t in layers] == [run_a.label, run_b.label]
    assert layers[1]["y"] == pytest.approx([r["sparsity"] for r in run_b.layers if r["sparsity"] is not None])
    assert layers[0]["marker"]["color"] != layers[1]["marker"]["color"]  # magnitude vs random colours
    pareto = figures["Accuracy vs latency (ms / batch)"]["data"]
    plotted = {(round(x, 9), round(y, 9)) for t in pareto if t.get("mode") == "markers" for x, y in zip(values(t["x"]), values(t["y"]))}
    assert (round(run_a.metrics["pruned"]["latency_ms"], 9), round(run_a.metrics["pruned"]["accuracy"], 9)) in plotted
    assert "Accuracy vs gzip size (bytes)" in figures

    at.multiselect(key=state.widget_key(state.RUNS_METHODS)).set_value(["random"]).run()
    assert not at.exception
    assert set(at.dataframe[0].value["method"]) == {"random"}


def test_manage_and_export_a_run(recorded):
    store, (a, b) = recorded
    at = open_page(a, b)
    at.text_input(key=f"run_name_{a}").set_value("demo for Tuesday")
    at.text_area(key=f"run_note_{a}").set_value("the one to show")
    at.button(key="run_save").click().run()
    assert not at.exception
    assert (store.get(a).name, store.get(a).note) == ("demo for Tuesday", "the one to show")

    labels = {button.label for button in at.get("download_button")}
    assert {"Pruned model (.keras)", "Recipe (.json)"} <= labels
    at.button(key="run_tflite").click().run()
    assert not at.exception
    deploy = store.get(a).details["deploy"]  # converted and measured by the executor
    lite = {row["artifact"]: row for row in deploy["artifacts"]}
    assert lite["pruned float32"]["agreement"] >= 0.999
    assert any(f"agrees with Keras on {lite['pruned float32']['agreement']:.2%}" in s.value
               and f"scores accuracy {lite['pruned int8']['accuracy']:.2%}" in s.value for s in at.success)
    assert {"TFLite float32 (.tflite)", "TFLite int8 (.tflite)", "TFLite int8, zeros stored (.tflite)"} <= {
        b.label for b in at.get("download_button")}
    plain = lite["pruned int8 zeros stored"]
    smaller = min((lite["pruned int8"], plain), key=lambda r: r["gzip_bytes"])["artifact"]
    assert any(f"the smaller download is **{smaller}**" in c.value for c in at.caption)
    waterfall = charts_by_title(at)["Model size, step by step (and accuracy)"]["data"][0]
    assert waterfall["x"] == ["dense .keras", "pruned .keras", "pruned .keras gzip", "TFLite float32",
                              "TFLite int8", "TFLite int8 gzip", "TFLite int8 zeros stored",
                              "TFLite int8 zeros stored gzip"]
    assert waterfall["text"][4].endswith(f" · {lite['pruned int8']['accuracy']:.1%}")

    at.button(key="run_report").click().run()
    assert not at.exception
    assert "HTML report" in {button.label for button in at.get("download_button")}

    before = {run.id for run in store.list()}
    at.button(key="run_rerun").click().run()
    assert not at.exception
    (new_id,) = {run.id for run in store.list()} - before
    assert store.get(new_id).prune_spec() == store.get(a).prune_spec()
    assert store.get(new_id).metrics["sparsity"] == store.get(a).metrics["sparsity"]
    assert at.session_state[state.RUNS_FOCUS] == new_id

    at.session_state[state.RUNS_FOCUS] = b
    at.run()
    assert at.button(key="run_delete").disabled  # not without the confirmation
    at.checkbox(key="run_delete_confirm").check().run()
    at.button(key="run_delete").click().run()
    assert not at.exception
    assert b not in {run.id for run in store.list()}
    assert b not in at.session_state[state.RUNS_COMPARE]


def test_prune_stores_each_spec_once(recorded, tiny_refs):
    """What the Prune page calls: the first prune of a spec becomes a run, a repeat is the cached report."""
    from ui import backend

    store, _ = recorded
    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.3, seed=11)
    before = {run.id for run in store.list()}
    first = backend.prune(spec)
    assert backend.prune(spec) is first
    (new_id,) = {run.id for run in store.list()} - before
    run = store.get(new_id)
    assert (run.status, run.source, run.prune_spec()) == ("completed", "app", spec)
    assert run.metrics["pruned"]["accuracy"] == first.pruned["accuracy"]
