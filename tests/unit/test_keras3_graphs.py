"""Keras 3 graphs with keras.ops nodes, hard activations and Keras 3's application layers, through the bridge.

A tiny seeded Keras 3 model holds one node of every op the bridge translates (op_forms.OP_FORMS), and a
few cheap keras.applications families built by Keras 3 itself: each is checked, rebuilt as tf_keras with
equal outputs, pruned with masks and with exact structured surgery, and written back as Keras 3.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pruning.errors import BadInput

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def k3():
    from pruning.model.keras3 import keras3

    return keras3()


def build_ops_model(k3):
    """Conv -> BatchNorm -> MobileNetV3's hard-swish written with keras.ops (x + 3, * 1/6) -> a
    squeeze-and-excite gate (ops.mean, ops.sigmoid, x * gate) -> a separable conv -> ConvNeXt's LayerScale -> a tensor
    add -> InceptionResNetV2's CustomScaleLayer -> one node of every other translated op -> Dense."""
    LayerScale = k3.src.applications.convnext.LayerScale
    CustomScaleLayer = k3.src.applications.inception_resnet_v2.CustomScaleLayer
    k3.utils.set_random_seed(0)
    L, ops = k3.layers, k3.ops
    inputs = k3.Input((6, 6, 3), name="image")
    x = L.BatchNormalization(name="bn")(L.Conv2D(8, 3, padding="same", name="conv")(inputs))
    x = x * (L.ReLU(6.0, name="clip6")(x + 3.0) * (1.0 / 6.0))  # Add, Multiply with constants
    gate = ops.sigmoid(ops.mean(x, axis=[1, 2], keepdims=True))
    x = L.Activation("hard_silu", name="hswish")(x * gate)
    x = L.SeparableConv2D(8, 3, padding="same", name="sep")(x)  # tf_keras writes it a `groups` Keras 3 lacks
    y = L.Conv2D(8, 1, name="branch")(x)
    y = LayerScale(0.5, 8, name="scale")(y)
    x = ops.add(x, y)
    x = CustomScaleLayer(0.2, name="custom_scale")([x, L.Conv2D(8, 1, name="branch_2")(x)])
    x = L.Activation("hard_sigmoid", name="hsig")(x) - 0.5
    x = ops.relu(ops.maximum(2.0 * x, -0.3)) + ops.minimum(ops.negative(x), 0.2) + ops.tanh(x) / 3.0
    x = ops.divide(ops.relu6(ops.silu(x)), 2.0) + ops.gelu(x) + ops.exp(-ops.square(x)) + ops.sqrt(ops.abs(x))
    pooled = ops.concatenate([ops.sum(x, axis=[1, 2]), ops.max(x, axis=[1, 2]), ops.min(x, axis=[1, 2])], axis=-1)
    flat = ops.reshape(ops.transpose(inputs, [0, 2, 1, 3]), (-1, 6 * 6 * 3))  # from the input: x's channels can go
    flat = ops.squeeze(ops.expand_dims(flat, 1), 1) - ops.softmax(flat, axis=-1)
    outputs = L.Dense(4, name="out")(L.Concatenate(name="features")([pooled, flat]))
    model = k3.Model(inputs, outputs, name="k3_ops")
    rng = np.random.default_rng(3)
    model.get_layer("bn").set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8),
                                       rng.uniform(0.5, 2, 8)])
    return model


def test_every_translated_op_is_in_the_model_and_on_the_tf_op_allowlist(k3, tmp_path):
    from pruning.model.allowlist import TF_OP_FUNCTIONS
    from pruning.model.op_forms import KERAS3_OPS, TF_OPS
    from pruning.model.safety import inspect_model_file

    path = tmp_path / "ops.keras"
    build_ops_model(k3).save(path)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    found = {(layer["module"], layer["class_name"]) for layer in config["config"]["layers"]
             if layer["module"].startswith("keras.src.")}
    ops = {key for key in found if key[0].startswith("keras.src.ops.")}
    assert ops == set(KERAS3_OPS)
    assert found - ops == {("keras.src.applications.convnext", "LayerScale"),
                           ("keras.src.applications.inception_resnet_v2", "CustomScaleLayer")}
    # what the bridge writes, PruneScope's own tf_keras file check lets back in
    assert set(TF_OPS) <= TF_OP_FUNCTIONS
    assert inspect_model_file(path).layers == len(config["config"]["layers"])


