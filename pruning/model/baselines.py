"""Dense baseline models: zoo models trained once and kept on disk, or the user's file.

Trained zoo models live under `$PRUNESCOPE_HOME/baselines`, keyed by architecture,
dataset, epochs, seed and library versions, so a second start loads them in seconds.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .._keras import keras, tf
from ..errors import BadInput
from ..measure.calibration import recalibrate_batchnorm
from ..measure.metrics import save_model
from ..measure.tasks import detect_head
from ..paths import home  # noqa: F401  (re-exported: engine and others import it from here)
from ..specs import DataRef, ModelRef, ProgressFn
from .datasets import Dataset
from .op_forms import library_objects
from .safety import inspect_model_file
from .zoo import ZOO, imagenet_weights_path

TRAIN_BATCH = 64
CALIBRATION_SAMPLES = 4096
RECIPE = "r2"  # bump when the training recipe changes, so stored baselines are retrained


def _dataset_key(ref: DataRef) -> str:
    return f"npz-{ref.sha256[:12]}" if ref.is_file else ref.name


def baseline_path(model: ModelRef, data: DataRef, epochs: int, seed: int = 0) -> Path:
    versions = f"tf{tf.__version__}-tfk{keras.__version__}"
    return home() / "baselines" / f"{model.name}-{_dataset_key(data)}-e{epochs}-s{seed}-{RECIPE}-{versions}.keras"


class _EpochProgress(keras.callbacks.Callback):
    def __init__(self, epochs: int, on_progress: Optional[ProgressFn]):
        super().__init__()
        self.epochs, self.on_progress = epochs, on_progress

    def on_epoch_end(self, epoch, logs=None):
        if self.on_progress:
            acc = (logs or {}).get("accuracy", float("nan"))
            self.on_progress((epoch + 1) / self.epochs, f"training epoch {epoch + 1}/{self.epochs}: accuracy {acc:.3f}")


def check_compatible(model: keras.Model, dataset: Dataset) -> None:
    """The model must take the dataset's inputs, and its head and labels must make a task (DESIGN §5)."""
    expects = tuple(model.input_shape[1:])
    has = dataset.input_shape
    if len(expects) != len(has) or any(e is not None and e != h for e, h in zip(expects, has)):
        shown = tuple("any" if e is None else e for e in expects)
        raise BadInput(f"model expects {shown} inputs, the dataset has {has}: pick a matching dataset or model")
    if not isinstance(model.output_shape, tuple) or len(model.output_shape) != 2:
        raise BadInput(
            f"model outputs {model.output_shape}, not one score per class: pick a classifier with a single "
            "(batch, classes) output"
        )
    detect_head(model, dataset)  # a head that is no task PruneScope measures is refused here


def read_model_file(ref: ModelRef, x_test: Optional[np.ndarray] = None) -> tuple[keras.Model, Optional[str]]:
    """(tf_keras model, how it was imported or None) from a user's file, checked first.

    A Keras 3 file is rebuilt as tf_keras by the bridge and its outputs compared on `x_test`
    (the dataset's test inputs; seeded random inputs without them).
    """
    # Models are programs: refuse a hostile file before Keras parses a byte of it
    # (tf_keras runs a Lambda from an .h5 even in safe mode).
    info = inspect_model_file(ref.path, ref.name)
    if info.keras3:
        from .keras3 import import_keras3

        model, imported = import_keras3(ref.path, ref.name, x_test)
        return model, imported.describe()
    return load_model_file(ref, checked=True), None


def load_model_file(ref: ModelRef, checked: bool = False) -> keras.Model:
    """The tf_keras model in a user's file (a Keras 3 file through the bridge), checked first."""
    if not checked:
        info = inspect_model_file(ref.path, ref.name)
        if info.keras3:
            return read_model_file(ref)[0]
    try:
        model = keras.models.load_model(ref.path, compile=False, safe_mode=True, custom_objects=library_objects())
    except Exception as exc:  # Keras raises many types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"cannot load {ref.name} as a Keras model ({first[:200]}): save it with model.save('m.keras')") from None
    if not isinstance(model, keras.Model) or not model.built:
        raise BadInput(f"{ref.name} is not a built Keras model: save a Sequential or functional model")
    return model


def load_baseline(
    ref: ModelRef, data: DataRef, dataset: Dataset, seed: int = 0, on_progress: Optional[ProgressFn] = None
) -> tuple[keras.Model, str, str]:
    """(model, how its weights were obtained, path on disk); trains and stores zoo models once."""
    if ref.is_file:
        model, imported = read_model_file(ref, dataset.x_test)
        check_compatible(model, dataset)
        return model, f"your file {ref.name}" + (f", {imported}" if imported else ""), ref.path
    if ref.name not in ZOO:
        raise BadInput(f"unknown model {ref.name!r}: choose one of {', '.join(ZOO)} or a .keras/.h5 path")
    entry = ZOO[ref.name]
    epochs = entry.epochs if ref.epochs is None else ref.epochs
    path = baseline_path(ref, data, epochs, seed)
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        model = keras.models.load_model(path, compile=False, custom_objects=library_objects())
        return model, json.loads(meta_path.read_text())["description"], str(path)
    if dataset.targets != "classes":
        raise BadInput(f"{dataset.name} holds {'a 0/1 label matrix' if dataset.targets == 'matrix' else 'float targets'}, "
                       f"and the zoo's {ref.name} is a softmax classifier: upload your own model for this task")
    if not dataset.has_train:
        raise BadInput(f"{dataset.name} has no x_train/y_train, so {ref.name} cannot be trained: add them or upload a trained model")
    keras.utils.set_random_seed(seed)
    model = entry.build(dataset.input_shape, dataset.num_classes)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(
        dataset.x_train, dataset.y_train, batch_size=TRAIN_BATCH, epochs=epochs, verbose=0,
        callbacks=[_EpochProgress(epochs, on_progress)],
    )
    # short training leaves BatchNorm's moving averages behind the weights: set them from data
    calibrated = recalibrate_batchnorm(model, dataset, seed, samples=CALIBRATION_SAMPLES)
    seconds = time.perf_counter() - start
    imagenet = " from ImageNet weights" if ref.name == "resnet50" and imagenet_weights_path() else ""
    description = f"trained {epochs} epochs on {dataset.name}{imagenet} ({seconds:.0f} s, seed {seed})"
    if calibrated:
        description += f", BatchNorm statistics from {calibrated:,} training samples"
    # a fresh copy without optimizer state: the stored file is the model alone
    trained, model = model, entry.build(dataset.input_shape, dataset.num_classes)
    model.set_weights(trained.get_weights())
    save_model(model, path)
    meta_path.write_text(json.dumps({"description": description, "train_seconds": seconds}))
    return model, description, str(path)


def weights_checksum(weights: list[np.ndarray]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()
