"""The Prune page's download: the format a model came in by default, either on request, written
by the executor (Executor.convert) and loadable by the Keras it names.

A tiny seeded Keras 3 MLP and the tiny tf_keras CNN of tests/conftest.py on its synthetic data.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASSES, INPUT_SHAPE

from pruning.errors import BadInput
from pruning.specs import DataRef, ModelRef, PruneSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def k3_file(tmp_path_factory) -> Path:
    from pruning.model.keras3 import keras3

    k3 = keras3()
    k3.utils.set_random_seed(4)
    L = k3.layers
    model = k3.Sequential([k3.Input(INPUT_SHAPE), L.Flatten(name="flatten"), L.Dense(12, activation="relu", name="hidden"),
                           L.Dense(CLASSES, activation="softmax", name="out")], name="k3_mlp")
    path = tmp_path_factory.mktemp("k3") / "k3_mlp.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def inline():
    from pruning.executors.inline import InlineExecutor

    return InlineExecutor()


def pruned(executor, model: ModelRef, data: DataRef, tmp_path: Path, method: str = "magnitude"):
    """The report of a prune with its model file written, as the app's run store does."""
    spec = PruneSpec(model=model, data=data, method=method, target_sparsity=0.5)
    report = executor.prune(spec)
    path = executor.save(spec, str(tmp_path / "run" / "model.keras"))
    return dataclasses.replace(report, model_path=path)


def test_formats_put_the_one_a_model_came_in_first(k3_file, tiny_model_file):
    from ui import backend

    assert backend.download_formats(ModelRef("mlp")) == ["keras2", "keras3"]
    assert backend.download_formats(ModelRef.parse(str(tiny_model_file))) == ["keras2", "keras3"]
    assert backend.download_formats(ModelRef.parse(str(k3_file))) == ["keras3", "keras2"]


@pytest.mark.parametrize("method", ["magnitude", "neurons"])
def test_keras3_in_downloads_as_keras3_and_keras2_on_request(k3_file, tiny_npz, tmp_path, inline, monkeypatch, method):
    from pruning._keras import keras as tfk
    from pruning.model.keras3 import keras3
    from ui import backend

    monkeypatch.setattr(backend, "get_executor", lambda: inline)
    (tmp_path / "run").mkdir()
    report = pruned(inline, ModelRef.parse(str(k3_file)), DataRef.parse(str(tiny_npz)), tmp_path, method)
    x = np.load(tiny_npz)["x_test"]
    ours = tfk.models.load_model(report.model_path, compile=False).predict(x, verbose=0)

    first = backend.download_formats(report.spec.model)[0]
    out = tmp_path / "download3.keras"
    out.write_bytes(backend.pruned_model_bytes(report, first))
    k3_model = keras3().saving.load_model(out, safe_mode=True)
    assert np.abs(np.asarray(k3_model.predict(x, verbose=0)) - ours).max() <= 1e-5
    # converted once, kept beside the run's file, the same bytes on a second click
    assert (tmp_path / "run" / "model-keras3.keras").read_bytes() == out.read_bytes()

    out2 = tmp_path / "download2.keras"
    out2.write_bytes(backend.pruned_model_bytes(report, "keras2"))
    assert np.array_equal(tfk.models.load_model(out2, compile=False).predict(x, verbose=0), ours)
    with pytest.raises(BadInput, match="choose keras2 or keras3"):
        backend.pruned_model_bytes(report, "onnx")


def test_a_zoo_model_downloads_as_keras3_on_request(tmp_path, inline, monkeypatch):
    from pruning._keras import keras as tfk
    from pruning.model.keras3 import keras3
    from pruning.model.datasets import load_dataset
    from ui import backend

    monkeypatch.setattr(backend, "get_executor", lambda: inline)
    (tmp_path / "run").mkdir()
    report = pruned(inline, ModelRef("mlp"), DataRef("digits"), tmp_path)
    x = load_dataset(DataRef("digits")).x_test
    out = tmp_path / "zoo3.keras"
    out.write_bytes(backend.pruned_model_bytes(report, "keras3"))
    k3_model = keras3().saving.load_model(out, safe_mode=True)
    ours = tfk.models.load_model(report.model_path, compile=False).predict(x, verbose=0)
    assert np.abs(np.asarray(k3_model.predict(x, verbose=0)) - ours).max() <= 1e-5
    nonzero = sum(int(np.count_nonzero(w)) for w in k3_model.get_weights())
    assert nonzero == report.pruned["nonzero_params"]  # the zeros survive the conversion
