"""Sizes and per-layer views computed during the evaluation (issue 11): the same figures as serially.

Exact: the overlapped sizes equal DEFLATE of the weights the working model held when it was
evaluated, and the views equal the ones drawn afterwards on one thread.
"""
from __future__ import annotations

import numpy as np
import pytest

from pruning.specs import PruneSpec


@pytest.mark.parametrize("method,recalibrate", [("magnitude", False), ("magnitude", True), ("filters-l1", False)])
def test_overlapped_sizes_and_views_equal_serial_ones(engine, tiny_refs, method, recalibrate):
    from pruning.measure.metrics import memory_sizes, model_config_bytes
    from pruning.run.layers import histograms, mask_images
    from pruning.run.prune import prune_once

    bench = engine.workbench(*tiny_refs)
    spec = PruneSpec(model=tiny_refs[0], data=tiny_refs[1], method=method, target_sparsity=0.6,
                     recalibrate_bn=recalibrate)
    try:
        done = prune_once(bench, spec, views=lambda w: (histograms(bench, w), mask_images(bench, w)))
        model = done.result.model
        # what was evaluated: the working model as prune_once leaves it, or the new model
        evaluated = model.get_weights() if model is not None else bench.current_weights()
        config = model_config_bytes(model if model is not None else bench.model)
    finally:
        bench.reset()
    size, gz = memory_sizes(evaluated, config)
    assert (done.metrics["size_bytes"], done.metrics["gzip_bytes"]) == (size, gz)
    assert done.views == (histograms(bench, done.weights), mask_images(bench, done.weights))
    # the figures are of a pruned model: zeros in its kernels, or fewer weights
    assert done.sparsity > 0.3
    if model is None:
        assert sum(w.size - np.count_nonzero(w) for w in evaluated) > 0.3 * sum(pw.size for pw in bench.prunable)
    else:
        assert sum(w.size for w in evaluated) < sum(w.size for w in bench.base_weights)


def test_bin_indices_bin_as_numpy_histogram_does():
    from pruning.run.layers import HIST_BINS, _bin_indices

    rng = np.random.default_rng(3)
    values = rng.normal(size=20000).astype(np.float32)
    span = (float(values.min()), float(values.max()))
    edges = np.histogram_bin_edges(values, HIST_BINS, range=span)
    values = np.concatenate([values, edges, np.nextafter(edges, np.float32(-np.inf))]).astype(np.float32)
    values = np.clip(values, *span).astype(np.float32)  # the edges themselves and a float below each
    bins = _bin_indices(values, span)
    assert np.array_equal(np.bincount(bins, minlength=HIST_BINS), np.histogram(values, HIST_BINS, range=span)[0])


@pytest.mark.parametrize("epochs", [0, 1])
def test_after_histograms_equal_numpy_on_the_pruned_weights(engine, tiny_refs, epochs):
    """Masks alone: counts read off the base weights' bins; fine-tuned: binned anew. Both as np.histogram."""
    spec = PruneSpec(model=tiny_refs[0], data=tiny_refs[1], target_sparsity=0.6, finetune_epochs=epochs)
    from pruning.run.prune import prune_report

    bench = engine.workbench(*tiny_refs)
    report, done = prune_report(bench, spec)
    weights = done.weights
    for layer, parts in bench.by_layer().items():
        hist = report.histograms[layer]
        after = np.concatenate([weights[pw.index].reshape(-1) for pw in parts])
        span = (float(min(hist["edges"])), float(max(hist["edges"])))
        assert hist["after"] == np.histogram(after[after != 0], 40, range=span)[0].tolist()
        assert hist["zeros_after"] == after.size - np.count_nonzero(after)
    moved = any(np.any((w != b) & (w != 0)) for w, b in zip(weights, bench.base_weights))
    assert moved == bool(epochs)


def test_opening_a_model_bins_its_base_weights_before_the_first_move(tiny_refs):
    """The histograms' "before" half is computed with the baseline, so the first slider move costs
    what the later ones do; the move's views then read that cache (the same objects)."""
    from pruning.run.engine import Engine

    fresh = Engine()
    fresh.baseline(*tiny_refs)
    bench = fresh.workbench(*tiny_refs)
    assert set(bench.base_histograms) == set(bench.by_layer()) and bench.base_histograms
    cached = {layer: entry["bins"] for layer, entry in bench.base_histograms.items()}
    report = fresh.prune(PruneSpec(model=tiny_refs[0], data=tiny_refs[1], target_sparsity=0.5))
    assert all(bench.base_histograms[layer]["bins"] is bins for layer, bins in cached.items())
    for layer, entry in bench.base_histograms.items():
        assert report.histograms[layer]["before"] == entry["before"]
        assert sum(entry["before"]) + entry["zeros_before"] == sum(pw.size for pw in bench.by_layer()[layer])
