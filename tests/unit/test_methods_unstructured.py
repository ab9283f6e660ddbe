"""The mask methods beyond magnitude: N:M blocks, LAMP's ranking, Taylor's saliency, gradual.

Distinct magnitudes (np.linspace) keep every ranking free of ties, so masks are exact.
"""
from __future__ import annotations

import numpy as np
import pytest

from pruning._keras import keras
from pruning.core.masks import keep_count, top_k_mask
from pruning.core.prunable import find_prunable
from pruning.errors import BadInput
from pruning.methods import METHODS, PruneRequest
from pruning.methods.gradual import schedule_steps
from pruning.methods.lamp import lamp_scores
from pruning.methods.taylor import taylor_scores
from pruning.model.baselines import weights_checksum
from pruning.model.datasets import Dataset

L = keras.layers


def distinct(shape, seed) -> np.ndarray:
    """Weights with distinct magnitudes in a seeded order, random signs."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    values = rng.permutation(np.linspace(0.05, 2.0, n)) * rng.choice([-1.0, 1.0], n)
    return values.reshape(shape).astype(np.float32)


def request(weights, sparsity, scope="layer", **kw) -> PruneRequest:
    return PruneRequest(weights=weights, sparsity={k: sparsity for k in weights}, scope=scope, **kw)


# -- N:M -------------------------------------------------------------------------------
@pytest.mark.parametrize("sparsity, n", [(0.5, 2), (0.75, 1)])
def test_nm_keeps_the_largest_n_of_every_block_of_4_input_channels(sparsity, n):
    weights = {"dense/kernel": distinct((8, 3), 0), "conv/kernel": distinct((3, 3, 8, 2), 1),
               "odd/kernel": distinct((6, 5), 2)}
    result = METHODS["nm"].prune(request(weights, sparsity))
    for key in ("dense/kernel", "conv/kernel"):
        w, mask = weights[key], result.masks[key]
        # blocks run along the input axis (-2): move it last and cut it into fours
        w_blocks = np.moveaxis(np.abs(w), -2, -1).reshape(-1, 4)
        m_blocks = np.moveaxis(mask, -2, -1).reshape(-1, 4)
        assert (m_blocks.sum(axis=1) == n).all()
        for wb, mb in zip(w_blocks, m_blocks):
            assert set(np.flatnonzero(mb)) == set(np.argsort(-wb)[:n])
    assert result.masks["odd/kernel"].all()  # 6 inputs: not a multiple of 4, skipped
    notes = " ".join(result.notes)
    assert f"{n}:4" in notes and "every block satisfies" in notes
    assert "odd/kernel (6 input channels)" in notes


# -- LAMP --------------------------------------------------------------------------------
def test_lamp_scores_and_global_ranking_differ_from_magnitude():
    # a: squares 1, 4, 9, 16 -> scores 1/30, 4/29, 9/25, 1; b: 100, 400 -> 100/500, 1
    a, b = np.array([1.0, -2.0, 3.0, 4.0], np.float32), np.array([10.0, -20.0], np.float32)
    np.testing.assert_allclose(lamp_scores(a), [1 / 30, 4 / 29, 9 / 25, 1.0])
    np.testing.assert_allclose(lamp_scores(b), [0.2, 1.0])
    result = METHODS["lamp"].prune(request({"a/kernel": a, "b/kernel": b}, 0.5, scope="global"))
    # keep 3 of 6: both layers' largest (score 1) and a's 3 (9/25 > 0.2); magnitude would keep 20, 10, 4
    assert result.masks["a/kernel"].tolist() == [False, False, True, True]
    assert result.masks["b/kernel"].tolist() == [False, True]


def test_lamp_keeps_every_layers_largest_weight_and_refuses_a_plan():
    weights = {"big/kernel": distinct((50, 4), 3) * 100, "small/kernel": distinct((6, 2), 4) * 0.01}
    result = METHODS["lamp"].prune(request(weights, 0.9))
    small = result.masks["small/kernel"]
    assert small.sum() >= 1 and small.reshape(-1)[np.argmax(np.abs(weights["small/kernel"]))]
    assert "acts as 'global'" in result.notes[0]
    plan = PruneRequest(weights=weights, sparsity={"big/kernel": 0.5, "small/kernel": 0.2}, scope="layer")
    with pytest.raises(BadInput, match="one sparsity"):
        METHODS["lamp"].prune(plan)


# -- Taylor ------------------------------------------------------------------------------
def softmax_regression_and_data():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([L.Input((4,)), L.Dense(3, activation="softmax", name="fc")])
    model.get_layer("fc").set_weights([distinct((4, 3), 5), np.array([0.1, -0.2, 0.05], np.float32)])
    rng = np.random.default_rng(8)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    return model, Dataset("synthetic", x[:20], y[:20], x, y, 3)


def test_taylor_is_weight_times_gradient_averaged_over_minibatches():
    model, data = softmax_regression_and_data()
    w, b = [v.astype(np.float64) for v in model.get_layer("fc").get_weights()]
    expected = np.zeros_like(w)
    for start in (0, 64):  # 100 samples: minibatches of 64 and 36
        x, y = data.x_train[start : start + 64].astype(np.float64), data.y_train[start : start + 64]
        logits = x @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        gradient = x.T @ (p - np.eye(3)[y]) / len(y)  # d mean-CE / dW, by hand
        expected += np.abs(w * gradient) / 2
    weights = {"fc/kernel": model.get_weights()[0]}
    req = request(weights, 0.5, model=model, data=data)
    np.testing.assert_allclose(taylor_scores(req)["fc/kernel"], expected, rtol=1e-4)
    mask = METHODS["taylor"].prune(req).masks["fc/kernel"]
    np.testing.assert_array_equal(mask, top_k_mask(expected, keep_count(12, 0.5)))


def test_taylor_scores_an_embedding_table_by_the_rows_looked_up():
    """An Embedding's gradient is sparse (IndexedSlices): rows never looked up score exactly 0,
    so at 50% the mask keeps exactly the 5 rows the data uses (5 x 4 of 10 x 4 weights)."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([L.Input((6,)), L.Embedding(10, 4, name="embed"), L.GlobalAveragePooling1D(),
                              L.Dense(3, activation="softmax", name="fc")])
    model.get_layer("embed").set_weights([distinct((10, 4), 2)])
    rng = np.random.default_rng(4)
    x = rng.integers(1, 6, (100, 6)).astype(np.float32)  # tokens 1..5 only
    y = rng.integers(0, 3, 100)
    data = Dataset("tokens", x[:20], y[:20], x, y, 3)
    req = request({"embed/embeddings": model.get_weights()[0]}, 0.5, model=model, data=data)
    scores = taylor_scores(req)["embed/embeddings"]
    assert (scores[[0, 6, 7, 8, 9]] == 0).all() and (scores[1:6] > 0).all()
    mask = METHODS["taylor"].prune(req).masks["embed/embeddings"]
    np.testing.assert_array_equal(mask.all(axis=1), [False, True, True, True, True, True, False, False, False, False])


