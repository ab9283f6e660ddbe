"""The engine on a tiny model file: exact sparsity, untouched base, honest baseline metrics."""
from __future__ import annotations

import numpy as np
import pytest

from pruning.core.masks import keep_count
from pruning.errors import BadInput
from pruning.model.baselines import weights_checksum
from pruning.specs import METRIC_KEYS, PruneSpec, file_sha256


def spec_for(refs, **kw) -> PruneSpec:
    model, data = refs
    return PruneSpec(model=model, data=data, **kw)


def test_baseline_accuracy_equals_keras_evaluate(engine, tiny_refs, tiny_npz, tiny_model_file):
    from pruning._keras import keras

    report = engine.baseline(*tiny_refs)
    model = keras.models.load_model(tiny_model_file)
    data = np.load(tiny_npz)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    assert report.metrics["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert report.metrics["loss"] == pytest.approx(loss, rel=1e-4)
    assert report.metrics["accuracy"] > 0.9  # the tiny task is learnable: the fixture trained
    assert set(METRIC_KEYS) <= set(report.metrics)
    assert report.metrics["params"] == model.count_params()
    # conv 3*3*1*4 + dense 64*16 + 16*4 kernels: FLOPs per sample from shapes
    assert report.metrics["flops"] == 8 * 8 * 36 + 64 * 16 + 16 * 4
    assert list(report.layers.loc[report.layers.prunable, "name"]) == ["conv", "hidden", "out"]


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.9])
def test_prune_reaches_exact_per_layer_counts(engine, tiny_refs, sparsity):
    report = engine.prune(spec_for(tiny_refs, target_sparsity=sparsity))
    layers = report.layers.set_index("name")
    for name, n in {"conv": 36, "hidden": 1024, "out": 64}.items():
        zeros = n - keep_count(n, sparsity)
        assert layers.loc[name, "sparsity"] == pytest.approx(zeros / n)
    total = 36 + 1024 + 64
    zeros = sum(n - keep_count(n, sparsity) for n in (36, 1024, 64))
    assert report.sparsity == pytest.approx(zeros / total)
    assert report.pruned["nonzero_params"] == report.baseline["nonzero_params"] - zeros
    assert report.pruned["effective_flops"] < report.pruned["flops"]


def test_sparsity_zero_changes_nothing(engine, tiny_refs):
    report = engine.prune(spec_for(tiny_refs, target_sparsity=0.0))
    for key in ("accuracy", "loss", "train_accuracy", "robust_accuracy", "nonzero_params", "effective_flops"):
        assert report.pruned[key] == report.baseline[key], key
    assert report.sparsity == 0.0


def test_global_scope_reaches_global_target(engine, tiny_refs):
    report = engine.prune(spec_for(tiny_refs, target_sparsity=0.8, scope="global"))
    total = 36 + 1024 + 64
    assert report.sparsity == pytest.approx((total - keep_count(total, 0.8)) / total)
    per_layer = report.layers.set_index("name")["sparsity"].dropna()
    assert per_layer.max() - per_layer.min() > 0.05


def test_random_is_worse_than_magnitude_at_high_sparsity(engine, tiny_refs):
    mag = engine.prune(spec_for(tiny_refs, target_sparsity=0.5))
    rnd = engine.prune(spec_for(tiny_refs, target_sparsity=0.5, method="random"))
    assert rnd.sparsity == mag.sparsity
    # measured here: magnitude keeps ~1.00, random ~0.67 on this task
    assert mag.pruned["accuracy"] >= 0.95 > 0.85 >= rnd.pruned["accuracy"]


def test_base_model_and_file_untouched(engine, tiny_refs, tiny_model_file):
    bench = engine.workbench(*tiny_refs)
    before_mem = weights_checksum(bench.base_weights)
    before_file = file_sha256(tiny_model_file)
    for s in (0.3, 0.9):
        engine.prune(spec_for(tiny_refs, target_sparsity=s))
    engine.prune(spec_for(tiny_refs, target_sparsity=0.5, finetune_epochs=1))
    assert weights_checksum(bench.base_weights) == before_mem
    assert file_sha256(tiny_model_file) == before_file
    # the working model is back at the base weights after each prune
    assert weights_checksum(bench.current_weights()) == before_mem


