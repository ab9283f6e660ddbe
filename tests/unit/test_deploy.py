"""The deploy step: int8 and float32 TFLite measured by the interpreter, sparsity read back from the
TFLite tensors, inference memory, the size waterfall and `export --format tflite-int8`.

A tiny trained CNN on synthetic 8x8 data (tests/conftest.py), pruned by magnitude at 60 %.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from pruning.cli import main
from pruning.measure.deploy import (
    make_interpreter,
    tflite_memory,
    tflite_weight_sparsity,
)
from pruning.runs import export
from pruning.runs.deployment import deploy_model, deployed_path
from pruning.runs.store import RunStore
from pruning.specs import DeploySpec, PruneSpec

OPTIONS = DeploySpec(representative_samples=64, latency_calls=2)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, tiny_refs):
    """One stored magnitude prune at 60 % and its deploy report (made once for the module)."""
    from pruning.run.engine import Engine

    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.6, seed=3)
    store = RunStore(tmp_path_factory.mktemp("deploy") / "runs.db")
    engine = Engine(1)
    run_id, _ = store.record_prune(spec, lambda: engine.prune(spec), save=lambda path: engine.save(spec, path))
    report = export.stored_deploy(store, run_id, OPTIONS)
    return store, store.get(run_id), report


def _rows(report):
    return {row["artifact"]: row for row in report["artifacts"]}


def test_int8_accuracy_is_the_interpreters_on_the_test_split(deployed, tiny_npz):
    store, run, report = deployed
    int8 = _rows(report)["pruned int8"]
    data = np.load(tiny_npz)
    # the reference: one sample at a time through a fresh interpreter, argmax in numpy
    interpreter = make_interpreter(open(int8["path"], "rb").read())
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32  # the default: a float interface
    hits = 0
    for x, y in zip(data["x_test"], data["y_test"]):
        interpreter.set_tensor(inp["index"], x[None].astype(np.float32))
        interpreter.invoke()
        hits += int(interpreter.get_tensor(out["index"])[0].argmax() == y)
    assert int8["accuracy"] == hits / len(data["y_test"])
    # int8 follows the Keras model it came from: this tiny model (5 epochs) has low margins, so a
    # few of its 128 predictions flip; at most 6 differ, and accuracy moves by at most 6 / 128
    assert int8["agreement"] >= 1 - 6 / 128, int8["agreement"]
    assert abs(int8["accuracy"] - run.metrics["pruned"]["accuracy"]) <= 6 / 128
    assert _rows(report)["pruned float32"]["accuracy"] == run.metrics["pruned"]["accuracy"]


def test_int8_weights_and_activations_are_integers(deployed):
    interpreter = make_interpreter(open(_rows(deployed[2])["pruned int8"]["path"], "rb").read(), delegates=False)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    weight_ops = [op for op in ops if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(weight_ops) == 3
    for op in weight_ops:  # activations in and out are int8, biases int32
        assert details[op["inputs"][0]]["dtype"] == np.int8 and details[op["outputs"][0]]["dtype"] == np.int8
        assert details[op["inputs"][2]]["dtype"] == np.int32


def test_tflite_sparsity_equals_the_keras_zero_count(deployed):
    from pruning._keras import keras

    store, run, report = deployed
    model = keras.models.load_model(run.artifact_path, compile=False)
    kernel = model.get_layer("hidden").kernel.numpy()  # (64, 16); TFLite holds it as (16, 64)
    keras_zeros = int(kernel.size - np.count_nonzero(kernel))
    assert keras_zeros == kernel.size - max(round(kernel.size * 0.4), 1)  # tfmot's keep rule
    for name in ("pruned float32", "pruned int8"):
        layers = tflite_weight_sparsity(open(_rows(report)[name]["path"], "rb").read())["layers"]
        hidden = [layer for layer in layers if "hidden" in layer["name"]]
        assert [(layer["shape"], layer["zeros"]) for layer in hidden] == [([16, 64], keras_zeros)], name
    keras_row = {row["model"]: row for row in report["keras"]}["pruned"]
    assert _rows(report)["pruned float32"]["zeros"] == keras_row["zeros"]  # every conv/dense kernel


def test_memory_is_weights_as_stored_plus_live_activations():
    from pruning._keras import keras
    from pruning.measure.deploy import convert_tflite

    keras.utils.set_random_seed(0)
    # nonzero biases and a relu between: else the converter drops or folds a bias into the next layer
    dense = {"bias_initializer": "ones"}
    model = keras.Sequential([keras.layers.Input((5,)), keras.layers.Dense(3, "relu", name="a", **dense),
                              keras.layers.Dense(2, name="b", **dense)])
    memory = tflite_memory(convert_tflite(model, "float32", sparsity=False))
    # weights 5*3 + 3 + 3*2 + 2 floats; the peak is at "a": its input (5) and output (3) floats
    assert memory == {"weight_bytes": 4 * 26, "activation_bytes": 4 * 8, "memory_bytes": 4 * 34}


def test_the_waterfall_has_a_size_and_an_accuracy_at_every_step(deployed):
    store, run, report = deployed
    frame = export.size_waterfall(run)
    assert frame["stage"].tolist() == ["dense .keras", "pruned .keras", "pruned .keras gzip", "TFLite float32",
                                       "TFLite int8", "TFLite int8 gzip", "TFLite int8 zeros stored",
                                       "TFLite int8 zeros stored gzip"]
    assert frame["bytes"].gt(0).all() and frame["accuracy"].notna().all()
    rows = _rows(report)
    assert frame["bytes"].tolist()[3:6] == [rows["pruned float32"]["bytes"], rows["pruned int8"]["bytes"],
                                           rows["pruned int8"]["gzip_bytes"]]
    assert frame["accuracy"].tolist()[4] == rows["pruned int8"]["accuracy"]
    assert frame["bytes"].iloc[5] < frame["bytes"].iloc[2]  # int8 gzip beats the gzipped .keras
    # the other encoding: the same int8 model with its zeros stored, a second branch off float32
    plain = rows["pruned int8 zeros stored"]
    assert plain["sparse_encoded_tensors"] == 0 < rows["pruned int8"]["sparse_encoded_tensors"]
    assert (plain["zeros"], plain["weights"]) == (rows["pruned int8"]["zeros"], rows["pruned int8"]["weights"])
    assert frame["bytes"].tolist()[6:] == [plain["bytes"], plain["gzip_bytes"]]
    assert frame["change"].iloc[6] == plain["bytes"] - rows["pruned float32"]["bytes"]
    assert frame["measure"].tolist() == ["absolute"] + ["relative"] * 5 + ["absolute", "relative"]
    from pruning.runs.figures import waterfall_figure

    bars = waterfall_figure(frame).data[0]
    assert list(bars.y)[6:] == [plain["bytes"], plain["gzip_bytes"] - plain["bytes"]]


def test_a_stored_deploy_is_reused_and_other_options_redo_it(deployed):
    store, run, report = deployed
    assert export.stored_deploy(store, run.id, OPTIONS, compute=lambda *a: pytest.fail("recomputed")) == report
    calls = []
    export.stored_deploy(store, run.id, DeploySpec(representative_samples=8, latency_calls=1),
                         compute=lambda spec, path, options: calls.append(options) or report)
    assert [c.representative_samples for c in calls] == [8]


def test_cli_exports_int8_that_the_interpreter_loads(deployed, tmp_path, monkeypatch, capsys):
    store, run, report = deployed
    monkeypatch.setattr("pruning.runs.store.open_store", lambda path=None: store)
    out = tmp_path / "model.tflite"
    assert main(["export", str(run.id), "--format", "tflite-int8", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    interpreter = make_interpreter(out.read_bytes())
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 8, 8, 1]
    assert out.read_bytes() == deployed_path(run.artifact_path, "pruned int8").read_bytes()
    stored = store.get(run.id).details["deploy"]  # the CLI's default options: deployed again, and kept
    assert stored["options"]["representative_samples"] == 256
    assert summary["int8"]["accuracy"] == _rows(stored)["pruned int8"]["accuracy"]
    assert set(summary) >= {"baseline", "pruned", "int8", "derived", "waterfall"}
    assert summary["pruned"]["memory_bytes"] == summary["baseline"]["memory_bytes"]  # masks store every zero
    assert summary["int8"]["memory_bytes"] < summary["pruned"]["memory_bytes"] / 3


def test_cli_export_of_a_run_without_a_model_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.begin("prune", PruneSpec())
    store.fail(run_id, "stopped")
    monkeypatch.setattr("pruning.runs.store.open_store", lambda path=None: store)
    assert main(["export", str(run_id), "--format", "tflite-int8", "--out", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "saved no model" in err and not (tmp_path / "x.tflite").exists()


def test_deploy_needs_training_samples(deployed, tmp_path, tiny_npz):
    from pruning.errors import BadInput
    from pruning.specs import DataRef

    data = np.load(tiny_npz)
    test_only = tmp_path / "test_only.npz"
    np.savez(test_only, x_test=data["x_test"], y_test=data["y_test"])
    run = deployed[1]
    spec = PruneSpec(model=run.prune_spec().model, data=DataRef.parse(str(test_only)))
    with pytest.raises(BadInput, match="calibrate"):
        deploy_model(spec, run.artifact_path, OPTIONS)


@pytest.mark.slow
def test_pqat_keeps_every_zero_through_int8(deployed):
    store, run, _ = deployed
    report = deploy_model(run.prune_spec(), run.artifact_path,
                          DeploySpec(representative_samples=32, latency_calls=1, pqat_epochs=1)).to_dict()
    rows, keras_rows = _rows(report), {row["model"]: row for row in report["keras"]}
    pqat = rows["pruned int8 PQAT"]
    assert pqat["zeros"] == keras_rows["pruned"]["zeros"]  # Default8BitPrunePreserveQuantizeScheme
    assert make_interpreter(open(pqat["path"], "rb").read()).get_input_details()[0]["dtype"] == np.float32
    stages = export.size_waterfall(run, deploy=report)["stage"].tolist()
    assert stages[-4:] == ["TFLite int8 PQAT", "TFLite int8 PQAT gzip", "TFLite int8 PQAT zeros stored",
                           "TFLite int8 PQAT zeros stored gzip"]
    assert rows["pruned int8 PQAT zeros stored"]["zeros"] == pqat["zeros"]  # the same PQAT model, zeros stored
    assert export.int8_artifact(report)["artifact"] == "pruned int8 PQAT"
