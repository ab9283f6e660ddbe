"""Which channels each structured criterion removes, on weights built so the answer is known.

APoZ on controlled ReLU activations, bn-scale on set gammas, LSTM units on set norms, and
FPGM against L1 on filters where they disagree; one graph per prune.
"""
from __future__ import annotations

import numpy as np
import pytest

from pruning._keras import keras
from pruning.core.prunable import find_prunable
from pruning.core.surgery import find_groups
from pruning.methods import METHODS, PruneRequest
from pruning.methods.apoz import apoz
from pruning.model.datasets import Dataset

L = keras.layers


def run(name, model, sparsity, data=None):
    weights = {pw.key: model.get_weights()[pw.index] for pw in find_prunable(model)}
    req = PruneRequest(weights=weights, sparsity={k: sparsity for k in weights}, scope="layer",
                       model=model, data=data)
    return METHODS[name].prune(req)


def test_apoz_removes_the_units_most_often_zero():
    model = keras.Sequential([L.Input((3,)), L.Dense(4, activation="relu", name="h"), L.Dense(2, name="o")])
    kernel = np.zeros((3, 4), np.float32)
    kernel[0, 2:] = 1.0
    # unit 0 never fires, unit 1 always, units 2 and 3 when x0 exceeds 0.25 / 0.75
    model.get_layer("h").set_weights([kernel, np.array([-1.0, 1.0, -0.25, -0.75], np.float32)])
    x = np.random.default_rng(0).random((300, 3)).astype(np.float32)
    x[:, 0] = np.random.default_rng(1).permutation(np.linspace(0.0, 1.0, 300))
    data = Dataset("synthetic", x[:10], np.zeros(10, np.int64), x, np.zeros(300, np.int64), 2)

    fractions = apoz(PruneRequest(weights={}, sparsity={}, scope="layer", model=model, data=data),
                     find_groups(model))
    expected = [1.0, 0.0, np.mean(x[:, 0] <= 0.25), np.mean(x[:, 0] <= 0.75)]
    np.testing.assert_allclose(fractions["h"], expected)

    result = run("apoz", model, 0.5, data)
    np.testing.assert_array_equal(result.model.get_layer("h").get_weights()[1], [1.0, -0.25])
    assert tuple(result.model.get_layer("o").kernel.shape) == (2, 2)


def test_bn_scale_keeps_the_largest_abs_gamma():
    keras.utils.set_random_seed(1)
    inputs = L.Input((5, 5, 2))
    x = L.Conv2D(4, 3, name="conv")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, L.Dense(3, name="out")(x))
    gamma = np.array([0.5, -2.0, 0.1, 1.0], np.float32)
    model.get_layer("bn").set_weights([gamma, np.zeros(4), np.zeros(4), np.ones(4)])
    result = run("bn-scale", model, 0.5)
    np.testing.assert_array_equal(result.model.get_layer("bn").gamma.numpy(), [-2.0, 1.0])
    np.testing.assert_array_equal(result.model.get_layer("conv").kernel.numpy(),
                                  model.get_layer("conv").kernel.numpy()[..., [1, 3]])


def test_bn_scale_prunes_the_squeeze_and_excite_cnn_through_its_reshape():
    """The browser test's SE-CNN (Dense gate -> Reshape((1, 1, 8)) -> Multiply): conv and the gate's
    Dense lose the same filters, the Reshape's target follows, conv_2 (no BatchNorm) keeps its 8."""
    from e2e.own_models import build_cnn

    keras.utils.set_random_seed(2)
    model = build_cnn(keras)
    gamma = np.array([0.9, 0.1, 1.5, 0.2, 0.3, 1.2, 0.05, 1.1], np.float32)
    model.get_layer("bn").set_weights([gamma, np.zeros(8), np.zeros(8), np.ones(8)])
    result = run("bn-scale", model, 0.5)
    pruned = result.model
    assert (pruned.get_layer("conv").filters, pruned.get_layer("excite").units) == (4, 4)
    assert tuple(pruned.get_layer("gate_shape").target_shape) == (1, 1, 4)
    assert tuple(pruned.get_layer("conv_2").kernel.shape) == (3, 3, 4, 8)
    assert tuple(pruned.get_layer("reduce").kernel.shape) == (4, 4)  # its inputs: the 4 kept channels
    np.testing.assert_array_equal(pruned.get_layer("bn").gamma.numpy(), gamma[[0, 2, 5, 7]])
    assert result.notes[0] == "residual groups pruned together: conv + excite (joined by Add or Multiply): 8 -> 4"
    assert "not pruned: conv_2: no BatchNorm with a scale follows these filters" in result.notes


