"""Adaptive BatchNorm after structured surgery: moving statistics become the data's, nothing else moves."""
from __future__ import annotations

import numpy as np
import pytest

from pruning.datasets import Dataset
from pruning.calibration import recalibrate_batchnorm


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
