"""The models a new user brings, with matching datasets: built, trained briefly and saved here.

A Keras 3 CNN with BatchNorm and squeeze-and-excite, a Keras 3 Embedding -> Conv1D -> GRU text
model, a binary sigmoid classifier, a multi-label model (Keras 3) and a tf_keras regression MLP.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OwnModel:
    """One user model: its file, its dataset, how it was saved and what the cards must show."""

    name: str
    model: Path
    data: Path
    saved_by: str  # keras3 or keras2
    headline: str  # the headline metric card's label, e.g. "Test accuracy", "Test MAE"
    structured: str  # a structured method that applies to it


def _split(x: np.ndarray, y: np.ndarray, n_test: int) -> dict[str, np.ndarray]:
    return {"x_train": x[n_test:], "y_train": y[n_test:], "x_test": x[:n_test], "y_test": y[:n_test]}


def image_data(rng: np.random.Generator, n: int = 320):
    """Class k lights up quadrant k of an 8x8 image (4 classes), plus noise."""
    y = rng.integers(0, 4, n)
    x = rng.normal(0.0, 0.15, (n, 8, 8, 1)).astype(np.float32)
    for k in range(4):
        r, c = divmod(k, 2)
        x[y == k, r * 4:r * 4 + 4, c * 4:c * 4 + 4, 0] += 1.0
    return x, y.astype(np.int64)


def text_data(rng: np.random.Generator, n: int = 320, length: int = 16, vocab: int = 40):
    """Integer sequences; the class is which of tokens 1, 2, 3 occurs most often."""
    x = rng.integers(4, vocab, (n, length))
    y = rng.integers(0, 3, n)
    for i in range(n):
        x[i, rng.choice(length, 4, replace=False)] = y[i] + 1
    return x.astype(np.int32), y.astype(np.int64)


def tabular(rng: np.random.Generator, n: int = 320, features: int = 10):
    return rng.normal(0, 1, (n, features)).astype(np.float32)


def build_cnn(k):
    L = k.layers
    inputs = k.Input((8, 8, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    s = L.GlobalAveragePooling2D(name="squeeze")(x)
    s = L.Dense(4, activation="relu", name="reduce")(s)
    s = L.Dense(8, activation="sigmoid", name="excite")(s)
    x = L.Multiply(name="gate")([x, L.Reshape((1, 1, 8), name="gate_shape")(s)])
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv_2")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    outputs = L.Dense(4, activation="softmax", name="out")(x)
    return k.Model(inputs, outputs, name="se_cnn")


def build_text(k):
    L = k.layers
    inputs = k.Input((16,), dtype="int32", name="tokens")
    x = L.Embedding(40, 8, name="embed")(inputs)
    x = L.Conv1D(8, 3, padding="same", activation="relu", name="conv1d")(x)
    x = L.GRU(8, name="gru")(x)
    outputs = L.Dense(3, activation="softmax", name="out")(x)
    return k.Model(inputs, outputs, name="text_gru")


def build_mlp(k, outputs: int, activation: str, name: str):
    L = k.layers
    return k.Sequential([k.Input((10,)), L.Dense(16, activation="relu", name="hidden"),
                         L.Dense(8, activation="relu", name="hidden_2"),
                         L.Dense(outputs, activation=activation, name="out")], name=name)


def make_own_models(folder: Path, k3, k2) -> list[OwnModel]:
    """Build, train (a few epochs) and save the five models and their .npz files into `folder`.

    Args:
        k3: Keras 3 (`import keras`); k2: tf_keras. The regression MLP is the tf_keras one.
    """
    rng = np.random.default_rng(0)
    k3.utils.set_random_seed(0)
    k2.utils.set_random_seed(0)
    made = []
    x, y = image_data(rng)
    made.append(("se_cnn", k3, build_cnn(k3), x, y, "sparse_categorical_crossentropy", "Test accuracy", "filters-l1"))
    x, y = text_data(rng)
    made.append(("text_gru", k3, build_text(k3), x, y, "sparse_categorical_crossentropy", "Test accuracy", "gru-units"))
    x = tabular(rng)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    made.append(("binary", k3, build_mlp(k3, 1, "sigmoid", "binary"), x, y, "binary_crossentropy", "Test accuracy",
                 "neurons"))
    x = tabular(rng)
    y = (x[:, :5] + 0.3 * x[:, 5:] > 0).astype(np.float32)  # 5 labels, a 0/1 matrix
    made.append(("multilabel", k3, build_mlp(k3, 5, "sigmoid", "multilabel"), x, y, "binary_crossentropy",
                 "Test mean per-label accuracy", "neurons"))
    x = tabular(rng)
    y = (x[:, 0] * 2.0 - x[:, 1] + 0.1 * rng.normal(0, 1, len(x))).astype(np.float32)
    made.append(("regression", k2, build_mlp(k2, 1, "linear", "regression"), x, y, "mse", "Test MAE", "neurons"))
    own = []
    for name, k, model, x, y, loss, headline, structured in made:
        k.utils.set_random_seed(0)
        model.compile(k.optimizers.Adam(0.01), loss)
        model.fit(x[80:], y[80:], epochs=12, batch_size=32, verbose=0)
        model_path, data_path = folder / f"{name}.keras", folder / f"{name}.npz"
        model.save(model_path)
        np.savez(data_path, **_split(x, y, 80))
        own.append(OwnModel(name, model_path, data_path, "keras3" if k is k3 else "keras2", headline, structured))
    return own
