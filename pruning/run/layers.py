"""Per-layer views of a pruned model for its report: the layer table, histograms, mask images.

Everything is read off weights in the base model's shapes, so masks and structured results
are drawn the same way (removed filters read as zeros).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional

import numpy as np
import pandas as pd

from .._keras import keras
from ..core.prunable import PrunableWeight, find_prunable, iter_layers

if TYPE_CHECKING:
    from .workbench import Workbench

HIST_BINS = 40
MASK_IMAGE_CELLS = 48


def measured_sparsity(weights: list[np.ndarray], selected: list[PrunableWeight]) -> float:
    """Zeros among the selected tensors, over their size: what the target asked for."""
    total = sum(pw.size for pw in selected)
    zeros = sum(pw.size - int(np.count_nonzero(weights[pw.index])) for pw in selected)
    return zeros / total


def in_base_shapes(bench: "Workbench", new: keras.Model,
                   masks: Optional[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
    """The base weight list with each prunable tensor replaced by its value in `new`,
    scattered back into the original shape (removed filters/units read as zeros).

    Surgery slices with sorted indices, so a kept weight's row-major order is unchanged:
    the new tensor fills the mask's True positions in order.
    """
    found = {pw.key: new.weights[pw.index].numpy() for pw in find_prunable(new)}
    weights = list(bench.base_weights)
    for pw in bench.prunable:
        value = found.get(pw.key)
        if value is None:
            raise RuntimeError(f"the pruned model lost layer {pw.layer}")
        if value.shape != pw.shape:
            if masks is None or pw.key not in masks:
                raise RuntimeError(f"{pw.key} changed shape but the method gave no mask to place it")
            expanded = np.zeros(pw.shape, dtype=value.dtype)
            expanded[masks[pw.key]] = value.reshape(-1)
            value = expanded
        weights[pw.index] = value
    return weights


def layer_rows(bench: "Workbench", weights: list[np.ndarray], targets: Mapping[str, float],
               new: Optional[keras.Model] = None) -> pd.DataFrame:
    """One row per layer with weights; `targets` holds the requested sparsity of pruned layers.

    With `new` (a structured result), params and shapes come from its layer of the same
    name, beside the original shape.
    """
    grouped = bench.by_layer()
    variables = bench.model.weights
    index = {id(v): i for i, v in enumerate(variables)}
    new_layers = {layer.name: layer for layer in iter_layers(new)} if new is not None else {}
    rows = []
    for layer in iter_layers(bench.model):
        idx = [index[id(v)] for v in layer.weights]
        if not idx:
            continue
        parts = grouped.get(layer.name, [])
        prunable_n = sum(pw.size for pw in parts)
        zeros = sum(pw.size - int(np.count_nonzero(weights[pw.index])) for pw in parts)
        if new is None:
            kernel = bench.base_weights[parts[0].index] if parts else bench.base_weights[idx[0]]
            after = [weights[i] for i in idx]
            shape_before = shape_after = str(tuple(kernel.shape))
        else:
            # the kernel (or first weight) stands for the layer's shape, before and after
            position = [id(v) for v in layer.weights].index(id(variables[parts[0].index])) if parts else 0
            after = [w.numpy() for w in new_layers[layer.name].weights]
            shape_before = str(tuple(bench.base_weights[idx[position]].shape))
            shape_after = str(tuple(after[position].shape))
        rows.append({
            "name": layer.name,
            "type": type(layer).__name__,
            "params": int(sum(w.size for w in after)),
            "nonzero_params": int(sum(np.count_nonzero(w) for w in after)),
            "prunable_params": prunable_n,
            "sparsity": zeros / prunable_n if prunable_n else None,
            "target_sparsity": targets.get(layer.name),
            "shape_before": shape_before,
            "shape_after": shape_after,
        })
    return pd.DataFrame(rows)


def histograms(bench: "Workbench", weights: list[np.ndarray]) -> dict[str, dict]:
    """Per layer: bin edges over the base weights, counts of nonzero weights before and after,
    and the zeros counted apart, so the hole pruning leaves around zero shows."""
    out = {}
    for layer, parts in bench.by_layer().items():
        before = base_histogram(bench, layer)
        after = _flat([weights[pw.index] for pw in parts])
        kept = after != 0
        zeros = int(kept.size - np.count_nonzero(kept))
        out[layer] = {key: before[key] for key in ("edges", "before", "zeros_before")}
        out[layer].update(after=_after_counts(bench, layer, after, kept, before, zeros), zeros_after=zeros)
    return out


def base_histogram(bench: "Workbench", layer: str) -> dict:
    """The "before" half of `layer`'s histogram, from the base weights: computed once per workbench.

    Counts go through np.histogram's equal-width path (`range`, no sort, a few times faster on
    a large model): 40 bins of equal width from the base's min to its max, `edges` their
    bounds (a weight within float rounding of an inner edge may be counted on either side).
    `bins` holds each base weight's bin as np.histogram puts it, for `_after_counts`.
    """
    cache = bench.base_histograms
    if layer not in cache:
        before = _flat([bench.base_weights[pw.index] for pw in bench.by_layer()[layer]])
        zeros = int(before.size - np.count_nonzero(before))
        span = (float(before.min()), float(before.max()))
        cache[layer] = {"edges": np.linspace(*span, HIST_BINS + 1).tolist(), "range": span, "zeros_before": zeros}
        cache[layer]["before"] = _counts(before, cache[layer], zeros)
        if span[0] < span[1]:
            cache[layer]["bins"] = _bin_indices(before, span)
    return cache[layer]


def _bin_indices(values: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """The bin of each of `values` (uint8) as np.histogram(values, HIST_BINS, range=span) puts
    it: the estimate from the width, corrected by one against its own edges (in the values'
    dtype), the last bin closed, as numpy does."""
    edges = np.histogram_bin_edges(values, HIST_BINS, range=span)
    index = ((values - values.dtype.type(span[0])) * (HIST_BINS / (span[1] - span[0]))).astype(np.intp)
    np.clip(index, 0, HIST_BINS - 1, out=index)
    index -= values < edges[index]
    index += (values >= edges[index + 1]) & (index != HIST_BINS - 1)
    return index.astype(np.uint8)


def _after_counts(bench: "Workbench", layer: str, after: np.ndarray, kept: np.ndarray, before: dict,
                  zeros: int) -> list[int]:
    """Counts of the nonzero `after` weights in `before`'s bins. When every one of them is its base
    weight (masks, no training: the usual move) each keeps the base weight's bin, counted from
    `bins` in one pass; otherwise (trained or moved weights) they are binned anew."""
    bins = before.get("bins")
    if bins is not None:
        base = _flat([bench.base_weights[pw.index] for pw in bench.by_layer()[layer]])
        moved = after != base
        moved &= kept
        if not moved.any():
            return np.bincount(bins[kept], minlength=HIST_BINS).tolist()
    return _counts(after, before, zeros)


def _flat(tensors: list[np.ndarray]) -> np.ndarray:
    return tensors[0].reshape(-1) if len(tensors) == 1 else np.concatenate([t.reshape(-1) for t in tensors])


def _counts(values: np.ndarray, bins: dict, zeros: int) -> list[int]:
    """Counts of the nonzero `values` in `bins`: all of them, less the `zeros` from the bin that
    holds 0 (no copy of the nonzero values: on a large model that copy was most of the views)."""
    if bins["range"][0] == bins["range"][1]:  # one value: numpy would widen an equal-width range
        return np.histogram(values[values != 0], np.asarray(bins["edges"]))[0].tolist()
    counts = np.histogram(values, HIST_BINS, range=bins["range"])[0]
    if zeros:
        counts -= np.histogram(np.zeros(1, values.dtype), HIST_BINS, range=bins["range"])[0] * zeros
    return counts.tolist()


def mask_images(bench: "Workbench", weights: list[np.ndarray]) -> dict[str, list[list[int]]]:
    """Per layer: the percent of weights kept in each cell of a grid at most 48 x 48."""
    out = {}
    for layer, parts in bench.by_layer().items():
        kept = np.concatenate([(weights[pw.index] != 0).reshape(-1, pw.shape[-1]) for pw in parts], axis=0)
        # whole percents: small ints are shared objects in Python, so a cached report
        # costs pointers, not a float object per cell
        out[layer] = np.rint(_downsample(kept, MASK_IMAGE_CELLS) * 100).astype(int).tolist()
    return out


def _block_starts(n: int, cells: int) -> np.ndarray:
    """Where each of `min(cells, n)` blocks starts, split as `np.array_split` splits `n` items."""
    parts = min(cells, n)
    sizes = np.full(parts, n // parts)
    sizes[: n % parts] += 1
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])


def _downsample(kept: np.ndarray, cells: int) -> np.ndarray:
    """The fraction of True in blocks such that neither side exceeds `cells` (blocks as
    `np.array_split` makes them), as float32.

    Block counts by `np.add.reduceat` in int32 straight off the booleans (one pass, no Python
    loop per cell and no float copy of the mask: both were most of a large model's views).
    """
    rows, cols = _block_starts(kept.shape[0], cells), _block_starts(kept.shape[1], cells)
    sums = np.add.reduceat(np.add.reduceat(kept, rows, axis=0, dtype=np.int32), cols, axis=1, dtype=np.int32)
    counts = np.outer(np.diff(np.append(rows, kept.shape[0])), np.diff(np.append(cols, kept.shape[1])))
    return sums.astype(np.float32) / counts.astype(np.float32)
