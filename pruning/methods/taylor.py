"""First-order Taylor saliency: |w * dL/dw|, the loss change if w were set to zero.

Saliency is taken per minibatch of training data and averaged, in inference mode.
"""
from __future__ import annotations

import numpy as np

from .base import Method, PruneRequest, scored
from .data import loss_for, training_sample

SAMPLES = 512
BATCH = 64


def taylor_scores(request: PruneRequest) -> dict[str, np.ndarray]:
    """Mean over minibatches of |w * g_batch|.

    Averaging the gradients first would cancel them out at a trained minimum, where the
    full-data gradient is ~0 and its ranking is noise (Molchanov et al. 2019 accumulate
    per minibatch for the same reason). Inference mode: BatchNorm statistics are read,
    never updated.
    """
    from .._keras import tf
    from ..core.prunable import find_prunable

    model = request.model
    x, y = training_sample(request.data, "taylor", SAMPLES, request.seed)
    loss_fn, as_labels = loss_for(model, x, request.data)
    y = as_labels(y)
    selected = [pw for pw in find_prunable(model) if pw.key in request.weights]
    variables = [model.weights[pw.index] for pw in selected]
    total = [np.zeros(v.shape, dtype=np.float64) for v in variables]
    batches = range(0, len(x), BATCH)
    for start in batches:
        xb, yb = tf.constant(x[start : start + BATCH]), tf.constant(y[start : start + BATCH])
        with tf.GradientTape() as tape:
            tape.watch(variables)  # frozen (non-trainable) layers are not watched by default
            loss = loss_fn(yb, model(xb, training=False))
        for acc, grad, pw in zip(total, tape.gradient(loss, variables), selected):
            # an Embedding table's gradient is IndexedSlices (only the looked-up rows): made dense
            # here, rows never looked up get a zero gradient and so the lowest saliency
            acc += np.abs(request.weights[pw.key] * tf.convert_to_tensor(grad).numpy())
    return {pw.key: acc / len(batches) for pw, acc in zip(selected, total)}


METHODS = (
    Method(
        name="taylor",
        description="First-order Taylor saliency |w * dL/dw| on a few batches of training data: "
                    "remove the weights the loss needs least.",
        granularity="unstructured",
        needs=("data", "gradients"),
        prune=scored(taylor_scores),
    ),
)
