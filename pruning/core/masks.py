"""Masks from scores, in numpy: exact keep counts per tensor or across all tensors.

A tensor of n weights at sparsity s keeps `max(round(n * (1 - s)), 1)` weights, tfmot's
rule (computed in float32 and rounded half to even, as `tf.round` does), so on weights
without ties our magnitude masks equal tfmot's.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np


def keep_count(n: int, sparsity: float) -> int:
    """How many of `n` weights survive at `sparsity` (tfmot's rule).

    kept = max(round(n * (1 - s)), 1), rounded half to even. Worked example: a 3x3 kernel
    of 8 input and 4 output channels has n = 288 weights; at s = 0.7 it keeps
    round(288 * 0.3) = round(86.4) = 86 and zeroes 202. Halves go to the even neighbour
    (5 * 0.5 = 2.5 -> 2), and one weight always survives (10 * 0.01 = 0.1 -> 1).

    >>> keep_count(288, 0.7), 288 - keep_count(288, 0.7)
    (86, 202)
    >>> keep_count(100, 0.9), keep_count(10, 0.99), keep_count(5, 0.5)
    (10, 1, 2)
    """
    kept = np.round(np.float32(n) * (np.float32(1.0) - np.float32(sparsity)))
    return max(int(kept), 1)


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the `k` highest scores (exactly k; `np.argpartition`, no full sort)."""
    flat = scores.reshape(-1)
    mask = np.zeros(flat.size, dtype=bool)
    if k >= flat.size:
        mask[:] = True
    elif k > 0:
        mask[np.argpartition(flat, flat.size - k)[flat.size - k :]] = True
    return mask.reshape(scores.shape)


def layer_masks(scores: Mapping[str, np.ndarray], sparsity: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Each tensor pruned to its own sparsity."""
    return {key: top_k_mask(s, keep_count(s.size, sparsity[key])) for key, s in scores.items()}


def global_masks(scores: Mapping[str, np.ndarray], sparsity: float) -> dict[str, np.ndarray]:
    """One threshold across all tensors: the top `keep_count(total, s)` scores survive.

    >>> masks = global_masks({"a": np.array([0.1, 0.9]), "b": np.array([0.5, 0.7, 0.2])}, 0.6)
    >>> {key: mask.tolist() for key, mask in masks.items()}  # keep_count(5, 0.6) = 2
    {'a': [False, True], 'b': [False, True, False]}
    """
    keys = list(scores)
    flat = np.concatenate([scores[k].reshape(-1) for k in keys])
    keep = top_k_mask(flat, keep_count(flat.size, sparsity))
    masks, start = {}, 0
    for key in keys:
        size = scores[key].size
        masks[key] = keep[start : start + size].reshape(scores[key].shape)
        start += size
    return masks
