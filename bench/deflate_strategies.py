"""DEFLATE strategies on real model weights: the compressed size and the time of each, per sparsity.

    python bench/deflate_strategies.py /tmp/prunescope-bench-models/resnet50.keras ...

Reads the weight tensors straight from each `.keras` file (h5py, no TensorFlow), zeroes the
smallest-magnitude fraction of every kernel (ndim >= 2) at each sparsity, and compresses every
tensor on its own as `metrics.memory_sizes` does, one thread: zlib level 1 with its default
strategy, Z_RLE at memLevel 8 and 9 (the measure before ISA-L), Z_HUFFMAN_ONLY, and ISA-L's DEFLATE
(python-isal) at levels 1 and 2 (level 1 is what `metrics.deflated_size` uses now).
"""
from __future__ import annotations

import io
import sys
import time
import zipfile
import zlib

import h5py
import numpy as np
from isal import isal_zlib

STRATEGIES = {
    "level 1 (LZ77)": (1, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY),
    "Z_RLE, memLevel 8": (1, zlib.DEFLATED, 15, 8, zlib.Z_RLE),
    "Z_RLE, memLevel 9": (1, zlib.DEFLATED, 15, 9, zlib.Z_RLE),
    "Z_HUFFMAN_ONLY, memLevel 9": (1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY),
    "ISA-L level 1": (1,),
    "ISA-L level 2": (2,),
}


def weights(path: str) -> list[np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    out: list[np.ndarray] = []
    with h5py.File(io.BytesIO(data), "r") as handle:
        handle.visititems(lambda name, item: out.append(np.asarray(item)) if isinstance(item, h5py.Dataset) else None)
    return out


def pruned(tensors: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    out = []
    for w in tensors:
        if w.ndim >= 2 and sparsity > 0:
            k = int(round(w.size * sparsity))
            threshold = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
            w = np.where(np.abs(w) <= threshold, 0, w).astype(w.dtype)
        out.append(np.ascontiguousarray(w))
    return out


def size(args: tuple, data) -> int:
    if len(args) == 1:  # ISA-L: a level only
        return len(isal_zlib.compress(data, args[0]))
    packer = zlib.compressobj(*args)
    return len(packer.compress(data)) + len(packer.flush())


def main(paths: list[str]) -> int:
    for path in paths:
        tensors = weights(path)
        print(f"{path}: {len(tensors)} tensors, {sum(w.nbytes for w in tensors) / 1e6:.1f} MB")
        for sparsity in (0.0, 0.5, 0.7, 0.9):
            cells, zeroed = [], pruned(tensors, sparsity)
            for name, args in STRATEGIES.items():
                t0 = time.perf_counter()
                total = sum(size(args, w.data) for w in zeroed)
                cells.append(f"{name}: {total / 1e6:.2f} MB in {time.perf_counter() - t0:.2f} s")
            print(f"  sparsity {sparsity:.0%}: " + " | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
