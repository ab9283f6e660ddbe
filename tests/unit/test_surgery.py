"""Structured surgery is exact: nothing removed = identical; removed = read as zero.

Tiny seeded models: a plain conv net, a residual net with BatchNorm, stacked LSTMs, the
zoo's resnet20, whose Add-joined convs must lose the same filters, a squeeze-and-excite block
through Reshapes, and one model per entry of the layer handler table.
"""
from __future__ import annotations

import numpy as np
import pytest

from pruning._keras import keras
from pruning.core.layer_handlers import (
    LAYER_HANDLERS,
    CustomScaleLayer,
    LayerScale,
    StochasticDepth,
    TFOpLambda,
)
from pruning.core.masks import keep_count
from pruning.core.prunable import find_prunable
from pruning.core.surgery import find_groups, kept_masks, prune_channels
from pruning.methods import METHODS, PruneRequest

L = keras.layers
X = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype(np.float32)


def build_plain():
    keras.utils.set_random_seed(1)
    inputs = L.Input((6, 6, 2))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    x = L.Conv2D(5, 3, padding="same", activation="relu", name="b")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(6, activation="relu", name="d")(x)
    outputs = L.Dense(3, name="out")(x)
    model = keras.Model(inputs, outputs)
    # nonzero biases, so a removed channel would show if it leaked through
    model.set_weights([w + 0.1 if w.ndim == 1 else w for w in model.get_weights()])
    return model


def build_residual():
    keras.utils.set_random_seed(2)
    inputs = L.Input((6, 6, 2))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    y = L.Conv2D(4, 3, padding="same", name="b1")(x)
    y = L.BatchNormalization(name="b1_bn")(y)
    y = L.Activation("relu", name="b1_relu")(y)
    y = L.Conv2D(4, 3, padding="same", name="b2")(y)
    y = L.BatchNormalization(name="b2_bn")(y)
    x = L.Add(name="add")([x, y])
    x = L.ReLU(name="add_relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(3, name="out")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(5)
    for name in ("stem_bn", "b1_bn", "b2_bn"):  # real statistics: BN(0) != 0 for every channel
        model.get_layer(name).set_weights([rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.3, 4),
                                           rng.normal(0, 0.3, 4), rng.uniform(0.5, 2.0, 4)])
    return model


