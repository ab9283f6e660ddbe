"""Exact keep counts and masks from scores (tfmot's rule)."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import pruning.core.masks as masks_module
from pruning.core.masks import global_masks, keep_count, layer_masks, top_k_mask


def test_doctests():
    # the keep rule's worked examples in the docstrings are checked, and there are some
    result = doctest.testmod(masks_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    "n, s, kept",
    [(100, 0.0, 100), (100, 0.5, 50), (100, 0.9, 10), (150, 0.7, 45), (10, 0.99, 1), (5, 0.5, 2), (7, 0.5, 4), (1, 0.9, 1)],
)
def test_keep_count_follows_tfmot_rule(n, s, kept):
    # round half to even, as tf.round: 5 * 0.5 = 2.5 -> 2; 7 * 0.5 = 3.5 -> 4
    assert keep_count(n, s) == kept


def test_top_k_mask_keeps_exactly_the_k_largest():
    scores = np.random.default_rng(0).permutation(np.linspace(0.01, 1.0, 60)).reshape(3, 4, 5)
    mask = top_k_mask(scores, 17)
    assert mask.shape == scores.shape
    assert mask.sum() == 17
    assert scores[mask].min() > scores[~mask].max()


def test_layer_masks_prune_each_tensor_to_its_own_target():
    rng = np.random.default_rng(1)
    scores = {"a": rng.random((10, 10)), "b": rng.random((4, 25)), "c": rng.random(7)}
    masks = layer_masks(scores, {"a": 0.3, "b": 0.9, "c": 0.5})
    assert {k: int(m.sum()) for k, m in masks.items()} == {"a": 70, "b": 10, "c": 4}


def test_global_masks_use_one_threshold_across_tensors():
    scores = {"small": np.linspace(0.0, 0.5, 50), "large": np.linspace(0.51, 1.0, 50)}
    masks = global_masks(scores, 0.5)
    # the 50 largest scores all live in "large": one threshold, not one per tensor
    assert masks["small"].sum() == 0 and masks["large"].sum() == 50
