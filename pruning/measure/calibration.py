"""BatchNorm statistics re-estimated from data: after short training and after surgery.

Moving averages lag behind the weights (momentum 0.99 needs hundreds of steps), and
removing channels shifts every later layer's inputs; both make evaluation collapse.
"""
from __future__ import annotations

import numpy as np

from .._keras import keras, tf
from ..core.prunable import iter_layers
from ..model.datasets import Dataset

BATCH = 64
BN_RECALIBRATION_SAMPLES = 1024


def recalibrate_batchnorm(model: keras.Model, ds: Dataset, seed: int,
                          samples: int = BN_RECALIBRATION_SAMPLES) -> int:
    """Replace every BatchNorm's moving mean/variance by the average of batch statistics
    over up to `samples` training samples; returns how many were used (0: nothing to do).

    Momentum i/(i+1) at batch i makes the moving value the running mean of the batches,
    so the old statistics are fully replaced. Only BatchNorm statistics change.
    """
    bns = [layer for layer in iter_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns or not ds.has_train:
        return 0
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(ds.x_train), min(samples, len(ds.x_train)), replace=False)
    x = ds.x_train[np.sort(pick)]
    momenta = [bn.momentum for bn in bns]
    try:
        for i, begin in enumerate(range(0, len(x), BATCH)):
            for bn in bns:
                bn.momentum = i / (i + 1)  # read at call time in eager mode
            model(tf.constant(x[begin : begin + BATCH]), training=True)
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
    return len(x)