def zero_inputs(model, rows: dict[str, tuple[int, np.ndarray]]):
    """A copy of `model` whose listed consumers read zero from the given input channels."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name, (axis, removed) in rows.items():
        weights = copy.get_layer(name).get_weights()
        index = [slice(None)] * weights[0].ndim
        index[axis] = removed
        weights[0][tuple(index)] = 0.0
        copy.get_layer(name).set_weights(weights)
    return copy


@pytest.mark.parametrize("build", [build_plain, build_residual])
def test_removing_nothing_is_bit_identical(build):
    model = build()
    for keep in ({}, {g.producers[0]: np.arange(g.size) for g in find_groups(model)}):
        new = prune_channels(model, keep)
        np.testing.assert_array_equal(new(X).numpy(), model(X).numpy())
        assert new.count_params() == model.count_params()


def test_removed_channels_equal_zeroed_inputs():
    model = build_plain()
    keep = {"a": [0, 2], "b": [1, 3, 4], "d": [0, 1, 3, 5]}
    new = prune_channels(model, keep)
    assert [tuple(new.get_layer(n).kernel.shape) for n in ("a", "b", "d", "out")] == [
        (3, 3, 2, 2), (3, 3, 2, 3), (3 * 3 * 3, 4), (4, 3)]
    # Flatten puts channel c of position p at row p * 5 + c: rows of b's channels 0 and 2 go
    flat_rows = np.array([p * 5 + c for p in range(9) for c in (0, 2)])
    reference = zero_inputs(model, {"b": (2, [1, 3]), "d": (0, flat_rows), "out": (0, [2, 4])})
    np.testing.assert_allclose(new(X).numpy(), reference(X).numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(model(X).numpy() - reference(X).numpy()).max() > 1e-3  # removing changed something


def test_add_group_is_pruned_together():
    model = build_residual()
    groups = {g.producers: g for g in find_groups(model)}
    assert set(groups) == {("stem", "b2"), ("b1",)}
    joined = groups[("stem", "b2")]
    assert joined.joined and joined.size == 4 and joined.kind == "conv"
    assert joined.batchnorms == ("stem_bn", "b2_bn")
    assert joined.relu_outputs == ("stem_relu", "add_relu")
    assert groups[("b1",)].relu_outputs == ("b1_relu",)

    new = prune_channels(model, {"b2": [0, 3]})  # naming one member prunes the whole group
    shapes = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in new.layers if layer.weights}
    assert shapes["stem"] == [(3, 3, 2, 2)]
    assert shapes["b1"] == [(3, 3, 2, 4), (4,)]
    assert shapes["b2"] == [(3, 3, 4, 2), (2,)]
    assert all(s == (2,) for s in shapes["stem_bn"] + shapes["b2_bn"])
    assert shapes["out"] == [(2, 3), (3,)]
    # BatchNorm after a removed filter is not zero, but nothing reads it any more
    reference = zero_inputs(model, {"b1": (2, [1, 2]), "out": (0, [1, 2])})
    np.testing.assert_allclose(new(X).numpy(), reference(X).numpy(), rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match="joined"):
        prune_channels(model, {"stem": [0, 1], "b2": [0, 3]})
    with pytest.raises(ValueError, match="cannot be removed|not a layer"):
        prune_channels(model, {"out": [0]})


def test_lstm_units_go_with_gates_recurrent_rows_and_next_inputs():
    keras.utils.set_random_seed(4)
    inputs = L.Input((5, 3))
    x = L.LSTM(6, return_sequences=True, name="l1")(inputs)
    x = L.LSTM(4, name="l2")(x)
    outputs = L.Dense(2, name="out")(x)
    model = keras.Model(inputs, outputs)
    new = prune_channels(model, {"l1": [0, 2, 3, 5]})
    l1 = new.get_layer("l1")
    assert [tuple(w.shape) for w in l1.weights] == [(3, 16), (4, 16), (16,)]
    assert tuple(new.get_layer("l2").cell.kernel.shape) == (4, 16)
    # a removed unit reads as zero when its recurrent rows and the next layer's rows are zero
    reference = zero_inputs(model, {"l2": (0, [1, 4])})
    recurrent = reference.get_layer("l1").get_weights()
    recurrent[1][[1, 4], :] = 0.0
    reference.get_layer("l1").set_weights(recurrent)
    x = np.random.default_rng(1).normal(size=(4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(new(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)


def test_kept_masks_match_the_new_shapes():
    model = build_residual()
    keep = {"stem": [1, 2], "b1": [0]}
    masks = kept_masks(model, keep)
    new = {pw.key: pw.shape for pw in find_prunable(prune_channels(model, keep))}
    assert {k: int(m.sum()) for k, m in masks.items()} == {k: int(np.prod(s)) for k, s in new.items()}
    assert masks["b1/kernel"][:, :, [1, 2], 0].all() and not masks["b1/kernel"][:, :, 0, :].any()


def test_pruned_model_saves_and_reloads_without_custom_objects(tmp_path):
    model = build_residual()
    new = prune_channels(model, {"stem": [0, 1], "b1": [2]})
    path = tmp_path / "pruned.keras"
    new.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    assert type(loaded) is type(keras.Model(model.inputs, model.outputs))  # plain functional
    assert all(type(layer).__module__.startswith("tf_keras") for layer in loaded.layers)
    np.testing.assert_array_equal(loaded(X).numpy(), new(X).numpy())


def test_sequential_becomes_a_functional_chain():
    keras.utils.set_random_seed(6)
    model = keras.Sequential([L.Input((4,)), L.Dense(8, activation="relu", name="h"), L.Dense(2, name="o")])
    new = prune_channels(model, {"h": [1, 5, 6]})
    assert tuple(new.get_layer("h").kernel.shape) == (4, 3)
    reference = zero_inputs(model, {"o": (0, [0, 2, 3, 4, 7])})
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(new(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["filters-l1", "bn-scale"])
def test_resnet20_prunes_with_add_groups_together(method):
    from pruning.model.zoo import build_resnet20

    keras.utils.set_random_seed(0)
    model = build_resnet20((8, 8, 1), 10)
    weights = {pw.key: model.get_weights()[pw.index] for pw in find_prunable(model)}
    request = PruneRequest(weights=weights, sparsity={k: 0.5 for k in weights}, scope="layer", model=model)
    result = METHODS[method].prune(request)
    filters = {layer.name: layer.filters for layer in result.model.layers if isinstance(layer, L.Conv2D)}
    # every conv, joined or not, keeps half its filters; joined ones keep the same half
    original = {layer.name: layer.filters for layer in model.layers if isinstance(layer, L.Conv2D)}
    assert filters == {name: keep_count(n, 0.5) for name, n in original.items()}
    joined = [g for g in find_groups(model) if g.joined]
    assert [len(g.producers) for g in joined] == [4, 4, 4]
    for group in joined:
        kept = [np.flatnonzero(result.masks[f"{p}/kernel"].reshape(-1, group.size).any(axis=0))
                for p in group.producers]
        assert all(np.array_equal(kept[0], k) for k in kept[1:])
    assert any("joined by Add" in note for note in result.notes)
    x = np.random.default_rng(3).random((2, 8, 8, 1)).astype(np.float32)
    assert result.model(x).shape == (2, 10)


# -- every entry of the handler table, on a model where it sits between a pruned layer and "out"
CONV = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}
POOL = {1: L.GlobalAveragePooling1D, 2: L.GlobalAveragePooling2D, 3: L.GlobalAveragePooling3D}
SHAPE = {1: (6, 2), 2: (6, 6, 2), 3: (4, 4, 4, 2)}
KEEP = {"p": [0, 2]}  # p has 4 channels: 1 and 3 go


def chain(make, rank=2, shape=None):
    """Input -> conv "p" (unless `make` builds "p" itself) -> the layer -> global pooling -> Dense "out"."""
    keras.utils.set_random_seed(7)
    inputs = L.Input(shape or SHAPE[rank])
    layer = make()
    x = layer(inputs if layer.name == "p" else CONV[rank](4, 1, name="p")(inputs))
    if len(x.shape) > 2:
        x = POOL[rank](name="pool")(x)
    return keras.Model(inputs, L.Dense(3, name="out")(x)), {"out": (0, [1, 3])}


def joined(merge):
    """Two convs joined by `merge`, then pooling and "out"; naming p prunes q too, unless concatenated."""
    keras.utils.set_random_seed(8)
    inputs = L.Input(SHAPE[2])
    x = merge([L.Conv2D(4, 1, name="p")(inputs), L.Conv2D(4, 1, name="q")(inputs)])
    return keras.Model(inputs, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="pool")(x))), {"out": (0, [1, 3])}


def flattened():
    keras.utils.set_random_seed(9)
    inputs = L.Input(SHAPE[2])
    x = L.Flatten(name="flat")(L.Conv2D(4, 3, name="p")(inputs))
    return keras.Model(inputs, L.Dense(3, name="out")(x)), {"out": (0, [p * 4 + c for p in range(16) for c in (1, 3)])}


def into_lstm():
    # p's removed channels feed the LSTM's kernel rows; losing LSTM units is the test above
    keras.utils.set_random_seed(10)
    inputs = L.Input((5, 3))
    x = L.LSTM(3, name="lstm")(L.Dense(4, name="p")(inputs))
    return keras.Model(inputs, L.Dense(3, name="out")(x)), {"lstm": (0, [1, 3])}


def into_rnn(rnn):
    def make():
        keras.utils.set_random_seed(10)
        inputs = L.Input((5, 3))
        x = rnn(3, name="rnn")(L.Dense(4, name="p")(inputs))
        return keras.Model(inputs, L.Dense(3, name="out")(x)), {"rnn": (0, [1, 3])}
    return make


def into_separable(rank):
    # p's removed channels are the separable conv's depthwise input channels (and pointwise rows)
    def make():
        keras.utils.set_random_seed(11)
        inputs = L.Input(SHAPE[rank])
        sep = {1: L.SeparableConv1D, 2: L.SeparableConv2D}[rank]
        x = sep(3, 3, padding="same", depth_multiplier=2, name="sep")(CONV[rank](4, 1, name="p")(inputs))
        return keras.Model(inputs, L.Dense(3, name="out")(POOL[rank](name="pool")(x))), {"sep": (rank, [1, 3])}
    return make


def tf_ops():
    """`relu6(p * q + 3) / 6` of two convs: TF-op layers, tensor operands merging p with q."""
    from pruning._keras import tf

    keras.utils.set_random_seed(12)
    inputs = L.Input(SHAPE[2])
    x = L.Conv2D(4, 1, name="p")(inputs) * L.Conv2D(4, 1, name="q")(inputs)
    x = tf.nn.relu6(x + 3.0) / 6.0
    assert sum(isinstance(layer, TFOpLambda) for layer in keras.Model(inputs, x).layers) == 4
    return keras.Model(inputs, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="pool")(x))), {"out": (0, [1, 3])}


def layer_scaled():
    model, zeroed = chain(lambda: LayerScale(0.5, 4, name="scale"))
    scale = model.get_layer("scale")
    scale.set_weights([np.linspace(0.5, 2.0, 4)])
    return model, zeroed


# layers whose output channel c comes from input channel c only: (type, rank, arguments)
ONE_TO_ONE = [
    (L.Activation, 2, {"activation": "relu"}), (L.ReLU, 2, {}), (L.LeakyReLU, 2, {}), (L.ELU, 2, {}),
    (L.ThresholdedReLU, 2, {}), (L.Dropout, 2, {"rate": 0.5}), (L.SpatialDropout1D, 1, {"rate": 0.5}),
    (L.SpatialDropout2D, 2, {"rate": 0.5}), (L.SpatialDropout3D, 3, {"rate": 0.5}),
    (L.GaussianNoise, 2, {"stddev": 0.5}), (L.GaussianDropout, 2, {"rate": 0.5}), (L.AlphaDropout, 2, {"rate": 0.5}),
    (L.ActivityRegularization, 2, {}), (L.Resizing, 2, {"height": 3, "width": 3}),
    (L.BatchNormalization, 2, {}), (L.DepthwiseConv2D, 2, {"kernel_size": 3, "padding": "same"}),
] + [(getattr(L, f"{name}{d}D"), d, {}) for d in (1, 2, 3) for name in (
    "MaxPooling", "AveragePooling", "GlobalAveragePooling", "GlobalMaxPooling", "ZeroPadding", "Cropping",
    "UpSampling")]
LAYER_CASES = {
    **{t: (lambda t=t, d=d, kw=kw: chain(lambda: t(**kw), d)) for t, d, kw in ONE_TO_ONE},
    **{CONV[d]: (lambda d=d: chain(lambda: CONV[d](4, 3, name="p"), d)) for d in (1, 2, 3)},
    L.Dense: lambda: chain(lambda: L.Dense(4, name="p"), shape=(5,)),
    L.LSTM: into_lstm,
    L.GRU: into_rnn(L.GRU),
    L.SimpleRNN: into_rnn(L.SimpleRNN),
    L.SeparableConv1D: into_separable(1),
    L.SeparableConv2D: into_separable(2),
    LayerScale: layer_scaled,
    StochasticDepth: lambda: chain(lambda: StochasticDepth(0.5)),
    TFOpLambda: tf_ops,
    L.Flatten: flattened,
    L.Reshape: lambda: chain(lambda: L.Reshape((3, 12, 4), name="regroup")),  # channels stay on the last axis
    **{t: (lambda t=t: joined(t())) for t in (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)},
    CustomScaleLayer: lambda: joined(CustomScaleLayer(0.3)),
    L.Concatenate: lambda: joined(L.Concatenate()),
}


def test_every_handler_table_entry_has_a_case():
    assert set(LAYER_CASES) == set(LAYER_HANDLERS)  # a new table entry needs a case here


@pytest.mark.parametrize("layer_type", list(LAYER_CASES), ids=lambda t: t.__name__)
def test_every_handler_table_entry_passes_channels_through(layer_type):
    model, zeroed = LAYER_CASES[layer_type]()
    new = prune_channels(model, KEEP)
    assert new.count_params() < model.count_params()
    reference = zero_inputs(model, zeroed)
    x = np.random.default_rng(4).normal(size=(4, *model.input_shape[1:])).astype(np.float32)
    np.testing.assert_allclose(new(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: L.LayerNormalization(),  # not in the table
    lambda: L.Activation("softmax"),  # in the table, but mixes channels
    lambda: L.DepthwiseConv2D(3, depth_multiplier=2),  # in the table, but changes the channel count
    lambda: L.Conv2D(8, 1, groups=2),  # grouped and wider than its input: its groups change width
    lambda: L.Lambda(lambda t: t * 2),  # a function we do not trace
    lambda: L.Reshape((6, 12, 2)),  # in the table, but splits each channel over two
], ids=["missing", "softmax", "depth_multiplier", "grouped_wider", "lambda", "reshape"])
def test_layers_the_table_cannot_slice_keep_their_channels(make):
    model, _ = chain(make)
    assert all("p" not in g.producers for g in find_groups(model))
    with pytest.raises(ValueError, match="cannot be removed"):
        prune_channels(model, KEEP)


def test_a_conv_with_one_channel_per_group_is_a_depthwise_conv():
    # ConvNeXt writes its depthwise convolutions as Conv2D(groups=C): channels go through it
    model, zeroed = chain(lambda: L.Conv2D(4, 3, padding="same", groups=4, name="dw"))
    new = prune_channels(model, KEEP)
    assert new.get_layer("dw").get_config()["groups"] == 2 and tuple(new.get_layer("dw").kernel.shape) == (3, 3, 1, 2)
    x = np.random.default_rng(5).normal(size=(4, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(new(x).numpy(), zero_inputs(model, zeroed)(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_broadcast_merge_keeps_the_channels():
    # squeeze-and-excite with one gate for all channels: (B, H, W, 4) * (B, 1, 1, 1) pairs no channels
    keras.utils.set_random_seed(13)
    inputs = L.Input(SHAPE[2])
    x = L.Conv2D(4, 1, name="p")(inputs)
    gate = L.Conv2D(1, 1, name="g")(L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x))
    x = L.Multiply(name="excite")([x, gate])
    model = keras.Model(inputs, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="pool")(x)))
    assert [g.producers for g in find_groups(model)] == []


def randomized(model, seed: int):
    """`model` with seeded random BatchNorm statistics and biases, so a removed channel would show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = int(layer.gamma.shape[0])
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.5, 2.0, n)])
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    return model


