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

from ..errors import BadInput
from ..specs import DataRef


@dataclass(frozen=True)
class Dataset:
    name: str
    x_test: np.ndarray
    y_test: np.ndarray
    x_train: Optional[np.ndarray]
    y_train: Optional[np.ndarray]
    num_classes: int  # classes (or label columns) the labels name; 0 for float targets
    targets: str = "classes"  # classes (integers >= 0), matrix (0/1 columns) or values (float targets)
    task: str = ""  # set once a model's head says which (pruning.measure.tasks)

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
            "targets": self.targets,
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
        from .._keras import keras

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


# Bounds on an uploaded .npz, checked from the .npy headers before any array is read, so a
# declared shape of 10**12 samples costs nothing. CIFAR-10's train split is ~0.6 GiB as float32.
MAX_NPZ_BYTES = 4 << 30
MAX_DATASET_BYTES = 4 << 30  # all x arrays, as the float32 they become
MAX_SAMPLES = 5_000_000  # per split
MAX_CLASSES = 10_000  # a zoo model gets one output per class: labels like 10**9 would build a giant layer
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: str | Path, name: Optional[str] = None, labels: str = "classes") -> Dataset:
    """An `.npz` with x_test, y_test (and x_train, y_train when training is needed).

    `labels="classes"` takes integer class labels (one-hot rows become indices), as a
    classifier needs; `labels="any"` also keeps 0/1 label matrices and float targets, for
    the model's head to judge (`pruning.measure.tasks.detect_head`).
    """
    shown = name or Path(path).name
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise BadInput(f"cannot read {shown} ({exc.strerror}): upload the file again") from None
    if size > MAX_NPZ_BYTES:
        raise BadInput(f"{shown} is {size / 2**30:.1f} GiB, over the {MAX_NPZ_BYTES >> 30} GiB limit: "
                       "use fewer samples")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInput(f"{shown} is not a readable .npz file ({exc}): save arrays with numpy.savez") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy renamed .npz
        raise BadInput(f"{shown} is a single .npy array, not an .npz: save x_test, y_test with numpy.savez")
    with archive:
        keys = set(archive.files)
        missing = {"x_test", "y_test"} - keys
        if missing:
            raise BadInput(
                f"{shown} lacks {', '.join(sorted(missing))}: it needs x_test, y_test "
                "(and x_train, y_train for training)"
            )
        present = [k for k in ARRAY_KEYS if k in keys]
        headers = {k: _npy_header(archive, k, shown) for k in present}
        x_bytes = sum(4 * int(np.prod(headers[k][0], dtype=np.float64)) for k in present if k.startswith("x_"))
        if x_bytes > MAX_DATASET_BYTES:
            raise BadInput(f"{shown} declares {x_bytes / 2**30:.1f} GiB of inputs, over the "
                           f"{MAX_DATASET_BYTES >> 30} GiB limit: use fewer samples")
        try:
            arrays = {k: archive[k] for k in present}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise BadInput(f"{shown} is truncated or damaged ({exc}): save the arrays again with numpy.savez") from None
    if ("x_train" in arrays) != ("y_train" in arrays):
        raise BadInput("the .npz has only one of x_train / y_train: give both or neither")
    check = _check_xy if labels == "classes" else _check_any
    x_test, y_test = check(arrays["x_test"], arrays["y_test"], "test")
    x_train = y_train = None
    if "x_train" in arrays:
        x_train, y_train = check(arrays["x_train"], arrays["y_train"], "train")
        if x_train.shape[1:] != x_test.shape[1:]:
            raise BadInput(
                f"x_train has samples of shape {x_train.shape[1:]} but x_test {x_test.shape[1:]}: they must match"
            )
    if labels != "classes":
        return _any_targets(shown, x_test, y_test, x_train, y_train)
    labels = y_test if y_train is None else np.concatenate([y_train, y_test])
    top = int(labels.max())
    if top >= MAX_CLASSES:
        raise BadInput(f"labels go up to {top:,}, over the {MAX_CLASSES:,} classes PruneScope handles: "
                       "number the classes 0..K-1")
    return Dataset(shown, x_test, y_test, x_train, y_train, top + 1)


