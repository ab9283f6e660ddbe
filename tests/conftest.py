"""Shared fixtures: a private PRUNESCOPE_HOME, a tiny synthetic dataset and tiny model files.

Everything is seeded and small so the whole suite runs on 2 CPU cores in minutes.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Before anything imports pruning: never touch the user's cache from tests.
os.environ["PRUNESCOPE_HOME"] = tempfile.mkdtemp(prefix="prunescope-tests-")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

INPUT_SHAPE = (8, 8, 1)
CLASSES = 4
APP_TIMEOUT = 180  # seconds for one AppTest run: the first one starts the worker and TensorFlow


def pytest_addoption(parser) -> None:
    parser.addoption("--screenshots", metavar="DIR", default=None,
                     help="save the e2e test's page screenshots into DIR (the README's: docs); "
                          "without it they go to a temporary folder")


def make_xy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable synthetic images: class k lights up quadrant k, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.normal(0.0, 0.15, (n,) + INPUT_SHAPE).astype(np.float32)
    for k in range(CLASSES):
        r, c = divmod(k, 2)
        x[y == k, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4, 0] += 1.0
    return x, y.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory) -> Path:
    x_train, y_train = make_xy(256, seed=1)
    x_test, y_test = make_xy(128, seed=2)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def build_tiny_cnn(seed: int = 0):
    from pruning._keras import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inputs = L.Input(INPUT_SHAPE)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(16, activation="relu", name="hidden")(x)
    outputs = L.Dense(CLASSES, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, tiny_npz) -> Path:
    """A tiny CNN trained a few epochs on `tiny_npz`, saved as .keras."""
    model = build_tiny_cnn()
    data = np.load(tiny_npz)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=5, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "tiny_cnn.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_refs(tiny_model_file, tiny_npz):
    from pruning.specs import DataRef, ModelRef

    return ModelRef.parse(str(tiny_model_file)), DataRef.parse(str(tiny_npz))


@pytest.fixture(scope="session")
def engine():
    from pruning.run.engine import Engine

    return Engine(capacity=4)


@pytest.fixture
def uploaded_page(tiny_refs):
    """Opens a page as a session that uploaded the tiny model and dataset and picked them.

    Returns:
        `open_page(script, data=None)`: an AppTest of `script` (`app.py`, `pages/2_Sweep.py`)
        not run yet; `data` (a DataRef) replaces the tiny dataset.
    """
    from streamlit.testing.v1 import AppTest

    from ui import state

    def open_page(script: str, data=None) -> AppTest:
        model, tiny_data = tiny_refs
        at = AppTest.from_file(str(ROOT / script), default_timeout=APP_TIMEOUT)
        at.session_state[state.MODEL_FILE] = dict(model.__dict__)
        at.session_state[state.DATA_FILE] = dict((data or tiny_data).__dict__)
        at.session_state[state.MODEL] = state.UPLOADED_MODEL
        at.session_state[state.DATASET] = state.UPLOADED_DATA
        return at

    return open_page
