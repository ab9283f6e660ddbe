"""A tf_keras model's config read as a functional graph: the layers, and the tensors each call reads.

Structured surgery traces channels over it; a Sequential model becomes a chain first.
"""
from __future__ import annotations

import copy

from .._keras import keras
from ..errors import BadInput


def functional_config(model: keras.Model) -> dict:
    """The model's config as a functional graph (a Sequential becomes a chain)."""
    config = copy.deepcopy(model.get_config())
    if "input_layers" in config:
        return config
    if not isinstance(model, keras.Sequential):
        raise BadInput(f"{model.name} is a subclassed model: structured pruning needs a Sequential or functional model")
    layers = config["layers"]
    if not layers or layers[0]["class_name"] != "InputLayer":
        layers.insert(0, {"class_name": "InputLayer", "config": {
            "batch_input_shape": tuple(model.input_shape), "dtype": "float32", "name": f"{model.name}_input"}})
    previous = None
    for entry in layers:
        entry["name"] = entry["config"]["name"]
        entry["inbound_nodes"] = [[[previous, 0, 0, {}]]] if previous else []
        previous = entry["name"]
    return {"name": config["name"], "layers": layers,
            "input_layers": [[layers[0]["name"], 0, 0]], "output_layers": [[previous, 0, 0]]}


def node_refs(node) -> list:
    """The tensors one call reads: [[name, node, tensor, kwargs], ...]. A TF-op layer's call is one
    ref whose kwargs may name more tensors (`x + y`: y is ["y_layer", 0, 0])."""
    if not node:
        return []
    if isinstance(node, dict):  # newer config format: not produced by tf_keras 2.x
        raise BadInput("the model's config uses an unsupported format for structured pruning")
    if isinstance(node[0], str):
        node = [node]
    refs = []
    for ref in node:
        refs.append(ref)
        if len(ref) > 3:
            refs += tensor_refs(ref[3])
    return refs


def tensor_refs(value) -> list:
    if isinstance(value, dict):
        return [r for v in value.values() for r in tensor_refs(v)]
    if isinstance(value, (list, tuple)):
        if len(value) == 3 and isinstance(value[0], str) and all(isinstance(v, int) for v in value[1:]):
            return [list(value)]
        return [r for v in value for r in tensor_refs(v)]
    return []
