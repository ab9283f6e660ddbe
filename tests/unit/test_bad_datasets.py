"""Bad datasets: each refused with one line that says what was wrong and what to do.

The file (not an npz, truncated, pickled, oversized), its arrays, and the model that uses them.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from conftest import CLASSES, INPUT_SHAPE

from pruning.errors import BadInput
from pruning.model import datasets
from pruning.model.datasets import load_npz

GOOD_Y = np.arange(6) % CLASSES


def images(n: int = 6) -> np.ndarray:
    return np.zeros((n,) + INPUT_SHAPE, np.float32)


def savez(**arrays) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


def raw_bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def huge_header(path: Path) -> None:
    """x_test claims 10**10 samples of 28x28 floats (37 TB) in a few bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**10, 28, 28)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_test.npy", header.getvalue() + b"\x00" * 64)
        buffer = io.BytesIO()
        np.save(buffer, GOOD_Y)
        archive.writestr("y_test.npy", buffer.getvalue())


def too_many_bytes(path: Path) -> None:
    """Within the sample limit, but 8 GB of float32 inputs declared."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (2_000_000, 1000)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_test.npy", header.getvalue())
        buffer = io.BytesIO()
        np.save(buffer, GOOD_Y)
        archive.writestr("y_test.npy", buffer.getvalue())


def truncated(path: Path) -> None:
    np.savez(path, x_test=np.random.default_rng(0).normal(size=(64,) + INPUT_SHAPE), y_test=np.arange(64) % CLASSES)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def truncated_member(path: Path) -> None:
    """The zip directory is intact, but x_test's data stops half way."""
    buffer = io.BytesIO()
    np.save(buffer, images(64))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_test.npy", buffer.getvalue()[: len(buffer.getvalue()) // 2])
        y = io.BytesIO()
        np.save(y, np.arange(64) % CLASSES)
        archive.writestr("y_test.npy", y.getvalue())


def bare_npy(path: Path) -> None:
    with open(path, "wb") as handle:
        np.save(handle, images())


# (file name, how to write it, fragment of the one-line refusal)
BAD_DATASETS = [
    ("pickled.npz", savez(x_test=np.array([{"evil": 1}] * 6, dtype=object), y_test=GOOD_Y), "holds object arrays (pickled Python objects)"),
    ("nan.npz", savez(x_test=np.where(np.eye(8)[None, ..., None] > 0, np.nan, 0.0).repeat(6, 0), y_test=GOOD_Y), "x_test contains NaN or Inf"),
    ("inf_train.npz", savez(x_test=images(), y_test=GOOD_Y, x_train=np.full((6,) + INPUT_SHAPE, np.inf), y_train=GOOD_Y), "x_train contains NaN or Inf"),
    ("nan_labels.npz", savez(x_test=images(), y_test=np.array([0, 1, np.nan, 1, 0, 2])), "must hold integer class labels"),
    ("negative_labels.npz", savez(x_test=images(), y_test=np.array([0, 1, -3, 1, 0, 2])), "must hold integer class labels"),
    ("giant_labels.npz", savez(x_test=images(), y_test=np.array([0, 1, 10**9, 1, 0, 2])), "labels go up to 1,000,000,000, over the 10,000 classes"),
    ("not_npz.npz", raw_bytes(b"x_test,y_test\n1,2\n"), "not a readable .npz file"),
    ("truncated.npz", truncated, "not a readable .npz file"),
    ("truncated_member.npz", truncated_member, "is truncated or damaged"),
    ("bare.npz", bare_npy, "single .npy array, not an .npz"),
    ("missing_keys.npz", savez(x_train=images(), y_train=GOOD_Y), "lacks x_test, y_test"),
    ("empty.npz", savez(x_test=np.zeros((0,) + INPUT_SHAPE), y_test=np.zeros(0)), "x_test has 0 samples"),
    ("empty_samples.npz", savez(x_test=np.zeros((6, 0)), y_test=GOOD_Y), "x_test has empty samples"),
    ("flat.npz", savez(x_test=np.zeros(6), y_test=GOOD_Y), "x_test is float64 of shape (6,): it must be a numeric array of shape (samples, ...)"),
    ("string_x.npz", savez(x_test=np.array([["a"] * 4] * 6), y_test=GOOD_Y), "x_test has dtype <U1, not numbers"),
    ("string_y.npz", savez(x_test=images(), y_test=np.array(list("abcdef"))), "y_test has dtype <U1, not numbers"),
    ("complex.npz", savez(x_test=images().astype(np.complex64), y_test=GOOD_Y), "dtype complex64, not numbers"),
    ("huge_shape.npz", huge_header, "x_test declares 10,000,000,000 samples, over the 5,000,000 limit"),
    ("huge_bytes.npz", too_many_bytes, "declares 7.5 GiB of inputs, over the 4 GiB limit"),
    ("mismatch.npz", savez(x_test=images(), y_test=GOOD_Y[:5]), "x_test has 6 samples and y_test 5"),
]


@pytest.mark.parametrize("name, write, fragment", BAD_DATASETS, ids=[case[0] for case in BAD_DATASETS])
def test_bad_dataset_gets_one_clear_line(tmp_path, name, write, fragment):
    path = tmp_path / name
    write(path)
    with pytest.raises(BadInput) as caught:
        load_npz(path)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message and ": " in message  # what was wrong: what to do


def test_at_least_10_bad_datasets():
    assert len(BAD_DATASETS) >= 10


def test_file_size_is_bounded_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    np.savez(path, x_test=images(), y_test=GOOD_Y)
    monkeypatch.setattr(datasets, "MAX_NPZ_BYTES", 100)
    with pytest.raises(BadInput, match=r"big\.npz is 0\.0 GiB, over the 0 GiB limit: use fewer samples"):
        load_npz(path)


@pytest.fixture(scope="module")
def tiny_model(tiny_refs):
    from pruning.model.baselines import load_model_file

    return load_model_file(tiny_refs[0])


def test_labels_beyond_the_models_outputs(tmp_path, tiny_model):
    from pruning.model.baselines import check_compatible

    path = tmp_path / "seven_classes.npz"
    np.savez(path, x_test=images(7), y_test=np.arange(7))
    with pytest.raises(BadInput, match=r"^the dataset's labels go up to 6 but the model has 4 outputs \(classes 0-3\): "
                                       "pick a matching dataset or model$"):
        check_compatible(tiny_model, load_npz(path))
    np.savez(path, x_test=images(7), y_test=np.arange(7) % CLASSES)
    check_compatible(tiny_model, load_npz(path))  # labels 0-3 fit the 4 outputs


def test_wrong_input_shape_for_the_model(tmp_path, tiny_model):
    from pruning.model.baselines import check_compatible

    path = tmp_path / "flat.npz"
    np.savez(path, x_test=np.zeros((6, 64)), y_test=GOOD_Y)
    with pytest.raises(BadInput, match=r"^model expects \(8, 8, 1\) inputs, the dataset has \(64,\): pick a matching dataset or model$"):
        check_compatible(tiny_model, load_npz(path))


def test_cli_bad_dataset_exits_2_with_one_line(tmp_path, tiny_refs, capsys):
    from pruning.cli import main

    for name, write, fragment in [BAD_DATASETS[0], ("labels.npz", savez(x_test=images(7), y_test=np.arange(7)), "labels go up to 6")]:
        path = tmp_path / name
        write(path)
        code = main(["prune", "--model", tiny_refs[0].path, "--dataset", str(path), "--method", "magnitude", "--sparsity", "0.5"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: ") and "\n" not in err and fragment in err, err
