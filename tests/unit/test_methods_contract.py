"""Every registered method: new masks or a new model, input untouched, target reached exactly.

One tiny seeded model holds every kind of prunable layer (Conv with and without BatchNorm,
LSTM, GRU, SimpleRNN, Dense after a Concatenate), so each method has something to prune.
"""
from __future__ import annotations

import numpy as np
import pytest

from pruning._keras import keras
from pruning.core.masks import keep_count
from pruning.core.prunable import find_prunable
from pruning.methods import METHODS, PruneRequest
from pruning.model.baselines import weights_checksum
from pruning.model.datasets import Dataset

SPARSITY = 0.5
L = keras.layers


def build_model():
    keras.utils.set_random_seed(3)
    inputs = L.Input((8, 8, 1))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = L.Conv2D(6, 3, padding="same", name="conv_b")(x)
    x = L.BatchNormalization(name="bn_b")(x)
    x = L.ReLU(name="relu_b")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    rows = L.Reshape((8, 8), name="rows")(inputs)
    recurrent = [L.LSTM(4, name="lstm")(rows), L.GRU(4, name="gru")(rows), L.SimpleRNN(4, name="srnn")(rows)]
    x = L.Concatenate(name="cat")([x, *recurrent])
    x = L.Dense(12, activation="relu", name="hidden")(x)
    outputs = L.Dense(4, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs, name="contract")
    # BatchNorm with real statistics, and distinct gammas so bn-scale has no ties
    model.get_layer("bn_b").set_weights([np.linspace(0.2, 1.4, 6), np.linspace(-0.1, 0.1, 6),
                                         np.linspace(-0.2, 0.2, 6), np.linspace(0.5, 1.5, 6)])
    return model


def build_data() -> Dataset:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 192)
    x = rng.normal(0.0, 0.2, (192, 8, 8, 1)).astype(np.float32)
    for k in range(4):  # class k lights up quadrant k: learnable, so gradients are informative
        r, c = divmod(k, 2)
        x[y == k, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4, 0] += 1.0
    return Dataset("synthetic", x[128:], y[128:], x[:128], y[:128], 4)


@pytest.fixture(scope="module")
def setup():
    model, data = build_model(), build_data()
    weights = {}
    for pw in find_prunable(model):
        w = model.get_weights()[pw.index].copy()
        w.setflags(write=False)  # a method writing into its input fails loudly
        weights[pw.key] = w
    return model, data, weights


def request_for(method, model, data, weights) -> PruneRequest:
    scope = "layer" if "layer" in method.scopes else method.scopes[0]
    return PruneRequest(weights=weights, sparsity={k: SPARSITY for k in weights}, scope=scope, seed=0,
                        model=model, data=data, finetune_epochs=1)


# Channels left per producer layer for the structured methods: (4, 6, 4, 4, 4, 12) at 0.5 keep
# (2, 3, 2, 2, 2, 6); a method leaves the groups it does not rank at their size.
FULL = {"conv_a": 4, "conv_b": 6, "lstm": 4, "gru": 4, "srnn": 4, "hidden": 12}
HALF = {name: keep_count(n, SPARSITY) for name, n in FULL.items()}
STRUCTURED = {
    "filters-l1": {**FULL, "conv_a": HALF["conv_a"], "conv_b": HALF["conv_b"]},
    "filters-l2": {**FULL, "conv_a": HALF["conv_a"], "conv_b": HALF["conv_b"]},
    "filters-fpgm": {**FULL, "conv_a": HALF["conv_a"], "conv_b": HALF["conv_b"]},
    "bn-scale": {**FULL, "conv_b": HALF["conv_b"]},  # conv_a has no BatchNorm after it
    "neurons": {**FULL, "hidden": HALF["hidden"]},
    "lstm-units": {**FULL, "lstm": HALF["lstm"]},
    "gru-units": {**FULL, "gru": HALF["gru"]},
    "rnn-units": {**FULL, "srnn": HALF["srnn"]},
    "apoz": {**FULL, "conv_a": HALF["conv_a"], "conv_b": HALF["conv_b"], "hidden": HALF["hidden"]},
}


def channels(model) -> dict[str, int]:
    return {name: int(model.get_layer(name).output_shape[-1]) for name in FULL}


@pytest.mark.parametrize("name", list(METHODS))
def test_method_contract(setup, name):
    model, data, weights = setup
    method = METHODS[name]
    before = weights_checksum(model.get_weights())
    result = method.prune(request_for(method, model, data, weights))

    assert weights_checksum(model.get_weights()) == before, "the method changed its input model"
    if method.granularity == "structured":
        assert result.model is not None and result.model is not model
        assert channels(result.model) == STRUCTURED[name]
        assert result.model.output_shape == model.output_shape
        # the masks say which original weights survive: exactly as many as the new kernels hold
        new = {pw.key: pw for pw in find_prunable(result.model)}
        assert {k: int(m.sum()) for k, m in result.masks.items()} == {k: new[k].size for k in weights}
        return
    if result.model is not None:  # gradual: a retrained copy with the same shapes
        assert result.model is not model
        assert set(v.ref() for v in result.model.weights).isdisjoint(v.ref() for v in model.weights)
        current = {pw.key: result.model.get_weights()[pw.index] for pw in find_prunable(result.model)}
        zeros = {k: int((w == 0).sum()) for k, w in current.items()}
    else:
        assert result.masks is not None and set(result.masks) == set(weights)
        assert all(m.dtype == bool and m.shape == weights[k].shape for k, m in result.masks.items())
        zeros = {k: int((~m).sum()) for k, m in result.masks.items()}
    if name == "lamp":  # one global ranking, whatever the scope
        total = sum(w.size for w in weights.values())
        assert sum(zeros.values()) == total - keep_count(total, SPARSITY)
    elif name == "nm":  # 2:4 wherever the input channels are a multiple of 4: all but conv_a (1)
        expected = {k: (0 if w.shape[-2] % 4 else w.size // 2) for k, w in weights.items()}
        assert zeros == expected
        assert [k for k, n in expected.items() if n == 0] == ["conv_a/kernel"]
        assert any("conv_a/kernel" in note for note in result.notes)
    else:
        assert zeros == {k: w.size - keep_count(w.size, SPARSITY) for k, w in weights.items()}


# methods that train (gradual) are left out: their zero test is the exact count above
@pytest.mark.parametrize("name", [n for n, m in METHODS.items()
                                  if m.granularity != "structured" and "training" not in m.needs])
def test_sparsity_zero_keeps_every_weight(setup, name):
    model, data, weights = setup
    method = METHODS[name]
    request = request_for(method, model, data, weights)
    request = PruneRequest(**{**request.__dict__, "sparsity": {k: 0.0 for k in weights}})
    assert all(m.all() for m in method.prune(request).masks.values())


def test_structured_at_zero_keeps_every_channel(setup):
    model, data, weights = setup
    request = request_for(METHODS["filters-l1"], model, data, weights)
    request = PruneRequest(**{**request.__dict__, "sparsity": {k: 0.0 for k in weights}})
    result = METHODS["filters-l1"].prune(request)
    x = data.x_test[:16]
    assert channels(result.model) == FULL
    np.testing.assert_array_equal(result.model(x).numpy(), model(x).numpy())
