"""Which weights of a model can be pruned, as a plain table, and where they sit.

Like tfmot's prune registry: layer type -> weight attributes. Biases and BatchNorm
parameters are never pruned.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._keras import keras

L = keras.layers

# Layer type -> the attributes (on the layer, or on its RNN cell) whose values are pruned; as in
# tfmot's registry, a separable conv's pointwise kernel only (its depthwise kernel is tiny).
PRUNABLE_WEIGHTS: dict[type, tuple[str, ...]] = {
    L.Dense: ("kernel",),
    L.Conv1D: ("kernel",),
    L.Conv2D: ("kernel",),
    L.Conv3D: ("kernel",),
    L.SeparableConv1D: ("pointwise_kernel",),
    L.SeparableConv2D: ("pointwise_kernel",),
    L.LSTM: ("kernel", "recurrent_kernel"),
    L.GRU: ("kernel", "recurrent_kernel"),
    L.SimpleRNN: ("kernel", "recurrent_kernel"),
    L.Embedding: ("embeddings",),
}

_WHY_NOT: dict[type, str] = {
    L.BatchNormalization: "BatchNorm scale/shift are never pruned",
    L.LayerNormalization: "normalisation parameters are never pruned",
}


@dataclass(frozen=True)
class PrunableWeight:
    """One prunable tensor: `layer/attr`, its index in `model.get_weights()`, its shape."""

    key: str
    layer: str
    layer_type: str
    attr: str
    index: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def iter_layers(model: keras.Model):
    """Every leaf layer in network order, descending into nested models and Bidirectional
    wrappers (their forward and backward RNNs are pruned as two layers)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        elif isinstance(layer, L.Bidirectional):
            yield layer.forward_layer
            yield layer.backward_layer
        else:
            yield layer


def _prunable_attrs(layer) -> tuple[str, ...]:
    for layer_type, attrs in PRUNABLE_WEIGHTS.items():
        # exact type match first-class; subclasses (e.g. Conv2DTranspose) are listed apart
        if type(layer) is layer_type:
            return attrs
    return ()


def _variable(layer, attr: str):
    owner = layer.cell if hasattr(layer, "cell") else layer
    return getattr(owner, attr)


def find_prunable(model: keras.Model) -> list[PrunableWeight]:
    """The prunable tensors of `model`, in network order."""
    position = {id(v): i for i, v in enumerate(model.weights)}
    found = []
    for layer in iter_layers(model):
        for attr in _prunable_attrs(layer):
            variable = _variable(layer, attr)
            found.append(
                PrunableWeight(
                    key=f"{layer.name}/{attr}",
                    layer=layer.name,
                    layer_type=type(layer).__name__,
                    attr=attr,
                    index=position[id(variable)],
                    shape=tuple(int(d) for d in variable.shape),
                )
            )
    return found


def why_not_prunable(layer) -> str:
    if _prunable_attrs(layer):
        names = " and ".join(a.replace("_", " ") for a in _prunable_attrs(layer))
        return f"{names} pruned; biases kept"
    if not layer.weights:
        return "no weights"
    for layer_type, reason in _WHY_NOT.items():
        if isinstance(layer, layer_type):
            return reason
    return f"{type(layer).__name__} layers are not supported for pruning"


def layer_table(model: keras.Model) -> pd.DataFrame:
    """name, type, output shape, params, prunable and why, in network order."""
    rows = []
    for layer in iter_layers(model):
        try:
            shape = layer.output_shape
        except (AttributeError, RuntimeError):
            shape = None
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": str(shape).replace("None", "batch") if shape is not None else "",
                "params": int(layer.count_params()) if layer.built else 0,
                "prunable": bool(_prunable_attrs(layer)),
                "reason": why_not_prunable(layer),
            }
        )
    return pd.DataFrame(rows)
