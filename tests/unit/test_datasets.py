"""Datasets: digits offline, clear messages for bad or missing files."""
from __future__ import annotations

import numpy as np
import pytest

from pruning.errors import BadInput
from pruning.model.datasets import load_dataset, load_digits, load_npz
from pruning.specs import DataRef


def test_digits_is_offline_and_split():
    ds = load_digits()
    assert ds.input_shape == (8, 8, 1) and ds.num_classes == 10
    assert len(ds.x_train) == 1437 and len(ds.x_test) == 360
    assert 0.0 <= ds.x_test.min() and ds.x_test.max() <= 1.0


def test_npz_without_train_split_loads(tmp_path):
    path = tmp_path / "test_only.npz"
    np.savez(path, x_test=np.zeros((5, 4, 4, 1)), y_test=np.array([0, 1, 2, 1, 0]))
    ds = load_npz(path)
    assert not ds.has_train and ds.num_classes == 3 and ds.input_shape == (4, 4, 1)


def test_one_hot_labels_become_integers(tmp_path):
    path = tmp_path / "onehot.npz"
    np.savez(path, x_test=np.zeros((3, 2, 2)), y_test=np.eye(3)[[2, 0, 1]])
    assert load_npz(path).y_test.tolist() == [2, 0, 1]


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x_test": np.zeros((3, 2))}, "lacks y_test"),
        ({"x_test": np.zeros((3, 2)), "y_test": np.zeros(4)}, "3 samples and y_test 4"),
        ({"x_test": np.full((3, 2), np.nan), "y_test": np.zeros(3)}, "NaN"),
        ({"x_test": np.zeros((3, 2)), "y_test": np.array([0.5, 1, 2])}, "integer class labels"),
        ({"x_test": np.zeros((3, 2)), "y_test": np.array([-1, 1, 2])}, "integer class labels"),
        ({"x_test": np.zeros((3, 2)), "y_test": np.zeros(3), "x_train": np.zeros((3, 2))}, "only one of"),
        ({"x_test": np.zeros((3, 2)), "y_test": np.zeros(3), "x_train": np.zeros((3, 5)), "y_train": np.zeros(3)}, "must match"),
    ],
)
def test_bad_npz_gets_a_clear_message(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(BadInput, match=message):
        load_npz(path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x_test=np.array([{"a": 1}], dtype=object), y_test=np.zeros(1))
    with pytest.raises(BadInput, match="object arrays"):
        load_npz(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(BadInput, match="not a readable .npz"):
        load_npz(path)


def test_offline_keras_dataset_names_the_file(monkeypatch):
    from pruning._keras import keras

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(BadInput, match=r"put mnist.npz at .*\.keras/datasets/mnist.npz"):
        load_dataset(DataRef("mnist"))


def test_unknown_dataset_lists_names():
    with pytest.raises(BadInput, match="choose one of digits, mnist"):
        load_dataset(DataRef("imagenet"))