def test_lstm_units_removes_whole_units_by_l1_norm():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([L.Input((6, 3)), L.LSTM(4, name="lstm"), L.Dense(2, name="out")])
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    scale = np.tile([1.0, 3.0, 0.5, 2.0], 4)  # unit u owns column g * 4 + u in each gate g
    model.get_layer("lstm").set_weights([np.ones_like(kernel) * scale, np.ones_like(recurrent) * scale, bias])
    result = run("lstm-units", model, 0.5)
    columns = [g * 4 + u for g in range(4) for u in (1, 3)]
    new_kernel, new_recurrent, new_bias = result.model.get_layer("lstm").get_weights()
    np.testing.assert_array_equal(new_kernel, model.get_layer("lstm").get_weights()[0][:, columns])
    np.testing.assert_array_equal(new_recurrent, model.get_layer("lstm").get_weights()[1][[1, 3]][:, columns])
    np.testing.assert_array_equal(new_bias, bias[columns])
    np.testing.assert_array_equal(result.model.get_layer("out").kernel.numpy(),
                                  model.get_layer("out").kernel.numpy()[[1, 3]])


@pytest.mark.parametrize("name, removed", [("filters-l1", 0), ("filters-l2", 0), ("filters-fpgm", 1)])
def test_fpgm_removes_the_median_filter_where_norms_remove_the_smallest(name, removed):
    inputs = L.Input((4, 4, 2))
    x = L.Conv2D(3, 1, use_bias=False, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, L.Dense(2, name="out")(L.Flatten(name="flat")(x)))
    # filters at 1, 5 and 9 on one axis: smallest norm is filter 0, nearest the median filter 1
    model.get_layer("conv").set_weights([np.array([[[[1.0, 5.0, 9.0], [0.0, 0.0, 0.0]]]], np.float32)])
    result = run(name, model, 0.34)  # keep round(3 * 0.66) = 2 of 3
    kept = result.model.get_layer("conv").kernel.numpy()[0, 0, 0]
    assert sorted(kept) == sorted(np.delete([1.0, 5.0, 9.0], removed))


@pytest.mark.parametrize("name", ["filters-l1", "neurons"])
def test_one_structured_prune_builds_the_graph_once(name, monkeypatch):
    from pruning.core import surgery

    built = []
    build = surgery.ChannelGraph.__init__

    def counting(self, model):
        built.append(model)
        build(self, model)

    monkeypatch.setattr(surgery.ChannelGraph, "__init__", counting)
    keras.utils.set_random_seed(3)
    inputs = L.Input((6, 6, 2))
    x = L.Flatten(name="flat")(L.Conv2D(4, 3, name="conv")(inputs))
    model = keras.Model(inputs, L.Dense(2, name="out")(L.Dense(6, name="hidden")(x)))
    result = run(name, model, 0.5)
    # groups, the smaller model and its masks all come from one graph of the input model
    assert len(built) == 1 and built[0] is model
    assert result.model.count_params() < model.count_params()


def test_a_structured_prune_far_short_of_its_target_says_so():
    from pruning.run.prune import _shortfall_notes

    request = PruneRequest(weights={}, sparsity={"a/kernel": 0.5, "b/kernel": 0.5}, scope="layer")
    (note,) = _shortfall_notes(METHODS["filters-l1"], request, 0.0095)
    assert note.startswith("filters-l1 reached 0.9% of the requested 50%: ")
    assert _shortfall_notes(METHODS["filters-l1"], request, 0.3) == ()  # at least half way: no note
