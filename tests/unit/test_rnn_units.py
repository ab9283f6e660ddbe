"""A text model (Embedding -> Conv1D -> GRU -> Dense) prunes with masks and with gru-units.

Removed GRU units read as zero: their recurrent rows and the next layer's rows zeroed give the
pruned model's outputs, in both bias layouts (reset_after). Bidirectional RNNs take masks.
"""
from __future__ import annotations

import numpy as np
import pytest

from pruning._keras import keras
from pruning.core.masks import keep_count
from pruning.core.prunable import find_prunable
from pruning.errors import BadInput
from pruning.methods import METHODS, PruneRequest

L = keras.layers
TOKENS = np.random.default_rng(0).integers(0, 50, (6, 12))


def text_model(reset_after: bool = True, recurrent=None) -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = L.Input((12,), dtype="int32")
    x = L.Embedding(50, 8, name="emb")(inputs)
    x = L.Conv1D(6, 3, activation="relu", name="conv")(x)
    x = (recurrent or L.GRU(5, reset_after=reset_after, name="gru"))(x)
    model = keras.Model(inputs, L.Dense(3, name="out")(x))
    # nonzero biases: a removed unit that leaked would show
    model.set_weights([w + 0.1 if "bias" in v.name else w for v, w in zip(model.weights, model.get_weights())])
    return model


def run(name: str, model: keras.Model, sparsity: float):
    values = model.get_weights()
    weights = {pw.key: values[pw.index] for pw in find_prunable(model)}
    return weights, METHODS[name].prune(
        PruneRequest(weights=weights, sparsity={k: sparsity for k in weights}, scope="layer", model=model))


def test_masks_prune_the_embedding_table_too():
    model = text_model()
    weights, result = run("magnitude", model, 0.5)
    assert list(weights) == ["emb/embeddings", "conv/kernel", "gru/kernel", "gru/recurrent_kernel", "out/kernel"]
    assert {k: int(m.sum()) for k, m in result.masks.items()} == {k: keep_count(w.size, 0.5) for k, w in weights.items()}


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_units_remove_whole_units_exactly(reset_after):
    model = text_model(reset_after)
    _, result = run("gru-units", model, 0.4)  # keep round(5 * 0.6) = 3 units
    gru = result.model.get_layer("gru")
    bias = (2, 9) if reset_after else (9,)
    assert [tuple(w.shape) for w in gru.weights] == [(6, 9), (3, 9), bias]
    assert tuple(result.model.get_layer("out").kernel.shape) == (3, 3)
    # the units kept are the ones with the largest L1 norm over their gates' columns
    kernel, recurrent, _ = model.get_layer("gru").get_weights()
    norms = sum(np.abs(w.reshape(w.shape[0], 3, 5)).sum(axis=(0, 1)) for w in (kernel, recurrent))
    kept = np.sort(np.argsort(-norms)[:3])
    removed = np.setdiff1d(np.arange(5), kept)
    columns = np.concatenate([g * 5 + kept for g in range(3)])
    np.testing.assert_array_equal(gru.get_weights()[0], kernel[:, columns])

    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    k, r, b = reference.get_layer("gru").get_weights()
    r[removed, :] = 0.0  # a removed unit's state reaches no other unit
    reference.get_layer("gru").set_weights([k, r, b])
    w, c = reference.get_layer("out").get_weights()
    w[removed, :] = 0.0  # ... nor the next layer
    reference.get_layer("out").set_weights([w, c])
    np.testing.assert_allclose(result.model(TOKENS).numpy(), reference(TOKENS).numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(model(TOKENS).numpy() - reference(TOKENS).numpy()).max() > 1e-3


def test_rnn_units_shrink_a_simple_rnn():
    model = text_model(recurrent=L.SimpleRNN(4, name="rnn"))
    _, result = run("rnn-units", model, 0.5)
    assert [tuple(w.shape) for w in result.model.get_layer("rnn").weights] == [(6, 2), (2, 2), (2,)]


def test_bidirectional_rnns_take_masks_but_not_unit_surgery():
    model = text_model(recurrent=L.Bidirectional(L.GRU(4), name="bi"))
    weights, result = run("magnitude", model, 0.5)
    assert [k for k in weights if "gru" in k] == ["forward_gru/kernel", "forward_gru/recurrent_kernel",
                                                  "backward_gru/kernel", "backward_gru/recurrent_kernel"]
    assert {k: int(m.sum()) for k, m in result.masks.items()} == {k: keep_count(w.size, 0.5) for k, w in weights.items()}
    with pytest.raises(BadInput, match="gru-units found nothing to remove"):
        run("gru-units", model, 0.5)