def test_ops_model_in_as_tf_keras_out_as_keras3(k3, tmp_path):
    from pruning._keras import keras
    from pruning.model.baselines import read_model_file
    from pruning.model.keras3 import save_keras3
    from pruning.model.safety import inspect_model_file
    from pruning.specs import ModelRef

    source = build_ops_model(k3)
    path = tmp_path / "ops.keras"
    source.save(path)
    x = np.random.default_rng(1).normal(size=(16, 6, 6, 3)).astype(np.float32)
    model, note = read_model_file(ModelRef.parse(str(path)), x)
    expected = source(x).numpy()
    diff = float(np.abs(model(x).numpy() - expected).max() / max(1.0, np.abs(expected).max()))
    assert diff <= 1e-6 and note.endswith(f"outputs equal within {diff:.2g} on 16 test inputs")
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"TFOpLambda", "LayerScale", "CustomScaleLayer", "Multiply"} <= kinds  # hard-swish: a Multiply
    model.save(tmp_path / "tf.keras")  # PruneScope's own file of it passes PruneScope's tf_keras check
    assert inspect_model_file(tmp_path / "tf.keras").keras_version == keras.__version__
    written = save_keras3(model, tmp_path / "back.keras", x)
    back = k3.saving.load_model(tmp_path / "back.keras", safe_mode=True)
    np.testing.assert_allclose(back(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert written.max_abs_diff <= 1e-6


def test_a_constant_first_operand_of_a_non_commutative_op_is_refused(k3, tmp_path):
    from pruning.model.keras3 import import_keras3

    inputs = k3.Input((4,))
    k3.Model(inputs, k3.layers.Dense(2, name="out")(1.0 - inputs)).save(tmp_path / "rsub.keras")
    with pytest.raises(BadInput, match=r"^op subtract(_[0-9]+)? of rsub\.keras \(Subtract\) takes a constant as its first "
                                       r"operand, which tf_keras cannot record: write the tensor first"):
        import_keras3(tmp_path / "rsub.keras", "rsub.keras")


def test_ops_model_prunes_structurally_through_the_cli(k3, tmp_path, capsys):
    from pruning.cli import main

    source = build_ops_model(k3)
    path = tmp_path / "ops.keras"
    source.save(path)
    rng = np.random.default_rng(2)
    data = tmp_path / "ops.npz"
    np.savez(data, x_train=rng.normal(size=(32, 6, 6, 3)).astype(np.float32), y_train=rng.integers(0, 4, 32),
             x_test=rng.normal(size=(24, 6, 6, 3)).astype(np.float32), y_test=rng.integers(0, 4, 24))
    out = tmp_path / "pruned.keras"
    assert main(["prune", "--model", str(path), "--dataset", str(data), "--method", "filters-l1", "--sparsity", "0.5",
                 "--out", str(out), "--json"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["pruned"]["params"] < result["baseline"]["params"]
    written = k3.saving.load_model(out, safe_mode=True)
    assert written.get_layer("branch").get_weights()[0].shape[-1] < 8  # the residual group shrank
    assert written.count_params() == result["pruned"]["params"]


# -- keras.applications families built by Keras 3 ---------------------------------------------
# the cheap ones: MobileNetV3Small (keras.ops hard-swish, squeeze-and-excite), MobileNet (depthwise)
FAMILIES = {"MobileNetV3Small": {"alpha": 0.75}, "MobileNet": {"alpha": 0.25}}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_keras3_family_imports_prunes_exactly_and_goes_back_out(k3, tmp_path, family):
    from pruning.core.masks import keep_count
    from pruning.core.prunable import find_prunable
    from pruning.core.surgery import ChannelGraph
    from pruning.methods import METHODS, PruneRequest
    from pruning.model.keras3 import import_keras3, save_keras3
    from pruning.model.safety import inspect_model_file

    k3.utils.set_random_seed(0)
    source = getattr(k3.applications, family)(input_shape=(32, 32, 3), weights=None, classes=10,
                                              classifier_activation=None, **FAMILIES[family])
    rng = np.random.default_rng(1)
    for layer in source.layers:  # real statistics and biases: a removed or mistranslated channel shows
        if isinstance(layer, k3.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 2.0, n)])
    path = Path(tmp_path) / f"{family}.keras"
    source.save(path)
    inspect_model_file(path)
    x = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype(np.float32)
    model, imported = import_keras3(path, path.name, x)
    assert imported.max_abs_diff <= 1e-5

    values = model.get_weights()
    weights = {pw.key: values[pw.index] for pw in find_prunable(model)}
    request = PruneRequest(weights=weights, sparsity={k: 0.5 for k in weights}, scope="layer", model=model)
    masks = METHODS["magnitude"].prune(request).masks
    assert {k: int(m.sum()) for k, m in masks.items()} == {k: keep_count(w.size, 0.5) for k, w in weights.items()}

    result = METHODS["filters-l1"].prune(request)
    assert result.model.count_params() < 0.75 * model.count_params(), result.notes
    graph = ChannelGraph(model)
    keep = graph.keep_from_masks(result.masks)
    model.set_weights(graph.zeroed_weights(keep))
    reference = model(x).numpy()
    model.set_weights(values)
    assert np.abs(result.model(x).numpy() - reference).max() <= 1e-4 * np.abs(reference).max()

    written = save_keras3(result.model, tmp_path / "pruned.keras", x)
    back = k3.saving.load_model(tmp_path / "pruned.keras", safe_mode=True)
    assert back.count_params() == result.model.count_params() and written.max_abs_diff <= 1e-4


def test_keras3_library_layers_in_a_legacy_h5_are_refused_in_one_line(k3, tmp_path):
    """Keras 3's .h5 names no module for LayerScale, and Keras 3 itself cannot load it back."""
    from pruning.model.safety import inspect_model_file

    inputs = k3.Input((4, 4, 8))
    model = k3.Model(inputs, k3.src.applications.convnext.LayerScale(0.5, 8, name="scale")(inputs))
    model.save(tmp_path / "scale.h5")
    with pytest.raises(BadInput, match=r"^layer scale of scale\.h5 is Keras 3's own LayerScale in a legacy \.h5, "
                                       r"which names no module and which Keras 3 itself cannot load back: save the "
                                       r"model as \.keras$"):
        inspect_model_file(tmp_path / "scale.h5")
    with pytest.raises(ValueError, match="Unknown layer: 'LayerScale'"):
        k3.saving.load_model(tmp_path / "scale.h5", safe_mode=True)