def test_taylor_needs_training_data():
    model, data = softmax_regression_and_data()
    no_train = Dataset("test-only", data.x_test, data.y_test, None, None, 3)
    with pytest.raises(BadInput, match="taylor needs training data"):
        METHODS["taylor"].prune(request({"fc/kernel": model.get_weights()[0]}, 0.5, model=model, data=no_train))


# -- gradual -----------------------------------------------------------------------------
def test_schedule_reaches_the_final_mask_inside_training():
    for total in (2, 8, 46, 1000):
        end, frequency = schedule_steps(total)
        assert end % frequency == 0 and 0 < end < total  # the last update is a real step
    assert schedule_steps(8) == (6, 1)
    with pytest.raises(BadInput):
        schedule_steps(1)


def test_gradual_reaches_exact_sparsity_and_keeps_zeros_while_fine_tuning():
    keras.utils.set_random_seed(9)
    model = keras.Sequential([L.Input((8, 8, 1)), L.Flatten(name="flat"),
                              L.Dense(16, activation="relu", name="hidden"),
                              L.Dense(4, activation="softmax", name="out")])
    rng = np.random.default_rng(10)
    y = rng.integers(0, 4, 320)
    x = rng.normal(0, 0.2, (320, 8, 8, 1)).astype(np.float32)
    x[np.arange(320), y * 2, y * 2, 0] += 2.0
    data = Dataset("synthetic", x[256:], y[256:], x[:256], y[:256], 4)
    base = model.get_weights()
    weights = {pw.key: base[pw.index] for pw in find_prunable(model)}
    progress = []
    req = PruneRequest(weights=weights, sparsity={k: 0.6 for k in weights}, scope="layer", seed=0,
                       model=model, data=data, finetune_epochs=2,
                       on_progress=lambda f, m: progress.append(round(f, 2)))
    result = METHODS["gradual"].prune(req)

    assert weights_checksum(model.get_weights()) == weights_checksum(base)
    assert progress == [0.5, 1.0]
    after = {pw.key: result.model.get_weights()[pw.index] for pw in find_prunable(result.model)}
    for key, w in after.items():
        # 8 steps, final mask from step 6: the last step trained with it and the zeros held
        assert int((w == 0).sum()) == w.size - keep_count(w.size, 0.6), key
        np.testing.assert_array_equal(result.masks[key], w != 0)
        kept = w != 0
        assert not np.allclose(w[kept], weights[key][kept])  # the survivors were fine-tuned
    assert "until step 6" in result.notes[0]


