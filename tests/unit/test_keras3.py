"""Keras 3 files in and out: checked, rebuilt as tf_keras with equal outputs, pruned, written back.

Tiny seeded Keras 3 models (a functional CNN with BatchNorm and squeeze-and-excite, a Sequential
MLP) on the synthetic dataset of tests/conftest.py; Keras 3 itself comes from the bridge.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASSES, INPUT_SHAPE

from pruning.errors import BadInput

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def k3():
    from pruning.model.keras3 import keras3

    return keras3()


def build_cnn(k3):
    """Conv -> BatchNorm -> ReLU -> depthwise conv, a squeeze-and-excite gate (Multiply), then a
    dense head (tf_keras writes DepthwiseConv2D with a `groups` that Keras 3's lacks)."""
    k3.utils.set_random_seed(0)
    L = k3.layers
    inputs = k3.Input(INPUT_SHAPE, name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    s = L.GlobalAveragePooling2D(name="squeeze")(x)
    s = L.Dense(8, activation="sigmoid", name="excite")(s)
    x = L.Multiply(name="gate")([x, L.Reshape((1, 1, 8), name="gate_shape")(s)])
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="conv_2")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(CLASSES, activation="softmax", name="out")(x)
    model = k3.Model(inputs, outputs, name="k3_cnn")
    bn = model.get_layer("bn")  # non-trivial statistics, so BatchNorm really takes part
    rng = np.random.default_rng(3)
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8), rng.uniform(0.5, 2, 8)])
    return model


def build_mlp(k3):
    k3.utils.set_random_seed(1)
    L = k3.layers
    return k3.Sequential([k3.Input(INPUT_SHAPE), L.Flatten(name="flatten"), L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(CLASSES, activation="softmax", name="out")], name="k3_mlp")


