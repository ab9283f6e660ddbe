"""APoZ (Hu et al. 2016): remove the filters/units whose ReLU outputs are most often zero.

The average percentage of zeros is measured on training data, over samples and positions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

from .base import Method, PruneRequest
from .channels import ranked
from .data import training_sample

if TYPE_CHECKING:
    from ..core.surgery import ChannelGroup

SAMPLES = 512
BATCH = 128


def apoz(request: PruneRequest, groups: Sequence[ChannelGroup]) -> dict[str, np.ndarray]:
    """ReLU layer -> fraction of its outputs that are zero, per channel, on training data."""
    from .._keras import keras, tf

    layers = sorted({name for g in groups for name in g.relu_outputs})
    if not layers:
        return {}
    model = request.model
    # reads the caller's layers through a second graph; inference mode, nothing is written
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
    x, _ = training_sample(request.data, "apoz", SAMPLES, request.seed)
    zeros = {name: 0.0 for name in layers}
    count = {name: 0 for name in layers}
    for start in range(0, len(x), BATCH):
        outputs = probe(tf.constant(x[start : start + BATCH]), training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for name, out in zip(layers, outputs):
            flat = out.numpy().reshape(-1, out.shape[-1])
            zeros[name] += (flat == 0).sum(axis=0)
            count[name] += flat.shape[0]
    return {name: zeros[name] / count[name] for name in layers}


def apoz_scores(request: PruneRequest, groups: Sequence[ChannelGroup]) -> list[Union[np.ndarray, str]]:
    fractions = apoz(request, groups)
    out: list[Union[np.ndarray, str]] = []
    for group in groups:
        if not group.relu_outputs:
            out.append("no ReLU on these channels, so APoZ is undefined")
            continue
        mean = np.mean([fractions[name] for name in group.relu_outputs], axis=0)
        out.append(1.0 - mean)  # most often zero = least useful
    return out


METHODS = (
    Method(
        name="apoz",
        description="Remove the Conv filters / Dense units whose ReLU outputs are most often zero on "
                    "training data (APoZ, Hu et al. 2016); sparsity = fraction removed per layer.",
        granularity="structured",
        needs=("data",),
        prune=ranked("apoz", ("conv", "dense"), apoz_scores),
        scopes=("layer",),
    ),
)