def build_squeeze_excite():
    """Conv "p" (4) -> BN -> ReLU, gated by GAP(keepdims) -> Reshape((4,)) -> Dense "reduce" (2) ->
    Dense "expand" (4, sigmoid) -> Reshape((1, 1, 4)) -> Multiply, then conv "q" -> pooling -> "out";
    nonzero biases and BatchNorm statistics."""
    keras.utils.set_random_seed(16)
    inputs = L.Input(SHAPE[2])
    x = L.ReLU(name="p_relu")(L.BatchNormalization(name="p_bn")(L.Conv2D(4, 3, padding="same", name="p")(inputs)))
    s = L.Reshape((4,), name="flat_gate")(L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x))
    s = L.Dense(4, activation="sigmoid", name="expand")(L.Dense(2, activation="relu", name="reduce")(s))
    x = L.Multiply(name="excite")([x, L.Reshape((1, 1, 4), name="gate")(s)])
    x = L.Conv2D(3, 3, padding="same", name="q")(x)
    model = keras.Model(inputs, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="pool")(x)))
    return randomized(model, 9)


def test_squeeze_and_excite_through_reshapes_is_exact():
    model = build_squeeze_excite()
    group = next(g for g in find_groups(model) if "p" in g.producers)
    assert (group.producers, group.kind, group.batchnorms) == (("p", "expand"), "conv", ("p_bn",))
    new = prune_channels(model, KEEP)
    assert tuple(new.get_layer("flat_gate").target_shape) == (2,) and tuple(new.get_layer("gate").target_shape) == (1, 1, 2)
    assert tuple(new.get_layer("expand").kernel.shape) == (2, 2) and tuple(new.get_layer("q").kernel.shape) == (3, 3, 2, 3)
    x = np.random.default_rng(10).normal(size=(4, 6, 6, 2)).astype(np.float32)
    # the removed channels 1 and 3 read as zero by both consumers: the gate's Dense and conv q
    reference = zero_inputs(model, {"reduce": (0, [1, 3]), "q": (2, [1, 3])})
    np.testing.assert_allclose(new(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(model(x).numpy() - reference(x).numpy()).max() > 1e-3  # the channels really mattered


def test_a_reshape_that_moves_channels_says_why():
    model, _ = chain(lambda: L.Reshape((6, 12, 2), name="split"))
    from pruning.core.surgery import ChannelGraph

    assert ChannelGraph(model).left_alone()[0] == (
        ("p",), "a Reshape (split): it reshapes (6, 6, 4) to (6, 12, 2): the channels do not stay whole on the last axis")


def test_a_reshape_to_one_axis_is_a_flatten():
    keras.utils.set_random_seed(17)
    inputs = L.Input(SHAPE[2])
    x = L.Reshape((-1,), name="flat")(L.Conv2D(4, 3, name="p")(inputs))
    model = keras.Model(inputs, L.Dense(3, name="out")(x))
    new = prune_channels(model, KEEP)
    assert tuple(new.get_layer("flat").target_shape) == (32,) and tuple(new.get_layer("out").kernel.shape) == (32, 3)
    x = np.random.default_rng(11).normal(size=(4, 6, 6, 2)).astype(np.float32)
    reference = zero_inputs(model, {"out": (0, [p * 4 + c for p in range(16) for c in (1, 3)])})
    np.testing.assert_allclose(new(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)


def build_grouped():
    """RegNet's block, tiny: conv "p" (8 filters) -> BN -> ReLU -> Conv2D(8, groups=4) -> BN -> ReLU -> conv "q"
    -> pooling -> "out"; nonzero biases and BatchNorm statistics, so a removed group would show."""
    keras.utils.set_random_seed(14)
    inputs = L.Input((6, 6, 2))
    x = L.Conv2D(8, 1, name="p")(inputs)
    x = L.ReLU(name="p_relu")(L.BatchNormalization(name="p_bn")(x))
    x = L.Conv2D(8, 3, padding="same", groups=4, name="grouped")(x)
    x = L.ReLU(name="g_relu")(L.BatchNormalization(name="g_bn")(x))
    x = L.Conv2D(5, 1, name="q")(x)
    model = keras.Model(inputs, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="pool")(x)))
    return randomized(model, 6)


def test_grouped_convolutions_lose_whole_groups_exactly():
    model = build_grouped()
    group = next(g for g in find_groups(model) if "p" in g.producers)
    assert (group.producers, group.size, group.block, group.batchnorms) == (("p",), 8, 2, ("p_bn", "g_bn"))
    keep = {"p": [2, 3, 6, 7]}  # groups 1 and 3 of the grouped conv stay: its output groups 1 and 3 too
    new = prune_channels(model, keep)
    grouped = new.get_layer("grouped")
    assert (grouped.get_config()["filters"], grouped.get_config()["groups"]) == (4, 2)
    assert tuple(grouped.kernel.shape) == (3, 3, 2, 4) and tuple(new.get_layer("q").kernel.shape) == (1, 1, 4, 5)
    np.testing.assert_array_equal(grouped.kernel.numpy(), model.get_layer("grouped").kernel.numpy()[..., [2, 3, 6, 7]])
    x = np.random.default_rng(7).normal(size=(4, 6, 6, 2)).astype(np.float32)
    # removed channels read as zero where they are consumed: q's rows of p's channels 0, 1, 4, 5
    reference = zero_inputs(model, {"q": (2, [0, 1, 4, 5])})
    np.testing.assert_allclose(new(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(model(x).numpy() - reference(x).numpy()).max() > 1e-3  # the groups really mattered
    with pytest.raises(ValueError, match="must keep whole groups of 2 channels: they pass a grouped convolution"):
        prune_channels(model, {"p": [0, 2, 4, 6]})


def test_filters_l1_ranks_whole_groups_of_a_grouped_convolution():
    model = build_grouped()
    # p's filters scored by L1 in blocks of 2: channel 4 is the strongest filter, but its block (4, 5)
    # sums to less than blocks (2, 3) and (6, 7); block (0, 1) is the weakest
    kernel = np.full((1, 1, 2, 8), 1.0, np.float32)
    kernel[..., [0, 1]] = 0.1
    kernel[..., 4], kernel[..., 5] = 1.5, 0.0
    model.get_layer("p").kernel.assign(kernel)
    weights = {pw.key: model.get_weights()[pw.index] for pw in find_prunable(model)}
    request = PruneRequest(weights=weights, sparsity={k: 0.5 for k in weights}, scope="layer", model=model)
    result = METHODS["filters-l1"].prune(request)
    kept = np.flatnonzero(result.masks["p/kernel"].reshape(-1, 8).any(axis=0))
    assert int(np.abs(kernel).reshape(-1, 8).sum(axis=0).argmax()) == 4
    assert kept.tolist() == [2, 3, 6, 7]
    assert result.model.get_layer("grouped").get_config()["groups"] == 2
    assert any(n.startswith("grouped convolutions pruned in whole groups: p: 8 -> 4 in groups of 2") for n in result.notes)


@pytest.mark.parametrize("axis,passes", [([1, 2], True), (-1, False), (None, False)])
def test_a_tf_reduction_passes_channels_only_when_it_keeps_the_channel_axis(axis, passes):
    """Squeeze-and-excite written with tf.reduce_mean (Keras 3's ops.mean comes in so): x * mean(x) over
    space pairs channels; a mean over the channels (or everything) mixes them."""
    from pruning._keras import tf

    keras.utils.set_random_seed(15)
    inputs = L.Input(SHAPE[2])
    x = L.Conv2D(4, 1, name="p")(inputs)
    gate = tf.math.reduce_mean(x, axis=axis, keepdims=True)
    x = L.Multiply(name="excite")([x, tf.math.sigmoid(gate)])
    model = keras.Model(inputs, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="pool")(x)))
    assert any("p" in g.producers for g in find_groups(model)) == passes
    if passes:
        x = np.random.default_rng(8).normal(size=(4, 6, 6, 2)).astype(np.float32)
        np.testing.assert_allclose(prune_channels(model, KEEP)(x).numpy(), zero_inputs(model, {"out": (0, [1, 3])})(x).numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_tf_expand_dims_passes_channels_when_they_stay_last():
    """Squeeze-and-excite as tf.expand_dims of the pooled (B, 4) gate: (B, 1, 1, 4) pairs channels;
    expand_dims(x, -1) puts them on another axis, (B, 6, 6, 4, 1), and keeps them."""
    from pruning._keras import tf
    from pruning.core.surgery import ChannelGraph

    keras.utils.set_random_seed(18)
    inputs = L.Input(SHAPE[2])
    x = L.Conv2D(4, 1, name="p")(inputs)
    gate = L.Dense(4, activation="sigmoid", name="gate")(L.GlobalAveragePooling2D(name="squeeze")(x))
    x = L.Multiply(name="excite")([x, tf.expand_dims(tf.expand_dims(gate, 1), 1)])
    model = keras.Model(inputs, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="pool")(x)))
    assert [g.producers for g in find_groups(model)] == [("p", "gate")]
    x = np.random.default_rng(12).normal(size=(4, 6, 6, 2)).astype(np.float32)
    reference = zero_inputs(model, {"gate": (0, [1, 3]), "out": (0, [1, 3])})
    np.testing.assert_allclose(prune_channels(model, KEEP)(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)

    y = L.GlobalAveragePooling3D(name="pool3")(tf.expand_dims(L.Conv2D(4, 1, name="p")(inputs), -1))
    model = keras.Model(inputs, L.Dense(3, name="out")(y))
    (producers, why), *_ = ChannelGraph(model).left_alone()
    assert producers == ("p",) and why.endswith("it reshapes (6, 6, 4) to (6, 6, 4, 1): the channels do not stay whole "
                                                "on the last axis")


def test_keep_rule_doctest_runs():
    import doctest

    from pruning.core import channel_group

    result = doctest.testmod(channel_group)
    assert result.attempted >= 1 and result.failed == 0