@pytest.fixture(scope="module")
def files(k3, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("k3")
    paths = {}
    for name, build in (("cnn", build_cnn), ("mlp", build_mlp)):
        model = build(k3)
        paths[name] = folder / f"{name}.keras"
        model.save(paths[name])
    build_cnn(k3).save(folder / "cnn.h5")
    paths["cnn_h5"] = folder / "cnn.h5"
    return paths


def test_keras3_files_pass_the_check_with_their_version(files, k3):
    from pruning.model.safety import inspect_model_file, saved_by_keras3

    assert inspect_model_file(files["cnn"]).layers == 12  # the InputLayer and 11 layers
    assert inspect_model_file(files["mlp"]).layers == 4
    assert inspect_model_file(files["cnn_h5"]).keras_version == k3.__version__
    assert all(saved_by_keras3(p) for p in files.values())


@pytest.mark.parametrize("which", ["cnn", "mlp", "cnn_h5"])
def test_import_rebuilds_the_same_model_in_tf_keras(files, k3, tiny_npz, which):
    from pruning._keras import keras
    from pruning.model.baselines import read_model_file
    from pruning.specs import ModelRef

    x = np.load(tiny_npz)["x_test"]
    model, note = read_model_file(ModelRef.parse(str(files[which])), x)
    source = k3.saving.load_model(files[which], compile=False, safe_mode=True)
    assert isinstance(model, keras.Model) and type(model).__name__ == type(source).__name__
    assert [l.name for l in model.layers] == [l.name for l in source.layers]
    for a, b in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    diff = float(np.abs(model(x).numpy() - source(x).numpy()).max())
    assert diff <= 1e-6
    assert note == f"imported from Keras {k3.__version__}: outputs equal within {diff:.2g} on {len(x)} test inputs"


def test_description_names_the_import(engine, files, tiny_npz):
    from pruning.specs import DataRef, ModelRef

    report = engine.baseline(ModelRef.parse(str(files["mlp"])), DataRef.parse(str(tiny_npz)))
    assert report.description.startswith("your file mlp.keras, imported from Keras 3.")
    assert report.description.endswith(" on 128 test inputs")
    from pruning.specs import PruneSpec

    pruned = engine.prune(PruneSpec(model=ModelRef.parse(str(files["mlp"])), data=DataRef.parse(str(tiny_npz)),
                                    method="magnitude", target_sparsity=0.5))
    assert pruned.notes[-1] == report.description  # the prune's JSON says it came through the bridge, and how close


def test_a_rebuild_that_disagrees_is_refused_with_the_number(files, monkeypatch):
    from pruning.model import keras3 as bridge

    real = bridge.to_tf_keras

    def off_by_some(source, name="the model"):
        model = real(source, name)
        model.set_weights([w * 1.5 for w in model.get_weights()])
        return model

    monkeypatch.setattr(bridge, "to_tf_keras", off_by_some)
    with pytest.raises(BadInput, match=r"^mlp\.keras rebuilt in tf_keras gives outputs up to [0-9.e-]+ away from "
                                       r"Keras 3\.[0-9.]+'s \(tolerance 0\.0001\): [^\n]+$"):
        bridge.import_keras3(files["mlp"], "mlp.keras")


def _pruned(store_home: Path, run_id: int):
    from pruning._keras import keras
    from pruning.runs.store import open_store

    return keras.models.load_model(open_store().get(run_id).artifact_path, compile=False)


@pytest.mark.parametrize("which,method", [("cnn", "magnitude"), ("cnn", "filters-l1"), ("mlp", "magnitude")])
def test_keras3_in_keras3_out_through_the_cli(files, k3, tiny_npz, tmp_path, capsys, which, method):
    from pruning.cli import main

    out = tmp_path / f"pruned_{which}.keras"
    code = main(["prune", "--model", str(files[which]), "--dataset", str(tiny_npz), "--method", method,
                 "--sparsity", "0.5", "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("metadata.json"))["keras_version"] == k3.__version__
    written = k3.saving.load_model(out, safe_mode=True)  # no custom objects
    pruned = _pruned(tmp_path, result["run_id"])
    x = np.load(tiny_npz)["x_test"]
    assert float(np.abs(written(x).numpy() - pruned(x).numpy()).max()) <= 1e-5
    for a, b in zip(written.get_weights(), pruned.get_weights()):
        np.testing.assert_array_equal(a, b)
    kernels = {l.name: l.get_weights()[0] for l in written.layers if type(l).__name__ in ("Conv2D", "Dense")}
    assert len(kernels) == (4 if which == "cnn" else 2)
    if method == "magnitude":  # tfmot's rule per kernel: max(round(n * 0.5), 1) weights kept
        for name, kernel in kernels.items():
            assert int(np.count_nonzero(kernel)) == max(round(kernel.size * 0.5), 1), name
    else:  # filters-l1 removes whole filters: the written model is physically smaller
        assert kernels["conv_2"].shape[-1] < 6 or kernels["conv"].shape[-1] < 8
        assert written.count_params() == result["pruned"]["params"]


def test_out_format_keras2_overrides_and_zoo_models_may_go_out_as_keras3(files, k3, tiny_npz, tiny_model_file,
                                                                       tmp_path, capsys):
    from pruning.cli import main

    out = tmp_path / "as_keras2.keras"
    assert main(["prune", "--model", str(files["mlp"]), "--dataset", str(tiny_npz), "--method", "magnitude",
                 "--sparsity", "0.5", "--out", str(out), "--out-format", "keras2"]) == 0
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("metadata.json"))["keras_version"].startswith("2.")
    out3 = tmp_path / "tf_keras_in.keras"
    assert main(["prune", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--method", "magnitude",
                 "--sparsity", "0.5", "--out", str(out3), "--out-format", "keras3"]) == 0
    assert type(k3.saving.load_model(out3, safe_mode=True)).__name__ == "Functional"
    capsys.readouterr()


def test_export_format_keras3_of_a_stored_run(files, k3, tiny_npz, tmp_path, capsys):
    from pruning.cli import main

    assert main(["prune", "--model", str(files["cnn"]), "--dataset", str(tiny_npz), "--method", "filters-l1",
                 "--sparsity", "0.5", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    out = tmp_path / "exported.keras"
    assert main(["export", str(run_id), "--format", "keras3", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"run {run_id} exported as keras3 to {out}"
    written = k3.saving.load_model(out, safe_mode=True)
    x = np.load(tiny_npz)["x_test"]
    assert float(np.abs(written(x).numpy() - _pruned(tmp_path, run_id)(x).numpy()).max()) <= 1e-5


def test_keras3_out_refuses_what_keras3_cannot_load(tmp_path):
    from pruning._keras import keras, tf
    from pruning.model.keras3 import save_keras3

    L = keras.layers
    inputs = L.Input((6,))
    # `inputs * 2.0` goes out as keras.ops (test_keras3_graphs.py); a TF op with no keras.ops form does not
    model = keras.Model(inputs, L.Dense(3, name="head")(tf.math.cumsum(inputs, axis=1)))
    with pytest.raises(BadInput, match=r"is a TensorFlow op \(math.cumsum\), which Keras 3 cannot load"):
        save_keras3(model, tmp_path / "ops.keras")
    with pytest.raises(BadInput, match=r"a Keras 3 model is written as \.keras"):
        save_keras3(model, tmp_path / "ops.h5")
    assert list(tmp_path.iterdir()) == []
