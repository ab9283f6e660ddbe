"""Walks a model config against the allowlist: Keras 2 (tf_keras) and Keras 3 formats.

Pure JSON checks (never Keras, never an import of what a config names); each refusal is one line.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..errors import BadInput
from .allowlist import (
    ACTIVATION_KEYS,
    ACTIVATIONS,
    KERAS3_ACTIVATIONS,
    KERAS3_CODE_CLASSES,
    KERAS3_LIBRARY_LAYERS,
    KERAS3_LAYER_CLASSES,
    KERAS3_MODULES,
    KERAS3_OBJECT_CLASSES,
    LAYER_CLASSES,
    LIBRARY_LAYERS,
    MODEL_CLASSES,
    MODULES,
    OBJECT_CLASSES,
    TF_INITIALIZER_MODULES,
    TF_INITIALIZERS,
    TF_OP_FUNCTIONS,
)
from .op_forms import KERAS3_OPS

MAX_CONFIG_OBJECTS = 200_000

# How a legacy .h5 names the library's layers: the class, or the name it is registered under.
LIBRARY_NAMES = frozenset({cls for _, cls in LIBRARY_LAYERS} | set(LIBRARY_LAYERS.values()))

KERAS3_LIBRARY_NAMES = frozenset(cls for _, cls in KERAS3_LIBRARY_LAYERS)

CheckClass = Callable[[dict, str, str, dict], str]


def layer_name(obj: dict) -> Optional[str]:
    """The layer's own name in a serialized layer, if it has one."""
    config = obj.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return config["name"]
    return obj.get("name") if isinstance(obj.get("name"), str) else None


def check_model_config(config: Any, name: str) -> int:
    """A Keras 2 (tf_keras) config: every class on the allowlist, the root a Sequential or
    functional model; returns how many layers it has. Refusals name the layer."""
    return _check_root(config, name, _check_class, ACTIVATIONS)


def check_keras3_config(config: Any, name: str, version: str) -> int:
    """A Keras 3 config (`module`/`class_name`/`registered_name`, dtype-policy objects,
    `inbound_nodes` as args/kwargs): every class one the bridge rebuilds in tf_keras, no code.

    Returns how many layers it has. Refusals name the layer.
    """
    def check(obj: dict, file: str, where: str, counts: dict) -> str:
        return _check_class_keras3(obj, file, where, counts, version)

    return _check_root(config, name, check, KERAS3_ACTIVATIONS)


def _check_root(config: Any, name: str, check_class: CheckClass, activations: frozenset) -> int:
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise BadInput(f"{name} has no model config: save a Sequential or functional model with model.save")
    root = config["class_name"]
    if root not in MODEL_CLASSES or not _lists_layers(config):
        raise BadInput(f"{name} is a subclassed model ({root[:80]}), which cannot be loaded safely: rebuild it "
                       "as a Sequential or functional model and save it again")
    counts = {"objects": 0, "layers": 0}
    _walk(config, name, "model", counts, check_class, activations)
    return counts["layers"]


def _lists_layers(obj: dict) -> bool:
    config = obj.get("config")
    return isinstance(config, list) or (isinstance(config, dict) and isinstance(config.get("layers"), list))


def _walk(obj: Any, name: str, where: str, counts: dict[str, int], check_class: CheckClass, activations: frozenset,
          depth: int = 0) -> None:
    counts["objects"] += 1
    if counts["objects"] > MAX_CONFIG_OBJECTS or depth > 200:
        raise BadInput(f"{name}'s model config is too large or too deeply nested: save a simpler model")
    if isinstance(obj, list):
        for item in obj:
            _walk(item, name, where, counts, check_class, activations, depth + 1)
        return
    if not isinstance(obj, dict):
        return
    if "class_name" in obj:
        where = check_class(obj, name, where, counts)
    for key, value in obj.items():
        if key == "compile_config":  # never deserialized: models load with compile=False
            continue
        if key in ACTIVATION_KEYS and isinstance(value, str) and value not in activations:
            raise BadInput(f"layer {where} of {name} uses activation {value[:80]!r}, which is not a built-in "
                           "tf_keras activation: use a built-in one and save again")
        _walk(value, name, where, counts, check_class, activations, depth + 1)


def _check_class(obj: dict, name: str, where: str, counts: dict[str, int]) -> str:
    cls = obj["class_name"]
    if not isinstance(cls, str):
        raise BadInput(f"{name} has a malformed model config near layer {where}: save the model again")
    layer = layer_name(obj) or where
    module, registered = obj.get("module"), obj.get("registered_name")
    if (module, cls) in LIBRARY_LAYERS and registered in (None, LIBRARY_LAYERS[module, cls]):
        counts["layers"] += 1  # a layer tf_keras' own applications define
        return layer
    if module is None and cls in LIBRARY_NAMES and registered is None:
        counts["layers"] += 1  # the same in a legacy .h5, which names no module: the loader resolves
        return layer  # these names through PruneScope's own table (baselines.library_objects)
    if module in TF_INITIALIZER_MODULES and cls in TF_INITIALIZERS and registered in (None, cls):
        return where
    if registered is not None and registered != cls:
        raise BadInput(f"layer {layer} of {name} is a custom object ({str(registered)[:80]}): custom objects "
                       "are refused, rebuild the model with built-in Keras layers")
    if module is not None and module not in MODULES:
        raise BadInput(f"layer {layer} of {name} comes from the unknown module {str(module)[:80]!r}: "
                       "rebuild the model with built-in Keras layers")
    if cls == "Lambda":
        raise BadInput(f"layer {layer} of {name} is a Lambda layer, which runs arbitrary Python code: "
                       "replace it with built-in layers and save again")
    if cls in ("TFOpLambda", "SlicingOpLambda"):
        function = (obj.get("config") or {}).get("function") if isinstance(obj.get("config"), dict) else None
        if function not in TF_OP_FUNCTIONS:
            raise BadInput(f"layer {layer} of {name} calls the TensorFlow function {str(function)[:80]!r}, "
                           "which is not allowed: express it with built-in Keras layers")
        counts["layers"] += 1
        return layer
    if cls in MODEL_CLASSES:
        if not _lists_layers(obj):
            raise BadInput(f"layer {layer} of {name} is a subclassed model ({cls}): rebuild it as a "
                           "Sequential or functional model")
        return layer
    if cls in LAYER_CLASSES:
        counts["layers"] += 1
        return layer
    if cls in OBJECT_CLASSES:
        return where
    raise BadInput(f"layer {layer} of {name} uses {cls[:80]!r}, which is not a built-in tf_keras layer: "
                   "custom objects are refused, rebuild the model with built-in layers")


