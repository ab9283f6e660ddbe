"""The engine with methods that return a model or train: shapes before -> after, honest
sparsity, masks kept through fine-tuning, and a workbench that stays reusable."""
from __future__ import annotations

import numpy as np
import pytest

from pruning.model.baselines import weights_checksum
from pruning.specs import PruneSpec


def spec_for(refs, **kw) -> PruneSpec:
    model, data = refs
    return PruneSpec(model=model, data=data, **kw)


def layer(report, name):
    return report.layers.set_index("name").loc[name]


def test_filter_pruning_report_shows_the_smaller_model(engine, tiny_refs, tmp_path):
    from pruning._keras import keras

    bench = engine.workbench(*tiny_refs)
    base = weights_checksum(bench.model.get_weights())
    spec = spec_for(tiny_refs, method="filters-l1", target_sparsity=0.5)
    report = engine.prune(spec)

    assert report.granularity == "structured"
    # tiny cnn: conv 4 filters -> 2; Flatten of 4x4x4 -> Dense(16) loses 32 of 64 rows
    assert (layer(report, "conv").shape_before, layer(report, "conv").shape_after) == ("(3, 3, 1, 4)", "(3, 3, 1, 2)")
    assert (layer(report, "hidden").shape_before, layer(report, "hidden").shape_after) == ("(64, 16)", "(32, 16)")
    assert layer(report, "out").shape_after == "(16, 4)"
    assert layer(report, "conv").sparsity == 0.5 and layer(report, "hidden").sparsity == 0.5
    assert layer(report, "out").sparsity == 0.0
    assert report.sparsity == pytest.approx((18 + 512) / (36 + 1024 + 64))
    assert report.histograms["conv"]["zeros_after"] == 18

    saved = keras.models.load_model(engine.save(spec, tmp_path / "small.keras"), safe_mode=True, compile=False)
    assert saved.count_params() == report.pruned["params"] == (9 * 2 + 2) + (32 * 16 + 16) + (16 * 4 + 4)
    assert report.pruned["flops"] == 8 * 8 * 9 * 2 + 32 * 16 + 16 * 4
    assert any("Measured latency speedup against the dense model" in note for note in report.notes)
    # the working model never saw the surgery: the next prune starts from the base
    assert weights_checksum(bench.model.get_weights()) == base


def test_structured_fine_tuning_trains_the_smaller_model(engine, tiny_refs):
    report = engine.prune(spec_for(tiny_refs, method="neurons", target_sparsity=0.5, finetune_epochs=1))
    assert layer(report, "hidden").shape_after == "(64, 8)"
    assert layer(report, "out").shape_after == "(8, 4)"
    assert report.timing_s["finetune"] > 0
    assert 0.0 <= report.pruned["accuracy"] <= 1.0


def test_nm_zeros_stay_zeros_through_fine_tuning(engine, tiny_refs):
    report = engine.prune(spec_for(tiny_refs, method="nm", target_sparsity=0.5, finetune_epochs=1))
    # conv has 1 input channel (skipped); hidden (64 inputs) and out (16) are exactly 2:4
    assert layer(report, "conv").sparsity == 0.0
    assert layer(report, "hidden").sparsity == 0.5 and layer(report, "out").sparsity == 0.5
    assert any("conv/kernel (1 input channels)" in note for note in report.notes)


def test_gradual_through_the_engine_leaves_the_workbench_reusable(engine, tiny_refs):
    bench = engine.workbench(*tiny_refs)
    before = engine.prune(spec_for(tiny_refs, method="magnitude", target_sparsity=0.7))
    report = engine.prune(spec_for(tiny_refs, method="gradual", target_sparsity=0.7, finetune_epochs=1))
    for name, n in {"conv": 36, "hidden": 1024, "out": 64}.items():
        assert layer(report, name).sparsity == pytest.approx(1 - round(n * 0.3) / n)
    assert report.timing_s["finetune"] == 0.0  # gradual trains inside its prune step
    np.testing.assert_array_equal(
        [w.sum() for w in bench.model.get_weights()], [w.sum() for w in bench.base_weights])
    after = engine.prune(spec_for(tiny_refs, method="magnitude", target_sparsity=0.7))
    assert after.pruned["accuracy"] == before.pruned["accuracy"]
    assert after.sparsity == before.sparsity
