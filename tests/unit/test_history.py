"""Run history as tables (pruning.runs.history): exact values on tiny hand-made stored runs.

No TensorFlow and no engine: runs are written straight into a fresh store.
"""
from __future__ import annotations

import pandas as pd
import pytest

from pruning.errors import BadInput
from pruning.runs import history
from pruning.runs.store import Outcome, RunStore

BASE = {"accuracy": 0.9, "latency_ms": 2.0, "gzip_bytes": 1000, "size_bytes": 4000, "nonzero_params": 100}


def prune_spec(model: str, method: str, sparsity: float) -> dict:
    return {"model": {"name": model}, "data": {"name": "digits"}, "method": method, "sparsity": sparsity,
            "scope": "layer", "finetune_epochs": 0, "seed": 0}


def add_prune(store: RunStore, model: str, method: str, sparsity: float, accuracy: float, gzip: int,
              latency: float, name: str = "") -> int:
    run_id = store.begin("prune", prune_spec(model, method, sparsity), name=name)
    pruned = dict(BASE, accuracy=accuracy, gzip_bytes=gzip, latency_ms=latency, nonzero_params=round(100 * (1 - sparsity)))
    store.complete(run_id, Outcome(
        metrics={"method": method, "target_sparsity": sparsity, "sparsity": sparsity, "baseline": BASE,
                 "pruned": pruned},
        layers=[{"name": "dense", "sparsity": sparsity}], environment={"device": "CPU"}))
    return run_id


def add_sweep(store: RunStore, model: str, points: list[dict], status: str = "completed") -> int:
    spec = {"model": {"name": model}, "data": {"name": "digits"}, "methods": ["magnitude"]}
    run_id = store.begin("sweep", spec)
    for point in points:
        store.add_sweep_point(run_id, point)
    if status == "completed":
        store.complete(run_id, Outcome(metrics={"points": len(points), "baseline": BASE}))
    else:
        store.fail(run_id, "stopped", status=status)
    return run_id


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs.db")


def test_runs_frame_has_the_cli_columns_and_values(store):
    a = add_prune(store, "cnn", "magnitude", 0.5, 0.8, 600, 1.5, name="half")
    s = add_sweep(store, "cnn", [{"method": "magnitude", "target_sparsity": 0.0, "sparsity": 0.0}])
    frame = history.runs_frame(store.list())
    assert list(frame.columns) == list(history.RUNS_COLUMNS)
    assert list(frame["id"]) == [s, a]
    assert list(frame["kind"]) == ["sweep", "prune"]
    row = frame.iloc[1]
    assert (row["name"], row["method"], row["target_sparsity"], row["accuracy"], row["gzip_bytes"],
            row["baseline_accuracy"], row["device"]) == ("half", "magnitude", 0.5, 0.8, 600, 0.9, "CPU")
    assert frame["created_at"].dtype.kind == "M"


def test_compare_frame_changes_against_the_first_run(store):
    a = add_prune(store, "cnn", "magnitude", 0.5, 0.8, 600, 1.5)
    b = add_prune(store, "cnn", "random", 0.75, 0.5, 400, 1.25)
    first, second = store.get(a), store.get(b)
    frame = history.compare_frame([first, second]).set_index("metric")
    assert list(frame.index) == ["sparsity", *history.COMPARE_METRICS]
    assert list(frame.columns) == [first.label, second.label, f"Δ {second.label}"]
    assert frame.loc["sparsity"].tolist() == [0.5, 0.75, 0.25]
    assert frame.loc["accuracy", f"Δ {second.label}"] == pytest.approx(-0.3)
    assert frame.loc["gzip_bytes"].tolist() == [600, 400, -200]
    assert frame.loc["latency_ms", f"Δ {second.label}"] == -0.25
    assert frame.loc["nonzero_params"].tolist() == [50, 25, -25]
    assert frame.loc["loss"].isna().all()  # never measured here: no value, no change


