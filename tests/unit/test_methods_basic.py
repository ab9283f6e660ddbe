"""magnitude and random through the registry: exact zero counts, tfmot's masks, no mutation."""
from __future__ import annotations

import numpy as np
import pytest

from pruning.core.masks import keep_count
from pruning.errors import BadInput
from pruning.methods import METHODS, PruneRequest, get_method


def distinct_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"conv/kernel": (3, 3, 2, 8), "dense/kernel": (40, 16), "out/kernel": (16, 5)}
    out, start = {}, 0.001
    for key, shape in shapes.items():
        n = int(np.prod(shape))
        values = np.linspace(start, start + 1.0, n) * rng.choice([-1, 1], n)
        out[key] = rng.permutation(values).reshape(shape).astype(np.float32)
        start += 0.37  # interleave magnitudes across tensors so global differs from per-layer
    for w in out.values():
        w.setflags(write=False)
    return out


def request(weights, sparsity, scope="layer", seed=0):
    return PruneRequest(weights=weights, sparsity={k: sparsity for k in weights}, scope=scope, seed=seed)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.99])
def test_magnitude_per_layer_exact_zero_counts(sparsity):
    weights = distinct_weights()
    masks = get_method("magnitude").prune(request(weights, sparsity)).masks
    for key, w in weights.items():
        kept = keep_count(w.size, sparsity)
        assert int(masks[key].sum()) == kept
        # the survivors are exactly the largest magnitudes
        assert np.abs(w[masks[key]]).min() > (np.abs(w[~masks[key]]).max() if kept < w.size else -1)


def test_magnitude_global_reaches_global_target_not_per_layer():
    weights = distinct_weights()
    masks = get_method("magnitude").prune(request(weights, 0.8, scope="global")).masks
    total = sum(w.size for w in weights.values())
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(total, 0.8)
    per_layer = [1 - m.mean() for m in masks.values()]
    assert max(per_layer) - min(per_layer) > 0.2  # one threshold: layers end up different
    kept = np.concatenate([np.abs(w[masks[k]]) for k, w in weights.items()])
    dropped = np.concatenate([np.abs(w[~masks[k]]) for k, w in weights.items()])
    assert kept.min() > dropped.max()


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_random_reaches_target_and_is_seeded(scope):
    weights = distinct_weights()
    a = get_method("random").prune(request(weights, 0.6, scope, seed=3)).masks
    b = get_method("random").prune(request(weights, 0.6, scope, seed=3)).masks
    c = get_method("random").prune(request(weights, 0.6, scope, seed=4)).masks
    total = sum(w.size for w in weights.values())
    kept = sum(int(m.sum()) for m in a.values())
    expected = keep_count(total, 0.6) if scope == "global" else sum(keep_count(w.size, 0.6) for w in weights.values())
    assert kept == expected
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_random_is_not_magnitude():
    weights = distinct_weights()
    mag = get_method("magnitude").prune(request(weights, 0.5)).masks
    rnd = get_method("random").prune(request(weights, 0.5)).masks
    agree = np.mean([np.mean(mag[k] == rnd[k]) for k in weights])
    assert 0.3 < agree < 0.7  # about chance


def test_unknown_method_lists_valid_names():
    with pytest.raises(BadInput, match="choose one of .*magnitude.*random"):
        get_method("nope")


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        METHODS["x"] = METHODS["magnitude"]  # type: ignore[index]


@pytest.mark.slow
def test_magnitude_masks_equal_tfmot_masks():
    """On weights without ties our per-layer masks are exactly tfmot's prune_low_magnitude masks."""
    import tensorflow_model_optimization as tfmot

    from pruning._keras import keras
    from pruning.core.prunable import find_prunable

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.layers.Input((6, 6, 1)),
        keras.layers.Conv2D(5, 3, name="conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(7, name="dense"),
    ])
    sparsity = 0.62
    weights = {pw.key: model.get_weights()[pw.index] for pw in find_prunable(model)}
    ours = get_method("magnitude").prune(request(weights, sparsity)).masks

    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        keras.models.clone_model(model), pruning_schedule=schedule
    )
    for layer in pruned.layers:
        if hasattr(layer, "layer") and layer.layer.name in ("conv", "dense"):
            layer.layer.kernel.assign(weights[f"{layer.layer.name}/kernel"])
    pruned.compile("sgd", "mse")
    x = np.zeros((2, 6, 6, 1), np.float32)
    y = np.zeros((2, 7), np.float32)
    keras.backend.set_value(pruned.optimizer.learning_rate, 0.0)  # masks only, weights unchanged
    pruned.fit(x, y, epochs=1, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    theirs = {}
    for layer in pruned.layers:
        if hasattr(layer, "pruning_vars"):
            for var, mask, _ in layer.pruning_vars:
                theirs[f"{layer.layer.name}/kernel"] = mask.numpy().astype(bool)
    assert set(theirs) == set(ours)
    for key in ours:
        assert np.array_equal(ours[key], theirs[key]), key