def test_repeat_prune_is_identical(engine, tiny_refs):
    a = engine.prune(spec_for(tiny_refs, target_sparsity=0.6))
    engine.prune(spec_for(tiny_refs, target_sparsity=0.2))
    b = engine.prune(spec_for(tiny_refs, target_sparsity=0.6))
    for key in ("accuracy", "loss", "robust_accuracy", "nonzero_params"):
        assert a.pruned[key] == b.pruned[key]


def test_finetune_keeps_zeros_zero(engine, tiny_refs, tmp_path):
    from pruning._keras import keras

    spec = spec_for(tiny_refs, target_sparsity=0.9, finetune_epochs=3)
    report = engine.prune(spec)
    one_shot = engine.prune(spec_for(tiny_refs, target_sparsity=0.9))
    assert report.sparsity == one_shot.sparsity
    assert report.model_path == ""  # no file is written by a prune
    saved = keras.models.load_model(engine.save(spec, tmp_path / "tuned.keras"))
    kernels = {layer.name: layer.kernel.numpy() for layer in saved.layers if hasattr(layer, "kernel")}
    assert {k: int((v == 0).sum()) for k, v in kernels.items()} == {
        "conv": 36 - keep_count(36, 0.9), "hidden": 1024 - keep_count(1024, 0.9), "out": 64 - keep_count(64, 0.9)
    }
    assert report.pruned["accuracy"] >= one_shot.pruned["accuracy"]


def test_exclude_layers_keeps_them_dense(engine, tiny_refs):
    report = engine.prune(spec_for(tiny_refs, target_sparsity=0.7, layers=("hidden",)))
    layers = report.layers.set_index("name")
    assert layers.loc["conv", "sparsity"] == 0.0 and layers.loc["out", "sparsity"] == 0.0
    assert report.sparsity == pytest.approx((1024 - keep_count(1024, 0.7)) / 1024)
    with pytest.raises(BadInput, match="cannot be pruned"):
        engine.prune(spec_for(tiny_refs, target_sparsity=0.7, layers=("pool",)))


def test_histograms_count_pruned_zeros_apart(engine, tiny_refs):
    report = engine.prune(spec_for(tiny_refs, target_sparsity=0.5))
    hist = report.histograms["hidden"]
    zeros = 1024 - keep_count(1024, 0.5)
    assert hist["zeros_after"] - hist["zeros_before"] == zeros
    assert sum(hist["before"]) + hist["zeros_before"] == 1024
    assert sum(hist["after"]) + hist["zeros_after"] == 1024
    # the smallest magnitudes went: the bins around zero empty out, the outer ones stay
    centre = len(hist["after"]) // 2
    assert hist["after"][centre] == 0 and hist["after"][0] == hist["before"][0]
    image = np.array(report.mask_images["hidden"])
    assert image.shape == (48, 16) and image.mean() == pytest.approx(50, abs=1)
    assert image.dtype.kind == "i" and image.min() >= 0 and image.max() <= 100


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), 1.5])
def test_bad_sparsity_is_refused(bad, tiny_refs):
    with pytest.raises(BadInput, match=r"\[0, 1\)"):
        spec_for(tiny_refs, target_sparsity=bad)


def test_saved_pruned_model_has_no_wrappers_and_same_accuracy(engine, tiny_refs, tiny_npz, tmp_path):
    from pruning._keras import keras

    spec = spec_for(tiny_refs, target_sparsity=0.6)
    report = engine.prune(spec)
    model = keras.models.load_model(engine.save(spec, tmp_path / "pruned.keras"))
    assert not any("Prune" in type(layer).__name__ for layer in model.layers)
    data = np.load(tiny_npz)
    acc = float((model(data["x_test"]).numpy().argmax(1) == data["y_test"]).mean())
    assert acc == pytest.approx(report.pruned["accuracy"], abs=1e-9)