def test_gradual_follows_tfmots_polynomial_schedule(monkeypatch):
    # tfmot's PolynomialDecay decides when and how far (Zhu & Gupta: s_t = s_f (1 - (1 - t/end)^3)
    # from 0); each update keeps exactly tfmot's count, of the largest magnitudes at that step
    from pruning.measure import training

    keras.utils.set_random_seed(3)
    model = keras.Sequential([L.Input((4,)), L.Dense(50, name="hidden"), L.Dense(2, name="out")])
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 4)).astype(np.float32)  # 200 samples: 4 steps of 64, the last one short
    y = (x[:, 0] > 0).astype(np.int64)
    data = Dataset("synthetic", x[:40], y[:40], x, y, 2)
    base = model.get_weights()
    weights = {pw.key: base[pw.index] for pw in find_prunable(model) if pw.layer == "hidden"}
    req = PruneRequest(weights=weights, sparsity={"hidden/kernel": 0.8}, scope="layer", seed=0,
                       model=model, data=data, finetune_epochs=4)  # 16 steps: end 12, every step 1
    seen = []
    real = training.train_masked

    def spy(net, masks, ds, epochs, seed, on_progress=None, mixed=False, loss=None, update_masks=None, label=""):
        def watch(step):
            before = net.weights[0].numpy()
            fresh = update_masks(step)
            for mask in (fresh or {}).values():
                # the largest magnitudes of the weights as they are at this step
                kept = np.abs(before[mask]).min() if mask.any() else np.inf
                assert (np.abs(before[~mask]) <= kept).all()
                seen.append((step, int(mask.sum())))
            return fresh

        real(net, masks, ds, epochs, seed, on_progress, mixed, loss, watch, label)

    monkeypatch.setattr(training, "train_masked", spy)
    result = METHODS["gradual"].prune(req)
    end, frequency = schedule_steps(16)
    assert (end, frequency) == (12, 1)
    expected = [(t, keep_count(200, 0.8 * (1 - (1 - t / end) ** 3))) for t in range(0, end + 1, frequency)]
    assert seen == expected
    kernel = result.model.get_weights()[0]
    assert int((kernel != 0).sum()) == keep_count(200, 0.8) == 40
    np.testing.assert_array_equal(result.masks["hidden/kernel"], kernel != 0)
    assert "Sparsity of the pruned tensors at the 13 updates: 0%, " in result.notes[0]
    assert result.notes[0].endswith(", 80%.")
    np.testing.assert_array_equal(model.get_weights()[0], base[0])  # the caller's model is untouched


def test_train_masked_traces_its_step_once_with_a_short_last_batch(monkeypatch):
    from pruning.measure import training

    keras.utils.set_random_seed(5)
    model = keras.Sequential([L.Input((4,)), L.Dense(6, name="hidden"), L.Dense(2, name="out")])
    rng = np.random.default_rng(6)
    x = rng.normal(size=(100, 4)).astype(np.float32)  # batches of 64 and 36
    data = Dataset("synthetic", x[:10], np.zeros(10, np.int64), x, (x[:, 0] > 0).astype(np.int64), 2)
    traces = []
    real = training.tf.function

    def counting(*args, **kwargs):  # tf.function(fn) or @tf.function(input_signature=...)
        if args:
            traces.append(real(*args, **kwargs))
            return traces[-1]
        return lambda fn: counting(fn, **kwargs)

    monkeypatch.setattr(training.tf, "function", counting)
    mask = np.arange(24).reshape(4, 6) % 3 == 0
    training.train_masked(model, {0: mask}, data, 2, 0)
    assert [fn.experimental_get_tracing_count() for fn in traces] == [1]
    assert np.array_equal(model.get_weights()[0] != 0, mask)


@pytest.mark.parametrize("module", ["lamp", "nm", "filters", "gradual"])
def test_docstring_examples(module):
    import doctest
    import importlib

    results = doctest.testmod(importlib.import_module(f"pruning.methods.{module}"))
    assert results.attempted >= 1 and results.failed == 0


def test_gradual_prunes_inside_a_nested_model_and_leaves_the_callers_model_alone():
    # tfmot's wrapper could not reach layers of a submodel; the own masks reach every prunable tensor
    keras.utils.set_random_seed(7)
    inner = keras.Sequential([L.Input((6,)), L.Dense(12, activation="relu", name="inner_dense")], name="inner")
    inputs = L.Input((6,))
    model = keras.Model(inputs, L.Dense(3, name="head")(inner(inputs)))
    rng = np.random.default_rng(8)
    x = rng.normal(size=(128, 6)).astype(np.float32)
    y = rng.integers(0, 3, 128)
    data = Dataset("synthetic", x[:32], y[:32], x, y, 3)
    base = model.get_weights()
    chosen = find_prunable(model)
    assert {pw.key for pw in chosen} == {"inner_dense/kernel", "head/kernel"}
    req = PruneRequest(weights={pw.key: base[pw.index] for pw in chosen}, sparsity={pw.key: 0.75 for pw in chosen},
                       scope="layer", seed=0, model=model, data=data, finetune_epochs=2)
    result = METHODS["gradual"].prune(req)
    after = result.model.get_weights()
    for pw in chosen:
        assert int((after[pw.index] != 0).sum()) == keep_count(int(np.prod(pw.shape)), 0.75), pw.key
    for now, then in zip(model.get_weights(), base):
        np.testing.assert_array_equal(now, then)
