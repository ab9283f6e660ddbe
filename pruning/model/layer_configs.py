"""Layer configs and graphs read in one Keras and rebuilt in the other (tf_keras <-> Keras 3).

Pure config work for the bridge (keras3.py): the two graph layouts read into one, and each
layer's config translated to the other library's class, key by key.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from ..errors import BadInput

MODEL_CLASSES = ("Functional", "Sequential", "Model")

# Keys one library writes and the other lacks, safe to drop whatever their value: they choose a
# kernel implementation or a tracing mode, never the numbers a layer computes.
DROPPABLE = frozenset({"implementation", "use_cudnn", "dynamic", "autocast", "optional"})


def _single_axis(config: dict) -> dict:
    """tf_keras writes BatchNormalization's axis as a list ([3]); Keras 3 takes one int."""
    axis = config.get("axis")
    if isinstance(axis, list) and len(axis) == 1:
        return {**config, "axis": axis[0]}
    return config


def _ungrouped_depthwise(config: dict) -> dict:
    """tf_keras' DepthwiseConv2D inherits Conv2D's `groups` (always 1 there); Keras 3's has none."""
    if config.get("groups") == 1:
        return {k: v for k, v in config.items() if k != "groups"}
    return config


def _separable(config: dict) -> dict:
    """tf_keras' SeparableConv*D also write Conv's kernel_* options, which they never use (their kernels
    are depthwise_* and pointwise_*); Keras 3's take none of them."""
    unused = {"kernel_initializer", "kernel_regularizer", "kernel_constraint"}
    return {k: v for k, v in _ungrouped_depthwise(config).items() if k not in unused}


# (target library, class) -> config rewrite where the two libraries spell an option differently.
CONFIG_FIXES = {
    ("Keras 3", "BatchNormalization"): _single_axis,
    ("Keras 3", "DepthwiseConv2D"): _ungrouped_depthwise,
    ("Keras 3", "SeparableConv1D"): _separable,
    ("Keras 3", "SeparableConv2D"): _separable,
}

OBJECT_KEYS = (("_initializer", "initializers"), ("_regularizer", "regularizers"), ("_constraint", "constraints"))


@dataclass(frozen=True)
class Graph:
    """A model config read into one layout: input layers, the other layers with their calls
    (args, kwargs holding ("__ref__", layer, node, tensor) references), and the outputs."""

    name: str
    sequential: bool
    inputs: list  # (layer name, batch shape, dtype)
    layers: list  # {"name", "class_name", "config", "calls": [(args, kwargs)]}
    outputs: list  # (layer, node, tensor)
    outputs_nested: bool


def graph_of(config: dict, sequential: bool, name: str) -> Graph:
    """Read a Keras 2 or Keras 3 Functional/Sequential config (`get_config()`) into a Graph."""
    layers = [layer for layer in config.get("layers", []) if isinstance(layer, dict)]
    model_name = str(config.get("name") or "model")
    if sequential:
        shape = config.get("build_input_shape")
        body = []
        for layer in layers:
            if layer.get("class_name") == "InputLayer":
                shape = _batch_shape(layer.get("config", {}))
            else:
                shape = shape or _batch_shape(layer.get("config", {}))
                body.append({**layer, "name": layer.get("config", {}).get("name"), "calls": []})
        if not shape:
            raise BadInput(f"{name} is a Sequential model without an input shape: build it with keras.Input "
                           "and save it again")
        return Graph(model_name, True, [(None, _shape(shape), "float32")], body, [], False)
    known = {layer.get("name") for layer in layers}
    inputs, body = [], []
    for layer in layers:
        if layer.get("class_name") == "InputLayer":
            cfg = layer.get("config", {})
            inputs.append((layer["name"], _shape(_batch_shape(cfg)), _dtype_name(cfg.get("dtype")) or "float32"))
            continue
        calls = [_read_node(node, known) for node in layer.get("inbound_nodes", [])]
        body.append({**layer, "calls": calls})
    outputs, nested = _refs(config.get("output_layers"))
    models = {layer["name"] for layer in body if layer.get("class_name") in MODEL_CLASSES}
    if models:  # tf_keras numbers a nested model's calls after its own internal node: count from its first
        refs = [r for layer in body for call in layer["calls"] for r in _ref_list(call)] + [("__ref__", *o) for o in outputs]
        base = {m: min(r[2] for r in refs if r[1] == m) for m in models if any(r[1] == m for r in refs)}
        body = [{**layer, "calls": [_renumber(call, base) for call in layer["calls"]]} for layer in body]
        outputs = [(o[0], o[1] - base.get(o[0], 0), o[2]) for o in outputs]
    return Graph(model_name, False, inputs, body, outputs, nested)


def _ref_list(value: Any) -> list:
    if isinstance(value, tuple) and len(value) == 4 and value[0] == "__ref__":
        return [value]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _ref_list(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _ref_list(v)]
    return []