def test_pareto_rows_of_one_model_from_prunes_and_sweep_points(store):
    a = add_prune(store, "cnn", "magnitude", 0.5, 0.8, 600, 1.5)
    add_prune(store, "mlp", "magnitude", 0.5, 0.7, 500, 1.0)  # another model: left out
    failed = store.begin("prune", prune_spec("cnn", "lamp", 0.9))
    store.fail(failed, "boom")  # failed: left out
    points = [{"method": "magnitude", "target_sparsity": r, "sparsity": r, "accuracy": 1 - r,
               "latency_ms": 2 - r, "gzip_bytes": int(1000 * (1 - r))} for r in (0.0, 0.5)]
    points.append({"method": "magnitude", "target_sparsity": 0.9, "sparsity": 0.9, "accuracy": None,
                   "latency_ms": 1.0, "gzip_bytes": 100})  # no accuracy: not a Pareto point
    s = add_sweep(store, "cnn", points, status="interrupted")
    frame, baseline, task = history.pareto_rows(store, store.list(), "cnn", "digits")
    assert task.metric == "accuracy" and list(frame.columns) == ["method", "sparsity", "source", "accuracy",
                                                                 "latency_ms", "gzip_bytes"]
    assert frame.to_dict(orient="records") == [
        {"method": "magnitude", "sparsity": 0.0, "source": f"sweep #{s}", "accuracy": 1.0, "latency_ms": 2.0,
         "gzip_bytes": 1000},
        {"method": "magnitude", "sparsity": 0.5, "source": f"sweep #{s}", "accuracy": 0.5, "latency_ms": 1.5,
         "gzip_bytes": 500},
        {"method": "magnitude", "sparsity": 0.5, "source": store.get(a).label, "accuracy": 0.8, "latency_ms": 1.5,
         "gzip_bytes": 600},
    ]
    assert baseline == BASE  # the newest run, the interrupted sweep, stored none: the prune's


def test_pareto_rows_of_a_model_with_no_runs(store):
    frame, baseline, task = history.pareto_rows(store, store.list(), "cnn", "digits")
    assert frame.empty and list(frame.columns) == ["method", "sparsity", "source", "accuracy", "latency_ms",
                                                   "gzip_bytes"] and baseline == {} and task.metric == "accuracy"


def test_related_sweeps_are_those_of_the_same_model_and_data_with_points(store):
    a = add_prune(store, "cnn", "magnitude", 0.5, 0.8, 600, 1.5)
    point = {"method": "magnitude", "target_sparsity": 0.5, "sparsity": 0.5, "accuracy": 0.7}
    old = add_sweep(store, "cnn", [point], status="interrupted")
    add_sweep(store, "cnn", [])  # no points: nothing to draw
    add_sweep(store, "mlp", [point])  # another model
    new = add_sweep(store, "cnn", [point, dict(point, target_sparsity=0.9, sparsity=0.9)])
    found = history.related_sweeps(store, store.get(a))
    assert [(run.id, len(points)) for run, points in found] == [(new, 2), (old, 1)]
    assert history.related_sweeps(store, store.get(old)) == [(store.get(old), [point])]


def test_size_stages_of_a_prune_run(store):
    a = add_prune(store, "cnn", "magnitude", 0.5, 0.8, 600, 1.5)
    frame = history.size_stages(store, a)
    assert frame["stage"].tolist() == ["dense .keras", "pruned .keras", "pruned .keras gzip"]
    assert frame["bytes"].tolist() == [4000, 4000, 600]
    assert frame["change"].tolist() == [4000, 0, -3400]
    with_tflite = history.size_stages(store, a, {"size_bytes": 3000, "gzip_bytes": 500})
    assert with_tflite["bytes"].tolist()[-2:] == [3000, 500]
    s = add_sweep(store, "cnn", [])
    with pytest.raises(BadInput, match="completed prune runs"):
        history.size_stages(store, s)


def test_runs_frame_of_no_runs_is_empty_with_every_column(store):
    frame = history.runs_frame([])
    assert frame.empty and list(frame.columns) == list(history.RUNS_COLUMNS)
    assert isinstance(frame, pd.DataFrame)
