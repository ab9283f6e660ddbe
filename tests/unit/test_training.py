"""Masked fine-tuning: float32 and the mixed float16 twin keep zeros at zero and learn."""
from __future__ import annotations

import numpy as np
import pytest

from pruning.measure.training import mixed_precision_supported, mixed_twin, train_masked
from pruning.model.datasets import load_npz


def tiny_dense(seed: int = 0):
    from pruning._keras import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.layers.Input((8, 8, 1)),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(16, activation="relu", name="hidden"),
        keras.layers.Dense(4, activation="softmax", name="out"),
    ])


def accuracy(model, ds) -> float:
    return float((model(ds.x_test).numpy().argmax(1) == ds.y_test).mean())


def test_mixed_twin_computes_in_float16_with_float32_outputs():
    model = tiny_dense()
    twin = mixed_twin(model)
    assert [layer.dtype_policy.name for layer in twin.layers] == [
        "mixed_float16", "mixed_float16", "float32"]
    assert all(w.dtype == "float32" for w in twin.weights)  # variables stay float32
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    assert twin(x).dtype == "float32"
    assert np.allclose(twin(x).numpy(), model(x).numpy(), atol=2e-3)  # float16 rounding only


@pytest.mark.parametrize("mixed", [False, True])
def test_train_masked_keeps_zeros_and_learns(tiny_npz, mixed):
    ds = load_npz(tiny_npz)
    model = tiny_dense()
    weights = model.get_weights()
    keep = np.zeros(weights[0].shape, bool)
    keep[::3] = True  # a third of the hidden kernel's rows survive
    weights[0] = weights[0] * keep
    model.set_weights(weights)
    before = accuracy(model, ds)

    train_masked(model, {0: keep}, ds, epochs=15, seed=0, mixed=mixed)

    kernel = model.get_weights()[0]
    assert np.count_nonzero(kernel[~keep]) == 0
    assert np.count_nonzero(kernel[keep]) == keep.sum()
    assert all(w.dtype == "float32" for w in model.weights)  # the model itself is unchanged in kind
    assert accuracy(model, ds) > max(before, 0.9)


def test_no_capable_gpu_here_means_float32_with_a_note(engine, tiny_refs):
    from pruning.specs import PruneSpec

    if mixed_precision_supported():
        pytest.skip("a capable GPU is visible: the fallback note does not apply")
    model, data = tiny_refs
    report = engine.prune(PruneSpec(model=model, data=data, target_sparsity=0.5, finetune_epochs=1, mixed_precision=True))
    assert any("fine-tuned in float32" in note for note in report.notes)