def _renumber(value: Any, base: dict) -> Any:
    if isinstance(value, tuple) and len(value) == 4 and value[0] == "__ref__":
        return ("__ref__", value[1], value[2] - base.get(value[1], 0), value[3])
    if isinstance(value, tuple):
        return tuple(_renumber(v, base) for v in value)
    if isinstance(value, list):
        return [_renumber(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _renumber(v, base) for k, v in value.items()}
    return value


def _batch_shape(cfg: dict) -> Any:
    return cfg.get("batch_shape") or cfg.get("batch_input_shape")


def _shape(shape: Any) -> tuple:
    return tuple(None if s is None else int(s) for s in shape)


def _refs(value: Any) -> tuple[list, bool]:
    """input_layers/output_layers: one [name, node, tensor] or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [tuple(value)], False
    return [tuple(v) for v in value or []], True


def _read_node(node: Any, known: set) -> tuple[list, dict]:
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        kwargs = {k: _keras3_value(v) for k, v in (node.get("kwargs") or {}).items() if v is not None}
        return [_keras3_value(a) for a in node.get("args", [])], kwargs
    # Keras 2: [[layer, node, tensor, kwargs], ...]; one entry is one tensor, several a list
    entries = [node] if node and isinstance(node[0], str) else list(node)  # TF-op layers keep one flat entry
    refs = [("__ref__", e[0], e[1], e[2]) for e in entries]
    kwargs = dict(entries[0][3]) if entries and len(entries[0]) > 3 and entries[0][3] else {}
    kwargs = {k: _keras2_kwarg(v, known) for k, v in kwargs.items() if v is not None}
    return ([refs[0]] if len(refs) == 1 else [refs]), kwargs


def _keras3_value(value: Any) -> Any:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        layer, node, tensor = value["config"]["keras_history"]
        return ("__ref__", layer, node, tensor)
    if isinstance(value, list):
        return [_keras3_value(v) for v in value]
    return value


def _keras2_kwarg(value: Any, known: set) -> Any:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[0] in known:
        return ("__ref__", value[0], value[1], value[2])
    return value


# -- one layer ------------------------------------------------------------------------------
def translate_layer(layer: dict, lib: Any, name: str, target: str, target_cls: Any = None) -> Any:
    """A layer of `lib` from the other library's serialized layer: same class name (or `target_cls`,
    a library layer's counterpart), the config's objects rewritten, keys the target lacks dropped
    only where they cannot change the output."""
    cls = layer["class_name"]
    where = layer.get("name") or layer.get("config", {}).get("name") or cls
    if cls in ("TFOpLambda", "SlicingOpLambda"):
        function = layer.get("config", {}).get("function")
        raise BadInput(f"layer {where} of {name} is a TensorFlow op ({function}), which {target} cannot load: "
                       "build the model with Keras layers (e.g. layers.Add instead of x + y) or export as keras2")
    target_cls = target_cls or getattr(lib.layers, cls, None)
    if not inspect.isclass(target_cls):
        raise BadInput(f"layer {where} of {name} is a {cls}, which {target} does not define: "
                       "export it as keras2 or use built-in layers")
    # the fix first: it removes what the target would otherwise refuse as unknown
    config = CONFIG_FIXES.get((target, cls), lambda c: c)(_objects(layer.get("config", {}), lib, where, name, target))
    config = _accepted(target_cls, config, where, name, target)
    try:
        return target_cls.from_config(config)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"layer {where} of {name} ({cls}) cannot be rebuilt in {target} "
                       f"({str(exc).strip().splitlines()[-1][:160]}): report the layer to PruneScope") from None


def _dtype_name(value: Any) -> Any:
    """Keras 3's DTypePolicy and tf_keras' Policy objects both reduce to their name."""
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        return value["config"].get("name")
    return value


def _objects(config: dict, lib: Any, where: str, name: str, target: str) -> dict:
    out = {}
    for key, value in config.items():
        if key == "dtype":
            out[key] = _dtype_name(value)
        elif isinstance(value, dict) and "class_name" in value and isinstance(value.get("config"), dict):
            out[key] = _object(key, value, lib, where, name, target)
        elif key in ("batch_shape", "batch_input_shape", "input_shape"):
            continue  # the rebuild makes its own Input: a shape on a layer would clash with it
        else:
            out[key] = value
    return out


def _object(key: str, value: dict, lib: Any, where: str, name: str, target: str) -> dict:
    """An initializer, regularizer or constraint as {"class_name", "config"} for the target."""
    cls = value["class_name"]
    module = next((getattr(lib, m) for suffix, m in OBJECT_KEYS if key.endswith(suffix)), None)
    target_cls = getattr(module, cls, None) if module is not None else None
    if not inspect.isclass(target_cls):
        raise BadInput(f"layer {where} of {name} uses {cls} for {key}, which {target} does not define: "
                       "use a built-in one and save again")
    return {"class_name": cls, "config": _accepted(target_cls, value["config"], where, name, target)}


def _accepted(target_cls: type, config: dict, where: str, name: str, target: str) -> dict:
    """The config's keys the target class takes; an unknown key is dropped only when it is
    DROPPABLE or holds None/False (an option left off), otherwise the layer is refused."""
    params: set[str] = set()
    for klass in inspect.getmro(target_cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params |= {p.name for p in inspect.signature(init).parameters.values()
                       if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        except (TypeError, ValueError):
            continue
    params |= {"name", "trainable", "dtype"}
    kept = {}
    for key, value in config.items():
        if key in params:
            kept[key] = value
        elif key not in DROPPABLE and value not in (None, False, [], {}):
            raise BadInput(f"layer {where} of {name} sets {key}={str(value)[:60]}, which {target}'s "
                           f"{target_cls.__name__} lacks: rebuild the layer without it")
    return kept
