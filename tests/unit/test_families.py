"""Every small keras.applications family prunes: masks, and structured surgery that stays exact.

weights=None, the smallest input each family allows, random BatchNorm statistics and biases (so a
removed channel read as anything but zero would show), logits out, two samples.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pruning._keras import keras
from pruning.core.masks import keep_count
from pruning.core.prunable import find_prunable
from pruning.core.surgery import ChannelGraph
from pruning.methods import METHODS, PruneRequest

A = keras.applications
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from families import randomize  # noqa: E402

L = keras.layers

# name -> (builder, input side); DenseNet121, NASNetMobile (30-50 s each here) and ResNet50 (plain
# convs and Add, as resnet20 in test_surgery.py) are in bench/families.py
FAMILIES = {
    "MobileNetV2": (lambda s: A.MobileNetV2(input_shape=s, alpha=0.35, weights=None, classes=10,
                                             classifier_activation=None), 32),
    "MobileNetV3Small": (lambda s: A.MobileNetV3Small(input_shape=s, alpha=0.75, weights=None, classes=10,
                                                      classifier_activation=None), 32),
    "RegNetX002": (lambda s: A.RegNetX002(input_shape=s, weights=None, classes=10, classifier_activation=None), 32),
    "EfficientNetB0": (lambda s: A.EfficientNetB0(input_shape=s, weights=None, classes=10,
                                                  classifier_activation=None), 32),
    "Xception": (lambda s: A.Xception(input_shape=s, weights=None, classes=10, classifier_activation=None), 71),
    "ConvNeXtTiny": (lambda s: A.ConvNeXtTiny(input_shape=s, weights=None, classes=10,
                                              classifier_activation=None), 32),
}
SLOW = {"Xception", "ConvNeXtTiny", "EfficientNetB0"}


def build(name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    make, side = FAMILIES[name]
    model = make((side, side, 3))
    randomize(model, L)  # bench/families.py's: the table and this test see the same weights
    return model


def request(model: keras.Model, sparsity: float) -> PruneRequest:
    values = model.get_weights()
    weights = {pw.key: values[pw.index] for pw in find_prunable(model)}
    return PruneRequest(weights=weights, sparsity={k: sparsity for k in weights}, scope="layer", model=model)


def params(name: str):
    return pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name


@pytest.mark.parametrize("name", [params(n) for n in FAMILIES])
def test_family_prunes_with_masks_and_exact_surgery(name):
    model = build(name)
    side = FAMILIES[name][1]
    x = np.random.default_rng(2).normal(size=(2, side, side, 3)).astype(np.float32)
    req = request(model, 0.5)

    masks = METHODS["magnitude"].prune(req).masks
    assert {k: int(m.sum()) for k, m in masks.items()} == {k: keep_count(w.size, 0.5) for k, w in req.weights.items()}

    result = METHODS["filters-l1"].prune(req)
    new = result.model
    # a structured prune at 0.5 that quietly removed almost nothing (Xception's 0.05 %) fails here
    assert new.count_params() < 0.75 * model.count_params(), result.notes
    # the keep sets back out of the masks: a producer's kernel columns that survive
    graph = ChannelGraph(model)
    keep = graph.keep_from_masks(result.masks)
    original = model(x).numpy()
    reference_weights = graph.zeroed_weights(keep)
    dense_weights = model.get_weights()
    model.set_weights(reference_weights)
    reference = model(x).numpy()
    model.set_weights(dense_weights)
    pruned = new(x).numpy()
    scale = np.abs(reference).max()
    assert np.abs(pruned - reference).max() <= 1e-4 * scale
    assert np.abs(original - reference).max() > 1e-3 * scale  # removing channels changed the outputs
    if name == "EfficientNetB0":  # squeeze-and-excite's Reshape((1, 1, C)) carries the kept channels
        shapes = {l.name: l.target_shape for l in model.layers if isinstance(l, L.Reshape)}
        shrunk = {l.name for l in new.layers if l.name in shapes and l.target_shape[-1] < shapes[l.name][-1]}
        assert len(shapes) == 16 and shrunk == set(shapes), sorted(set(shapes) - shrunk)
    if name == "RegNetX002":  # its grouped convolutions lose whole groups, not only the residual streams
        groups = {l.name: l.groups for l in model.layers if isinstance(l, L.Conv2D) and l.groups > 1}
        shrunk = {l.name for l in new.layers if l.name in groups and l.groups < groups[l.name]}
        assert len(shrunk) == len(groups), sorted(set(groups) - shrunk)
