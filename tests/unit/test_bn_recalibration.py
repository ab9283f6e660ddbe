"""Adaptive BatchNorm after structured surgery: moving statistics become the data's, nothing else moves."""
from __future__ import annotations

import numpy as np
import pytest

from pruning.measure.calibration import recalibrate_batchnorm
from pruning.model.datasets import Dataset


def test_moving_stats_become_the_mean_of_batch_statistics():
    from pruning._keras import keras

    keras.utils.set_random_seed(0)
    inputs = keras.layers.Input((3,))
    hidden = keras.layers.Dense(4, name="dense")(inputs)
    outputs = keras.layers.BatchNormalization(momentum=0.99, name="bn")(hidden)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(256, 3)) * [1.0, 2.0, 3.0] + [5.0, -1.0, 0.5]).astype(np.float32)
    ds = Dataset("toy", x[:8], np.zeros(8, np.int64), x, np.zeros(256, np.int64), 2)
    before = {w.name: w.numpy().copy() for w in model.weights}

    used = recalibrate_batchnorm(model, ds, seed=0, samples=256)

    assert used == 256
    h = model.get_layer("dense")(x).numpy()  # 4 equal batches of 64 in order: mean of means = mean
    bn = model.get_layer("bn")
    assert bn.moving_mean.numpy() == pytest.approx(h.mean(axis=0), abs=1e-4)
    batch_vars = [h[i : i + 64].var(axis=0) for i in range(0, 256, 64)]
    assert bn.moving_variance.numpy() == pytest.approx(np.mean(batch_vars, axis=0), rel=1e-3)
    assert bn.momentum == 0.99  # restored
    for w in model.weights:
        if "moving" not in w.name:
            assert np.array_equal(w.numpy(), before[w.name]), w.name


def test_nothing_to_do_without_batchnorm_or_train_data():
    from pruning._keras import keras

    model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(2)])
    x = np.zeros((4, 3), np.float32)
    assert recalibrate_batchnorm(model, Dataset("d", x, np.zeros(4, np.int64), x, np.zeros(4, np.int64), 2), 0) == 0


@pytest.fixture(scope="module")
def bn_model_file(tmp_path_factory, tiny_npz):
    from conftest import CLASSES, INPUT_SHAPE

    from pruning._keras import keras

    keras.utils.set_random_seed(0)
    inputs = keras.layers.Input(INPUT_SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs)
    data = np.load(tiny_npz)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data["x_train"], data["y_train"], epochs=3, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("bn") / "bn.keras"
    model.save(path)
    return path


def test_prune_can_re_estimate_batchnorm_after_masks(engine, bn_model_file, tiny_npz, tmp_path):
    from pruning._keras import keras
    from pruning.model.baselines import weights_checksum
    from pruning.specs import DataRef, ModelRef, PruneSpec

    model, data = ModelRef.parse(str(bn_model_file)), DataRef.parse(str(tiny_npz))
    bench = engine.workbench(model, data)
    base = weights_checksum(bench.base_weights)
    plain_spec = PruneSpec(model=model, data=data, target_sparsity=0.7)
    fixed_spec = PruneSpec(model=model, data=data, target_sparsity=0.7, recalibrate_bn=True)
    plain, fixed = engine.prune(plain_spec), engine.prune(fixed_spec)

    assert fixed.sparsity == plain.sparsity and fixed.pruned["nonzero_params"] == plain.pruned["nonzero_params"]
    assert any("BatchNorm statistics re-estimated on 256 training samples" in n for n in fixed.notes)
    assert not any("BatchNorm" in n for n in plain.notes)
    saved = {w.name: w.numpy() for w in keras.models.load_model(engine.save(fixed_spec, tmp_path / "f.keras")).weights}
    unsaved = {w.name: w.numpy() for w in keras.models.load_model(engine.save(plain_spec, tmp_path / "p.keras")).weights}
    moving = [name for name in saved if "moving_mean" in name]
    assert moving and not np.allclose(saved[moving[0]], unsaved[moving[0]])  # only the statistics moved
    assert all(np.array_equal(saved[n], unsaved[n]) for n in saved if "moving" not in n)
    assert weights_checksum(bench.current_weights()) == base  # the working model is back at base