def _npy_header(archive: np.lib.npyio.NpzFile, key: str, shown: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the .npy header alone; refuses what we would not load."""
    member = f"{key}.npy"
    if member not in archive.zip.namelist():
        raise BadInput(f"{shown}: {key} is not a numpy array: save the arrays with numpy.savez")
    try:
        with archive.zip.open(member) as handle:
            version = np.lib.format.read_magic(handle)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                raise ValueError(f".npy format {version}")
            shape, _, dtype = read[version](handle)
    except (OSError, ValueError, SyntaxError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInput(f"{shown}: {key} is truncated or not a numpy array ({exc}): "
                       "save the arrays again with numpy.savez") from None
    if dtype.hasobject:
        raise BadInput(f"{shown}: {key} holds object arrays (pickled Python objects): store numeric arrays only")
    if dtype.kind not in "biuf":  # complex, strings, bytes, dates, structured records
        raise BadInput(f"{shown}: {key} has dtype {dtype}, not numbers: store int or float arrays")
    if shape and shape[0] > MAX_SAMPLES:
        raise BadInput(f"{shown}: {key} declares {shape[0]:,} samples, over the {MAX_SAMPLES:,} limit: "
                       "use fewer samples")
    return tuple(shape), dtype


def _any_targets(shown: str, x_test, y_test, x_train, y_train) -> Dataset:
    """Integer labels within MAX_CLASSES as classes, 0/1 matrices as they are, the rest as float targets."""
    ys = [y for y in (y_test, y_train) if y is not None]
    if y_train is not None and y_train.shape[1:] != y_test.shape[1:]:
        raise BadInput(f"y_train has labels of shape {y_train.shape[1:]} but y_test {y_test.shape[1:]}: they must match")
    width = int(np.prod(y_test.shape[1:]))
    if width > 1 and all(np.isin(y, (0, 1)).all() for y in ys):
        return Dataset(shown, x_test, y_test.astype(np.float32), x_train,
                       None if y_train is None else y_train.astype(np.float32), width, targets="matrix")
    integral = width == 1 and all(np.equal(np.mod(y, 1), 0).all() and (y >= 0).all() for y in ys)
    top = max(int(y.max()) for y in ys) if integral else MAX_CLASSES
    if integral and top < MAX_CLASSES:
        return Dataset(shown, x_test, y_test.reshape(-1).astype(np.int64), x_train,
                       None if y_train is None else y_train.reshape(-1).astype(np.int64), top + 1)
    as_float = [None if y is None else y.astype(np.float32).reshape(len(y), -1) for y in (y_test, y_train)]
    return Dataset(shown, x_test, as_float[0], x_train, as_float[1], 0, targets="values")


def _check_any(x: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs as `_check_xy` checks them; labels only numeric, finite and (samples,) or (samples, k)."""
    x = _check_x(x, y, split)
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise BadInput(f"y_{split} has dtype {y.dtype}: it must hold numbers (class labels, 0/1 labels or targets)")
    if y.ndim > 2:
        raise BadInput(f"y_{split} has shape {y.shape}: give (samples,) labels or a (samples, k) matrix")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise BadInput(f"y_{split} contains NaN or Inf: clean the labels first")
    return x, y


def _check_x(x: np.ndarray, y: np.ndarray, split: str) -> np.ndarray:
    """The inputs as float32, one sample per label, finite."""
    if not np.issubdtype(x.dtype, np.number) or x.ndim < 2:
        raise BadInput(f"x_{split} is {x.dtype} of shape {x.shape}: it must be a numeric array of shape (samples, ...)")
    if len(x) == 0 or len(x) != len(y):
        raise BadInput(f"x_{split} has {len(x)} samples and y_{split} {len(y)}: they must match and be > 0")
    if x.size == 0:
        raise BadInput(f"x_{split} has empty samples (shape {x.shape}): each sample needs at least one value")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise BadInput(f"x_{split} contains NaN or Inf: clean the data first")
    return x


def _check_xy(x: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    x = _check_x(x, y, split)
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise BadInput(f"y_{split} has dtype {y.dtype}: it must hold integer class labels >= 0")
    y = y.reshape(len(y), -1)
    if y.shape[1] > 1:  # one-hot labels
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if y.size == 0 or not np.isfinite(y).all() or not np.all(np.equal(np.mod(y, 1), 0)) or (y < 0).any():
        raise BadInput(f"y_{split} must hold integer class labels >= 0: number the classes 0..K-1")
    return x, y.astype(np.int64)


def load_dataset(ref: DataRef) -> Dataset:
    if ref.is_file:
        return load_npz(ref.path, ref.name, labels="any")  # the model's head judges them
    try:
        loader = DATASETS[ref.name]
    except KeyError:
        raise BadInput(
            f"unknown dataset {ref.name!r}: choose one of {', '.join(DATASETS)} or an .npz path"
        ) from None
    return loader()