def _check_class_keras3(obj: dict, name: str, where: str, counts: dict[str, int], version: str) -> str:
    cls = obj["class_name"]
    if not isinstance(cls, str):
        raise BadInput(f"{name} has a malformed model config near layer {where}: save the model again")
    # objects (dtype policies, initializers) are named after the layer that holds them
    layer = where if cls in KERAS3_OBJECT_CLASSES or cls.endswith("DTypePolicy") else layer_name(obj) or where
    module, registered = obj.get("module"), obj.get("registered_name")
    if cls in KERAS3_CODE_CLASSES or registered in KERAS3_CODE_CLASSES:
        raise BadInput(f"layer {layer} of {name} holds a serialized Python function ({cls[:40]}), which would "
                       "run code: use built-in layers and activations and save again")
    if cls == "Lambda":
        raise BadInput(f"layer {layer} of {name} is a Lambda layer, which runs arbitrary Python code: "
                       "replace it with built-in layers and save again")
    if registered is not None and registered != cls:
        raise BadInput(f"layer {layer} of {name} is a custom object ({str(registered)[:80]}): custom objects "
                       "are refused, rebuild the model with built-in Keras layers")
    if (module, cls) in KERAS3_OPS or (module, cls) in KERAS3_LIBRARY_LAYERS:
        counts["layers"] += 1  # a keras.ops call, or a layer Keras 3's own applications define
        if "inbound_nodes" in obj:
            _check_inbound_nodes(obj["inbound_nodes"], layer, name, version)
        return layer
    if isinstance(module, str) and module.startswith("keras.src.ops."):
        raise BadInput(f"op {layer} of {name} is keras.ops' {cls[:60]}, which PruneScope does not translate to "
                       "tf_keras: express it with built-in Keras layers")
    if isinstance(module, str) and module.startswith("tf_keras."):
        raise BadInput(f"layer {layer} of {name} is a tf_keras class, but the file says Keras {version} saved it: "
                       "save the model again with the Keras that built it")
    if module is not None and module not in KERAS3_MODULES:
        raise BadInput(f"layer {layer} of {name} comes from the module {str(module)[:80]!r}, not a Keras layer "
                       "module: rebuild the model with built-in Keras layers")
    if "inbound_nodes" in obj:
        _check_inbound_nodes(obj["inbound_nodes"], layer, name, version)
    if cls == "__keras_tensor__":
        history = obj.get("config", {}).get("keras_history") if isinstance(obj.get("config"), dict) else None
        if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)
                and all(isinstance(i, int) and not isinstance(i, bool) for i in history[1:])):
            raise BadInput(f"layer {layer} of {name} has a malformed input reference: save the model again")
        return where
    if cls in MODEL_CLASSES:
        if not _lists_layers(obj):
            raise BadInput(f"layer {layer} of {name} is a subclassed model ({cls}): rebuild it as a "
                           "Sequential or functional model")
        return layer
    if cls in KERAS3_LAYER_CLASSES:
        counts["layers"] += 1
        return layer
    if cls in KERAS3_OBJECT_CLASSES:
        return where
    if module is None and cls in KERAS3_LIBRARY_NAMES:
        raise BadInput(f"layer {layer} of {name} is Keras 3's own {cls} in a legacy .h5, which names no module and "
                       "which Keras 3 itself cannot load back: save the model as .keras")
    raise BadInput(f"layer {layer} of {name} uses {cls[:80]!r}, which PruneScope cannot rebuild from Keras "
                   f"{version}: use built-in Keras layers (custom objects and keras.ops calls are refused)")


def _check_inbound_nodes(nodes: Any, layer: str, name: str, version: str) -> None:
    """Keras 3 writes each call as {"args": [...], "kwargs": {...}}; Keras 2's nested lists in a
    file that says Keras 3 mean the file was edited or mislabelled."""
    if not isinstance(nodes, list):
        raise BadInput(f"layer {layer} of {name} has malformed inbound_nodes: save the model again")
    for node in nodes:
        if isinstance(node, list):
            raise BadInput(f"layer {layer} of {name} has Keras 2 inbound_nodes, but the file says Keras {version} "
                           "saved it: save the model again with the Keras that built it")
        if not (isinstance(node, dict) and isinstance(node.get("args"), list)
                and isinstance(node.get("kwargs", {}), dict)):
            raise BadInput(f"layer {layer} of {name} has malformed inbound_nodes: save the model again")
