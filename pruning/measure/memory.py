"""Inference memory of a Keras model without converting it (DESIGN §5 `memory_bytes`): the weights as
held in memory plus the peak activations of one sample, read off the functional graph.

Cheap (a config walk, no TFLite, no call): what the Prune page and sweeps measure on every point.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._keras import keras
from ..core.graph_config import functional_config, node_refs
from ..errors import BadInput

# Layers that are the identity at inference: their output is their input, no new buffer.
IDENTITY_LAYERS = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                   "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")


def _bytes(shape, dtype: str = "float32") -> int:
    """Bytes of one sample of a tensor of `shape` (batch dimension dropped; an unknown size counts 1)."""
    dims = [1 if d is None else int(d) for d in tuple(shape)[1:]]
    return int(np.prod(dims, dtype=np.int64)) * np.dtype(dtype).itemsize


def _outputs(layer, node: int) -> list:
    """The symbolic outputs of call `node` of `layer`, as a list."""
    try:
        outputs = layer.get_output_at(node)
    except (ValueError, RuntimeError, IndexError):  # a config node the live layer does not number alike
        outputs = layer.output
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def activation_bytes(model: keras.Model) -> int:
    """Peak bytes of live activations of one sample (batch 1) while `model` runs its layers in order.

    A tensor is live from the layer that makes it (the input: from the start) to the last
    layer that reads it (a model output: to the end); the peak is the largest sum of live
    tensors at any layer, inputs and output of that layer included. Identity layers at
    inference (IDENTITY_LAYERS) make no buffer. A nested model counts its own peak at its step,
    beside the outer tensors live then. The same rule as `deploy.tflite_memory` over TFLite's
    ops; Keras runs unfused layers (a BatchNormalization, an Activation is its own tensor), so
    this is at least the TFLite figure of the same model.

    >>> m = keras.Sequential([keras.layers.Input((5,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    >>> activation_bytes(m)  # at the first Dense: its input (5 floats) and output (3)
    32
    """
    config = functional_config(model)
    layers = config["layers"]
    alias: dict[tuple, tuple] = {}  # an identity layer's output -> the tensor it passes on
    made: dict[tuple, int] = {}
    size: dict[tuple, int] = {}
    last: dict[tuple, int] = {}
    inner: dict[int, int] = {}  # step -> a nested model's own peak

    def resolve(ref) -> tuple:
        key = (ref[0], int(ref[1]), int(ref[2]))
        while key in alias:
            key = alias[key]
        return key

    for step, entry in enumerate(layers):
        name = entry.get("name", entry["config"]["name"])
        if step == 0 and isinstance(model, keras.Sequential) and entry["class_name"] == "InputLayer":
            # functional_config's chain starts with an input layer a Sequential may not hold
            made[(name, 0, 0)], size[(name, 0, 0)] = step, _bytes(model.input_shape)
            continue
        layer = model.get_layer(name)
        for node, refs in enumerate(entry.get("inbound_nodes") or [[]]):
            reads = [resolve(r) for r in node_refs(refs)]
            for key in reads:
                last[key] = step
            for t, out in enumerate(_outputs(layer, node)):
                key = (name, node, t)
                if entry["class_name"] in IDENTITY_LAYERS and reads:
                    alias[key] = reads[0]
                    continue
                made[key], size[key] = step, _bytes(out.shape, out.dtype.name)
            if isinstance(layer, keras.Model):
                inner[step] = max(inner.get(step, 0), activation_bytes(layer))
    end = len(layers) - 1
    for ref in config["output_layers"]:
        last[resolve(ref)] = end
    spans = [(made[k], last.get(k, made[k]), size[k]) for k in made]
    peak = 0
    for step in range(len(layers)):
        live = sum(b for start, stop, b in spans if start <= step <= stop)
        if step in inner:  # its inputs and outputs are inside its own peak
            own = sum(b for (start, stop, b) in spans if stop == step or start == step)
            live += inner[step] - own
        peak = max(peak, live)
    return int(peak)


def graph_activation_bytes(model: keras.Model) -> Optional[int]:
    """`activation_bytes`, or None for a model with no graph to read (a subclassed one): its memory
    is then not measured rather than its prune refused."""
    try:
        return activation_bytes(model)
    except BadInput:
        return None


def weight_bytes(weights: Sequence[np.ndarray]) -> int:
    """Bytes of every weight tensor as held in memory (zeros of a mask included: kernels stay dense)."""
    return int(sum(np.asarray(w).nbytes for w in weights))


def memory_metrics(weights: Sequence[np.ndarray], activations: Optional[int]) -> dict[str, float]:
    """`activation_bytes` and `memory_bytes` (weights as held + peak activations of one sample);
    both NaN where the activations could not be read (`graph_activation_bytes` gave None)."""
    if activations is None:
        return {"activation_bytes": float("nan"), "memory_bytes": float("nan")}
    return {"activation_bytes": int(activations), "memory_bytes": weight_bytes(weights) + int(activations)}
