"""The Keras 3 bridge: Keras 3 files in as equivalent tf_keras models, pruned models out as Keras 3.

The only module that imports Keras 3 (`import keras`, lazily, in the process that runs models).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._keras import keras as tfk
from ..errors import BadInput
from .layer_configs import graph_of, translate_layer
from .op_forms import graph_form, library_objects
from .safety import default_out_format

# Outputs of the rebuilt model may differ from Keras 3's by float rounding only: anything above
# this (relative to the largest output, at least 1) means the rebuild is not the same model. One bound
# both ways: float32 rounding grows through depth (a pruned MobileNetV3Small with re-estimated
# BatchNorm statistics goes out within 2.6e-5, the first differing layer within 1.4e-6).
IMPORT_TOLERANCE = 1e-4
EXPORT_TOLERANCE = IMPORT_TOLERANCE
RANDOM_INPUTS = 64  # inputs compared when no dataset is at hand (seeded)
BATCH = 256


def keras3() -> Any:
    """Keras 3 itself (`import keras` with TF_USE_LEGACY_KERAS set still gives Keras 3)."""
    import keras

    return keras


@dataclass(frozen=True)
class Keras3Import:
    """How a Keras 3 file became a tf_keras model, and how closely the two agree."""

    keras_version: str
    max_abs_diff: float
    samples: int
    source: str  # "test inputs" or "random inputs"

    def describe(self) -> str:
        return (f"imported from Keras {self.keras_version}: outputs equal within {self.max_abs_diff:.2g} "
                f"on {self.samples:,} {self.source}")


@dataclass(frozen=True)
class Keras3Export:
    """A written Keras 3 file and how closely it follows the tf_keras model."""

    path: str
    keras_version: str
    max_abs_diff: float
    samples: int


# -- in -------------------------------------------------------------------------------------
def import_keras3(path: str | Path, name: str, x: Optional[np.ndarray] = None,
                  tolerance: float = IMPORT_TOLERANCE) -> tuple[Any, Keras3Import]:
    """A checked Keras 3 file (safety.inspect_model_file first) as an equivalent tf_keras model.

    Keras 3 loads it in safe mode (its classes are all built-ins, the check said so), the
    functional graph is rebuilt layer by layer in tf_keras, the weights copied, and the outputs
    of both compared on `x`; above `tolerance` the file is refused with the measured difference.
    """
    k = keras3()
    try:
        source = k.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for unreadable files
        raise BadInput(f"cannot load {name} with Keras {k.__version__} ({_first_line(exc)}): "
                       "save it again with model.save('model.keras')") from None
    model = to_tf_keras(source, name)
    inputs, kind = _inputs_for(model, x)
    diff = _max_diff(_predict(source, inputs), _predict(model, inputs))
    if not diff <= tolerance:
        raise BadInput(f"{name} rebuilt in tf_keras gives outputs up to {diff:.3g} away from Keras "
                       f"{k.__version__}'s (tolerance {tolerance:g}): report the model's layers to PruneScope")
    return model, Keras3Import(k.__version__, diff, len(inputs), kind)


def to_tf_keras(source: Any, name: str = "the model") -> Any:
    """The same graph and weights as a Keras 3 model, built from tf_keras layers."""
    k = keras3()
    model = _rebuild(source.get_config(), _is_sequential(source, k), tfk, name, "tf_keras")
    _copy_weights(source, model, name)
    return model


# -- out ------------------------------------------------------------------------------------
def to_keras3(model: Any, name: str = "the model") -> Any:
    """The same graph and weights as a tf_keras model, built from Keras 3 layers."""
    k = keras3()
    rebuilt = _rebuild(model.get_config(), isinstance(model, tfk.Sequential), k, name, "Keras 3")
    _copy_weights(model, rebuilt, name)
    return rebuilt


def save_keras3(model: Any, out: str | Path, x: Optional[np.ndarray] = None,
                tolerance: float = EXPORT_TOLERANCE) -> Keras3Export:
    """Write a tf_keras model as a Keras 3 `.keras` file, proven: the written file is loaded
    back with Keras 3 (safe mode, no custom objects) and its outputs compared on `x`."""
    k = keras3()
    out = Path(out)
    if out.is_dir():
        raise BadInput(f"{out} is a folder: give a file name to write the model to")
    if out.suffix.lower() != ".keras":
        raise BadInput(f"{out.name}: a Keras 3 model is written as .keras: name the file model.keras")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".keras", dir=out.parent)
    os.close(fd)
    try:
        to_keras3(model, out.name).save(tmp)
        written = k.saving.load_model(tmp, compile=False, safe_mode=True)
        inputs, _ = _inputs_for(model, x)
        diff = _max_diff(_predict(model, inputs), _predict(written, inputs))
        if not diff <= tolerance:
            raise BadInput(f"the Keras 3 copy of the model gives outputs up to {diff:.3g} away from PruneScope's "
                           f"(tolerance {tolerance:g}): export it with --format keras instead")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return Keras3Export(str(out), k.__version__, diff, len(inputs))


def write_model(source: str | Path, out: str | Path, out_format: str, x: Optional[np.ndarray] = None) -> Path:
    """Write PruneScope's saved model (a tf_keras `.keras`) to `out` as `keras2` (a copy) or
    `keras3` (converted and proven); what `prune --out` and the exporters call."""
    if out_format == "keras2":
        shutil.copyfile(source, out)
    elif out_format == "keras3":
        save_keras3(tfk.models.load_model(source, compile=False, custom_objects=library_objects()), out, x)
    else:
        raise BadInput(f"unknown model format {out_format!r}: choose keras2 or keras3")
    return Path(out)


def write_pruned(source: str | Path, out: str | Path, spec: Any, out_format: Optional[str] = None) -> Path:
    """A run's pruned model (PruneScope's tf_keras file) written for the user: in `out_format`, or
    the format the spec's model came in; a Keras 3 file is proven on the spec's test inputs."""
    out_format = out_format or default_out_format(spec.model)
    x = None
    if out_format == "keras3":
        from .datasets import load_dataset

        x = load_dataset(spec.data).x_test
    return write_model(source, out, out_format, x)


# -- shared ---------------------------------------------------------------------------------
def _is_sequential(model: Any, k: Any) -> bool:
    return isinstance(model, k.Sequential)


def _rebuild(config: dict, sequential: bool, lib: Any, name: str, target: str) -> Any:
    """A model of `lib` (tf_keras or Keras 3) from a functional or Sequential config of the other."""
    graph = graph_of(config, sequential, name)

    def make(layer: dict) -> Any:
        if layer["class_name"] in ("Functional", "Sequential", "Model"):
            return _rebuild(layer["config"], layer["class_name"] == "Sequential", lib, name, target)
        form = graph_form(layer, lib, name, target)
        if isinstance(form, type):  # a library layer: its counterpart class, from the same config
            return translate_layer(layer, lib, name, target, form)
        return form if form is not None else translate_layer(layer, lib, name, target)

    if graph.sequential:
        _, shape, dtype = graph.inputs[0]
        made = [make(layer) for layer in graph.layers]
        if all(isinstance(m, lib.layers.Layer) for m in made):
            built = lib.Sequential(name=graph.name)
            built.add(lib.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype))
            for layer in made:
                built.add(layer)
            return built
        # a layer that became several (a hard activation): the same chain, as a functional model
        tensor = inputs = lib.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype)
        for layer in made:
            tensor = layer(tensor)
        return lib.Model(inputs, tensor, name=graph.name)
    tensors: dict[tuple[str, int], Any] = {}
    inputs = []
    for layer_name, shape, dtype in graph.inputs:
        tensor = lib.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype, name=layer_name)
        tensors[layer_name, 0] = tensor
        inputs.append(tensor)
    pending = [(layer, make(layer)) for layer in graph.layers]
    while pending:
        progressed, left = False, []
        for layer, built in pending:
            calls = layer["calls"]
            done = sum(1 for i in range(len(calls)) if (layer["name"], i) in tensors)
            while done < len(calls):
                resolved = _resolve(calls[done], tensors)
                if resolved is None:
                    break
                args, kwargs = resolved
                tensors[layer["name"], done] = built(*args, **kwargs)
                done += 1
                progressed = True
            if done < len(calls):
                left.append((layer, built))
        if not progressed:
            missing = ", ".join(layer["name"] for layer, _ in left[:3])
            raise BadInput(f"{name}'s graph cannot be rebuilt in {target} (layers {missing} wait on inputs that "
                           "never come): save the model again")
        pending = left
    outputs = [_pick(tensors[ref[0], ref[1]], ref[2]) for ref in graph.outputs]
    # one input or output stays a tensor, not a list of one: Keras 3 warns about (and returns) lists
    return lib.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                     name=graph.name)


def _resolve(call: tuple[list, dict], tensors: dict) -> Optional[tuple[list, dict]]:
    """A call's args/kwargs with input references ("__ref__", layer, node, tensor) replaced by
    tensors; None while one of them is not built yet."""
    missing = []

    def sub(value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 4 and value[0] == "__ref__":
            key = (value[1], value[2])
            if key not in tensors:
                missing.append(key)
                return None
            return _pick(tensors[key], value[3])
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    args, kwargs = sub(call[0]), sub(call[1])
    return None if missing else (args, kwargs)


def _pick(output: Any, index: int) -> Any:
    return output[index] if isinstance(output, (list, tuple)) else output


def _leaf_layers(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if hasattr(layer, "layers") and not hasattr(layer, "cell"):  # a nested model, not an RNN
            out += _leaf_layers(layer, path + "/")
        else:
            out.append((path, layer))
    return out


def _copy_weights(source: Any, target: Any, name: str) -> None:
    """Weights layer by layer, by name: both libraries keep one order of variables per layer."""
    targets = dict(_leaf_layers(target))
    for path, layer in _leaf_layers(source):
        weights = layer.get_weights()
        if not weights:
            continue
        other = targets.get(path)
        if other is None:
            raise BadInput(f"layer {path} of {name} has no counterpart in the rebuilt model: save the model again")
        shapes = [tuple(w.shape) for w in other.get_weights()]
        if shapes != [tuple(w.shape) for w in weights]:
            raise BadInput(f"layer {path} of {name} holds weights shaped {[tuple(w.shape) for w in weights]}, "
                           f"its rebuild {shapes}: report the layer to PruneScope")
        other.set_weights(weights)


def _inputs_for(model: Any, x: Optional[np.ndarray]) -> tuple[np.ndarray, str]:
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if x is not None and shape is not None and len(x) and len(x.shape) == len(shape) + 1 and all(
            s is None or s == d for s, d in zip(shape, x.shape[1:])):
        return np.asarray(x, dtype=np.float32), "test inputs"
    if shape is None or any(s is None for s in shape):
        raise BadInput("the model's inputs have no fixed shape to compare outputs on: save it with a fixed "
                       "input shape (keras.Input(shape=...))")
    return np.random.default_rng(0).normal(0.0, 1.0, (RANDOM_INPUTS,) + shape).astype(np.float32), "random inputs"


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    parts = [np.asarray(model(x[i : i + BATCH], training=False), dtype=np.float64) for i in range(0, len(x), BATCH)]
    return np.concatenate(parts)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(a).max()))) if a.size else 0.0


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


