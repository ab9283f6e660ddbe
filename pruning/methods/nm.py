"""N:M semi-structured sparsity: in every block of M consecutive input channels keep N weights.

Blocks run along the input-channel axis, the layout sparse tensor cores accelerate (2:4).
"""
from __future__ import annotations

import numpy as np

from ..core.masks import keep_count
from .base import Method, PruneRequest, PruneResult

M = 4


def nm_mask(weights: np.ndarray, n: int, m: int = M) -> np.ndarray:
    """Keep the `n` largest |w| in each block of `m` along the input axis (axis -2 of Conv
    (..., in, out), Dense (in, out) and LSTM (in, 4 * units) kernels).

    >>> nm_mask(np.array([[1.0], [-4.0], [3.0], [2.0]]), 2)[:, 0].tolist()
    [False, True, True, False]
    """
    axis = weights.ndim - 2
    blocks = np.moveaxis(np.abs(weights), axis, -1)  # (..., out, in): blocks are contiguous
    shape = blocks.shape
    blocks = blocks.reshape(-1, m)
    # stable sort: among equal magnitudes the earlier channel stays, so the mask is reproducible
    top = np.argsort(-blocks, axis=1, kind="stable")[:, :n]
    mask = np.zeros(blocks.shape, dtype=bool)
    np.put_along_axis(mask, top, True, axis=1)
    return np.moveaxis(mask.reshape(shape), -1, axis)


def blocks_satisfy(mask: np.ndarray, n: int, m: int = M) -> bool:
    """Whether every block of `m` along the input axis keeps at most `n` weights."""
    blocks = np.moveaxis(mask, mask.ndim - 2, -1).reshape(-1, m)
    return bool((blocks.sum(axis=1) <= n).all())


def prune_nm(request: PruneRequest) -> PruneResult:
    masks, skipped, patterns, satisfied = {}, [], {}, True
    for key, w in request.weights.items():
        n = keep_count(M, request.sparsity[key])  # sparsity 0.5 -> 2:4, 0.75 -> 1:4
        inputs = w.shape[-2]
        if inputs % M:
            masks[key] = np.ones(w.shape, dtype=bool)
            skipped.append(f"{key} ({inputs} input channels)")
            continue
        masks[key] = nm_mask(w, n)
        satisfied &= blocks_satisfy(masks[key], n)
        patterns.setdefault(f"{n}:{M}", []).append(key)
    notes = []
    for pattern, keys in patterns.items():
        notes.append(f"{pattern} along input channels in {', '.join(keys)}: every block satisfies the pattern"
                     if satisfied else f"{pattern}: some blocks keep more weights than the pattern allows")
    if skipped:
        notes.append(f"skipped, input channels not a multiple of {M}: {', '.join(skipped)}; "
                     "measured sparsity is lower than the target by their share")
    return PruneResult(masks=masks, notes=tuple(notes))


METHODS = (
    Method(
        name="nm",
        description="N:M sparsity along input channels (2:4 at sparsity 0.5, N = round(4 x (1 - sparsity))); "
                    "layers whose inputs are not a multiple of 4 are skipped and listed.",
        granularity="n:m",
        needs=("weights",),
        prune=prune_nm,
        scopes=("layer",),
    ),
)
