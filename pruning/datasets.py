"""Datasets by name or file, loaded into float32 arrays scaled to [0, 1].

`digits` ships with scikit-learn and is the offline default; the Keras datasets download
on first use and, offline, fail with a message naming the file to put in the Keras cache.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .errors import BadInput
from .specs import DataRef


@dataclass(frozen=True)
class Dataset:
    name: str
    x_test: np.ndarray
    y_test: np.ndarray
    x_train: Optional[np.ndarray]
    y_train: Optional[np.ndarray]
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_test.shape[1:])

    @property
    def has_train(self) -> bool:
        return self.x_train is not None and self.y_train is not None

    def summary(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "classes": self.num_classes,
            "n_train": 0 if self.x_train is None else int(len(self.x_train)),
            "n_test": int(len(self.x_test)),
        }


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    return Dataset("digits", x_test, y_test, x_train, y_train, 10)


def _keras_dataset(name: str, filename: str) -> Callable[[], Dataset]:
    def load() -> Dataset:
        from ._keras import keras

        module = getattr(keras.datasets, name)
        try:
            (x_train, y_train), (x_test, y_test) = module.load_data()
        except Exception as exc:  # offline: urllib raises several types
            target = Path.home() / ".keras" / "datasets" / filename
            raise BadInput(
                f"{name} is not in the Keras cache and could not be downloaded ({type(exc).__name__}): "
                f"put {filename} at {target}, or pick digits"
            ) from None
        x_train, x_test = _as_images(x_train), _as_images(x_test)
        y_train, y_test = y_train.reshape(-1).astype(np.int64), y_test.reshape(-1).astype(np.int64)
        return Dataset(name, x_test, y_test, x_train, y_train, int(y_train.max()) + 1)

    return load


def _as_images(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


# Keras' loaders cache mnist and fashion_mnist as single files; cifar10 as an archive.
DATASETS: dict[str, Callable[[], Dataset]] = {
    "digits": load_digits,
    "mnist": _keras_dataset("mnist", "mnist.npz"),
    "fashion_mnist": _keras_dataset("fashion_mnist", "fashion-mnist (train/t10k *-ubyte.gz files)"),
    "cifar10": _keras_dataset("cifar10", "cifar-10-batches-py.tar.gz"),
}


def load_npz(path: str | Path, name: Optional[str] = None) -> Dataset:
    """An `.npz` with x_test, y_test (and x_train, y_train when training is needed)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInput(f"{Path(path).name} is not a readable .npz file ({exc}): save arrays with numpy.savez") from None
    with archive:
        keys = set(archive.files)
        missing = {"x_test", "y_test"} - keys
        if missing:
            raise BadInput(
                f"{Path(path).name} lacks {', '.join(sorted(missing))}: it needs x_test, y_test "
                "(and x_train, y_train for training)"
            )
        try:
            arrays = {k: archive[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in keys}
        except ValueError as exc:  # object arrays need pickle, which we refuse
            raise BadInput(f"{Path(path).name} holds object arrays ({exc}): store numeric arrays only") from None
    if ("x_train" in arrays) != ("y_train" in arrays):
        raise BadInput("the .npz has only one of x_train / y_train: give both or neither")
    x_test, y_test = _check_xy(arrays["x_test"], arrays["y_test"], "test")
    x_train = y_train = None
    if "x_train" in arrays:
        x_train, y_train = _check_xy(arrays["x_train"], arrays["y_train"], "train")
        if x_train.shape[1:] != x_test.shape[1:]:
            raise BadInput(
                f"x_train has samples of shape {x_train.shape[1:]} but x_test {x_test.shape[1:]}: they must match"
            )
    labels = y_test if y_train is None else np.concatenate([y_train, y_test])
    return Dataset(name or Path(path).name, x_test, y_test, x_train, y_train, int(labels.max()) + 1)


def _check_xy(x: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    if not np.issubdtype(x.dtype, np.number) or x.ndim < 2:
        raise BadInput(f"x_{split} must be a numeric array of shape (samples, ...), got {x.dtype} {x.shape}")
    if len(x) == 0 or len(x) != len(y):
        raise BadInput(f"x_{split} has {len(x)} samples and y_{split} {len(y)}: they must match and be > 0")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise BadInput(f"x_{split} contains NaN or Inf: clean the data first")
    y = np.asarray(y).reshape(len(y), -1)
    if y.shape[1] > 1:  # one-hot labels
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.equal(np.mod(y, 1), 0)) or (y < 0).any():
        raise BadInput(f"y_{split} must hold integer class labels >= 0")
    return x, y.astype(np.int64)


def load_dataset(ref: DataRef) -> Dataset:
    if ref.is_file:
        return load_npz(ref.path, ref.name)
    try:
        loader = DATASETS[ref.name]
    except KeyError:
        raise BadInput(
            f"unknown dataset {ref.name!r}: choose one of {', '.join(DATASETS)} or an .npz path"
        ) from None
    return loader()
