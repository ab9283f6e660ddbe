"""MNIST from the shared IDX files as a PruneScope .npz: first 8,000 train, last 2,000 test.

Benchmarks only: the product and its tests never read /work/shared/data.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"
N_TRAIN = 8000


def build_mnist_npz(target: Path, source: Path = SOURCE) -> Path:
    """Write x_train/y_train/x_test/y_test (float32 in [0, 1], 28x28x1) to `target` once."""
    if target.is_file():
        return target
    images = source / "t10k-images-idx3-ubyte.gz"
    labels = source / "t10k-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise SystemExit(f"MNIST IDX files not found in {source}: this benchmark needs them")
    x = np.frombuffer(gzip.open(images).read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
    y = np.frombuffer(gzip.open(labels).read(), np.uint8, offset=8).astype(np.int64)
    x = (x / 255.0).astype(np.float32)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez(target, x_train=x[:N_TRAIN], y_train=y[:N_TRAIN], x_test=x[N_TRAIN:], y_test=y[N_TRAIN:])
    return target
