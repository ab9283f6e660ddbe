"""Exports of a stored run: .keras, TFLite (checked against Keras), recipes, the size waterfall.

A tiny trained CNN on synthetic data (tests/conftest.py), recorded through the real engine.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from pruning.cli import main
from pruning.errors import BadInput
from pruning.measure.deploy import tflite_predict
from pruning.runs import export
from pruning.runs.export import AGREEMENT_MIN, ExportError
from pruning.runs.store import RunStore
from pruning.specs import PruneSpec


@pytest.fixture
def recorded(tmp_path, engine, tiny_refs):
    """A store holding one completed prune of the tiny CNN at 60% (random method, seeded)."""
    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, method="random", target_sparsity=0.6, seed=7)
    store = RunStore(tmp_path / "runs.db")
    run_id, report = store.record_prune(spec, lambda: engine.prune(spec), save=lambda path: engine.save(spec, path))
    return store, store.get(run_id), report


def test_keras_export_is_the_pruned_model(tmp_path, recorded, tiny_npz):
    from pruning._keras import keras

    store, run, report = recorded
    out = export.export_keras(run, tmp_path / "out" / "pruned.keras")
    model = keras.models.load_model(out, compile=False)
    weights = model.get_weights()
    assert sum(int(np.count_nonzero(w)) for w in weights) == run.metrics["pruned"]["nonzero_params"]
    x = np.load(tiny_npz)["x_test"]
    accuracy = float((model(x).numpy().argmax(1) == np.load(tiny_npz)["y_test"]).mean())
    assert accuracy == run.metrics["pruned"]["accuracy"]
    assert not any("prune" in layer.name for layer in model.layers)  # stripped: plain layers only


def test_tflite_agrees_with_keras_and_is_recorded(tmp_path, recorded, tiny_npz):
    from pruning._keras import keras

    store, run, _ = recorded
    out = tmp_path / "pruned.tflite"
    result = export.export_tflite(run, out, store)
    assert result.agreement >= AGREEMENT_MIN and result.ok
    assert result.samples == 128
    flatbuffer = out.read_bytes()
    assert result.size_bytes == len(flatbuffer) and 0 < result.gzip_bytes < result.size_bytes
    # what was written is what was checked: run the file itself against Keras
    x = np.load(tiny_npz)["x_test"]
    keras_out = keras.models.load_model(run.artifact_path, compile=False)(x).numpy()
    lite_out = tflite_predict(flatbuffer, x, batch=50)  # 50: the last batch is ragged
    assert float((lite_out.argmax(1) == keras_out.argmax(1)).mean()) == result.agreement
    assert np.abs(lite_out - keras_out).max() == pytest.approx(result.max_abs_diff, abs=1e-6)
    assert store.get(run.id).details["tflite"]["agreement"] == result.agreement


def test_tflite_below_the_bar_is_refused_not_written(tmp_path, recorded, monkeypatch):
    store, run, _ = recorded
    monkeypatch.setattr(export, "tflite_agreement", lambda flatbuffer, model, x: (0.99, 0.4))
    out = tmp_path / "pruned.tflite"
    with pytest.raises(ExportError, match="99.00%"):
        export.export_tflite(run, out, store)
    assert not out.exists() and not list(tmp_path.glob(".pruned.tflite*"))
    assert store.get(run.id).details["tflite"]["ok"] is False  # the page shows why


def test_size_waterfall_follows_the_measured_sizes(recorded):
    store, run, _ = recorded
    without = export.size_waterfall(run)
    assert list(without["stage"]) == ["dense .keras", "pruned .keras", "pruned .keras gzip"]
    tflite = {"size_bytes": 9000, "gzip_bytes": 3000}
    frame = export.size_waterfall(run, tflite)
    assert list(frame["bytes"]) == [run.metrics["baseline"]["size_bytes"], run.metrics["pruned"]["size_bytes"],
                                    run.metrics["pruned"]["gzip_bytes"], 9000, 3000]
    assert frame["change"].sum() == 3000  # the steps add up to the last stage
    assert frame["ratio"].iloc[0] == 1.0


def test_recipe_reproduces_sparsity_accuracy_and_weights(tmp_path, recorded, monkeypatch, capsys):
    from pruning._keras import keras

    store, run, _ = recorded
    monkeypatch.setenv("PRUNESCOPE_HOME", str(tmp_path))  # the CLI stores into this run's store
    recipe = export.export_recipe(run, tmp_path / "recipe.json")
    raw = json.loads(recipe.read_text())
    assert raw["spec"]["seed"] == 7 and raw["expected"]["sparsity"] == run.metrics["sparsity"]

    assert main(["prune", "--recipe", str(recipe), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recipe_check"]["reproduced"] is True
    assert out["sparsity"] == run.metrics["sparsity"]
    assert out["pruned"]["accuracy"] == run.metrics["pruned"]["accuracy"]
    rerun = store.get(out["run_id"])
    assert rerun.prune_spec() == run.prune_spec() and rerun.id != run.id
    # the random mask came from the recipe's seed: the same weights, not just the same numbers
    before = keras.models.load_model(run.artifact_path, compile=False).get_weights()
    after = keras.models.load_model(rerun.artifact_path, compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_recipe_refuses_a_changed_model_file(tmp_path, recorded):
    store, run, _ = recorded
    raw = export.make_recipe(run)
    copy = tmp_path / "model.keras"
    copy.write_bytes(b"not the model")
    raw["spec"]["model"]["path"] = str(copy)
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(BadInput, match="changed since the run"):
        export.read_recipe(path)
    path.write_text("{not json")
    with pytest.raises(BadInput, match="not readable JSON"):
        export.read_recipe(path)
    path.write_text(json.dumps({"prunescope_recipe": 99}))
    with pytest.raises(BadInput, match="not a PruneScope prune recipe"):
        export.read_recipe(path)


def test_runs_without_a_model_cannot_be_exported(tmp_path, recorded):
    store, run, _ = recorded
    spec = run.prune_spec()

    def fail():
        raise BadInput("broken on purpose")

    with pytest.raises(BadInput):
        store.record_prune(spec, fail)
    failed = store.list(status="failed")[0]
    for exporter in export.EXPORTERS.values():
        with pytest.raises(BadInput, match="failed"):
            exporter(failed, tmp_path / "x", store)
