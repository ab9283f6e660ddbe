"""Training samples and the loss of a model, for the methods that read data or gradients.

Not a method module (no METHODS); TensorFlow loads only when a method runs.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import BadInput


def training_sample(data, method: str, limit: Optional[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` (None: all) training samples, picked with `seed`; test data never
    steers pruning, so the reported accuracy stays an honest held-out figure."""
    if data is None or not data.has_train:
        name = getattr(data, "name", "this dataset")
        raise BadInput(f"{method} needs training data and {name} has no x_train/y_train: add them or pick another method")
    if limit is None or len(data.x_train) <= limit:
        return data.x_train, data.y_train
    pick = np.sort(np.random.default_rng(seed).choice(len(data.x_train), limit, replace=False))
    return data.x_train[pick], data.y_train[pick]


def loss_for(model, x: np.ndarray, data):
    """The loss of the model's task (DESIGN §5) on its outputs, and how it takes labels.

    (loss, labels as the loss takes them): cross-entropy on probabilities or logits for
    classes, binary cross-entropy for binary and multi-label heads, MSE for regression.
    """
    from ..measure.tasks import detect_head

    head = detect_head(model, data)
    outputs = model(x[:8], training=False).numpy()
    return head.keras_loss(outputs), head.training_labels
