"""Sensitivity scans and per-layer plans: exact per-layer prunes, exact overall counts."""
from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

import pruning.plan as plan_module
from pruning.core.masks import keep_count
from pruning.errors import BadInput
from pruning.model.baselines import weights_checksum
from pruning.plan import plan_from_drops, plan_sparsity, plan_spec
from pruning.run.sensitivity import run_sensitivity
from pruning.specs import PruneSpec, SensitivitySpec

SIZES = {"conv": 36, "hidden": 1024, "out": 64}


def zeros(sizes, sparsity) -> int:
    return sum(n - keep_count(n, sparsity) for n in sizes)


@pytest.fixture(scope="module")
def scan(engine, tiny_refs):
    spec = SensitivitySpec(model=tiny_refs[0], data=tiny_refs[1], sparsities=(0.0, 0.5, 0.9))
    progress = []
    return run_sensitivity(engine.workbench(*tiny_refs), spec, on_progress=lambda f, m: progress.append(f)), progress


def test_doctests():
    result = doctest.testmod(plan_module)
    assert result.attempted > 0 and result.failed == 0


def test_scan_shape_counts_and_restored_weights(engine, tiny_refs, scan):
    report, progress = scan
    assert list(report.accuracy.index) == ["conv", "hidden", "out"]
    assert list(report.accuracy.columns) == [0.0, 0.5, 0.9]
    assert (report.accuracy[0.0] == report.baseline_accuracy).all()
    assert report.drop.equals(report.baseline_accuracy - report.accuracy)
    assert report.layer_params() == SIZES
    # the dense baseline plus one test-split pass per layer and nonzero rate, nothing more
    assert report.timing_s["evaluations"] == 1 + 3 * 2
    assert progress[-1] == 1.0
    bench = engine.workbench(*tiny_refs)
    assert weights_checksum(bench.current_weights()) == weights_checksum(bench.base_weights)


def test_a_given_dense_metric_is_not_evaluated_again(engine, tiny_refs, scan):
    """What a Ray actor's per-layer call does: the setup measured the dense model once."""
    report, _ = scan
    spec = SensitivitySpec(model=tiny_refs[0], data=tiny_refs[1], sparsities=(0.0, 0.5, 0.9), layers=("hidden",))
    bench = engine.workbench(*tiny_refs)
    calls = []
    measure = bench.test_metric
    bench.test_metric = lambda *a: calls.append(1) or measure(*a)
    try:
        part = run_sensitivity(bench, spec, baseline=report.baseline_accuracy)
    finally:
        del bench.test_metric
    assert len(calls) == part.timing_s["evaluations"] == 2  # the two nonzero rates, no dense pass
    pd.testing.assert_frame_equal(part.accuracy, report.accuracy.loc[["hidden"]], check_exact=True)


@pytest.mark.parametrize("layer", ["conv", "hidden", "out"])
def test_each_cell_equals_a_prune_of_that_layer_alone(engine, tiny_refs, scan, layer):
    report, _ = scan
    for rate in (0.5, 0.9):
        single = engine.prune(PruneSpec(model=tiny_refs[0], data=tiny_refs[1], target_sparsity=rate, layers=(layer,)))
        assert report.accuracy.loc[layer, rate] == single.pruned["accuracy"]


def test_plan_hits_the_overall_target_exactly_when_pruned(engine, tiny_refs, scan):
    report, _ = scan
    total = sum(SIZES.values())
    plan = plan_sparsity(report, target_overall_sparsity=0.6)
    goal = total - keep_count(total, 0.6)
    assert sum(zeros([SIZES[layer]], s) for layer, s in plan.items()) == goal
    base = PruneSpec(model=tiny_refs[0], data=tiny_refs[1], target_sparsity=0.6)
    pruned = engine.prune(plan_spec(base, plan))
    assert pruned.sparsity == goal / total
    per_layer = pruned.layers.set_index("name")
    for layer, s in plan.items():
        assert per_layer.loc[layer, "nonzero_params"] - (per_layer.loc[layer, "params"] - SIZES[layer]) \
            == keep_count(SIZES[layer], s)
    # a global prune at the same target removes the same number of weights
    assert engine.prune(PruneSpec(model=tiny_refs[0], data=tiny_refs[1], target_sparsity=0.6, scope="global")).sparsity \
        == pruned.sparsity


DROPS = pd.DataFrame(
    {0.5: [0.30, 0.00, 0.02], 0.8: [0.60, 0.01, 0.10], 0.9: [0.80, 0.03, 0.30]},
    index=["sensitive", "robust", "medium"],
)
PLAN_SIZES = {"sensitive": [1000], "robust": [20000], "medium": [5000]}


@pytest.mark.parametrize("target", [0.3, 0.5, 0.7, 0.85])
def test_plan_gives_sensitive_layers_less(target):
    plan = plan_from_drops(DROPS, PLAN_SIZES, target_overall_sparsity=target)
    # at low targets the robust layer, flat up to 50 %, takes all of it and the others stay dense
    assert plan["sensitive"] <= plan["medium"] <= plan["robust"]
    assert plan["sensitive"] < target < plan["robust"]
    total = sum(n for sizes in PLAN_SIZES.values() for n in sizes)
    assert sum(zeros(PLAN_SIZES[k], s) for k, s in plan.items()) == total - keep_count(total, target)


def test_plan_at_the_largest_rate_and_at_zero():
    assert plan_from_drops(DROPS, PLAN_SIZES, target_overall_sparsity=0.9) == pytest.approx(
        {"sensitive": 0.9, "robust": 0.9, "medium": 0.9})
    assert plan_from_drops(DROPS, PLAN_SIZES, target_overall_sparsity=0.0) == {
        "sensitive": 0.0, "robust": 0.0, "medium": 0.0}


@pytest.mark.parametrize("target", [0.3, 0.45, 0.6, 0.77])
def test_plan_is_exact_with_multi_tensor_layers(target):
    # an LSTM's kernel and recurrent kernel share one planned sparsity but round apart
    drops = pd.DataFrame({0.5: [0.05, 0.01], 0.9: [0.2, 0.02]}, index=["lstm", "dense"])
    sizes = {"lstm": [2049, 1027], "dense": [643]}
    plan = plan_from_drops(drops, sizes, target_overall_sparsity=target)
    total = 2049 + 1027 + 643
    assert sum(zeros(sizes[k], s) for k, s in plan.items()) == total - keep_count(total, target)


def test_budget_plan_spends_the_budget():
    def interp_drop(layer, s):
        return float(np.interp(s, [0.0] + list(DROPS.columns), [0.0] + list(DROPS.loc[layer])))

    assert plan_from_drops(DROPS, PLAN_SIZES, accuracy_drop_budget=0.0) == {
        "sensitive": 0.0, "robust": 0.0, "medium": 0.0}
    assert plan_from_drops(DROPS, PLAN_SIZES, accuracy_drop_budget=5.0) == pytest.approx(
        {"sensitive": 0.9, "robust": 0.9, "medium": 0.9})
    plan = plan_from_drops(DROPS, PLAN_SIZES, accuracy_drop_budget=0.03)
    assert plan["sensitive"] < plan["medium"] < plan["robust"]
    # equal drop per layer (the budget split three ways), up to rounding to whole weights
    for layer, s in plan.items():
        assert interp_drop(layer, s) == pytest.approx(0.01, abs=5e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"target_overall_sparsity": 0.95}, "above the largest scanned sparsity"),
    ({"target_overall_sparsity": 0.5, "accuracy_drop_budget": 0.01}, "not both"),
    ({}, "neither"),
    ({"accuracy_drop_budget": -0.1}, ">= 0"),
])
def test_plan_rejects_bad_requests(kwargs, message):
    with pytest.raises(BadInput, match=message):
        plan_from_drops(DROPS, PLAN_SIZES, **kwargs)


def test_layer_sparsity_spec_validation_and_round_trip():
    spec = PruneSpec(layer_sparsity=(("conv", 0.25), ("hidden/kernel", 0.75)))
    again = PruneSpec.from_dict(spec.to_dict())
    assert again == spec and again.key() == spec.key() and hash(again) == hash(spec)
    for bad, message in [((("conv", 1.0),), r"conv: sparsity must be in \[0, 1\)"),
                         ((("conv", 0.1), ("conv", 0.2)), "twice"),
                         ((), "non-empty"),
                         ([("conv", 0.1)], "tuple")]:
        with pytest.raises(BadInput, match=message):
            PruneSpec(layer_sparsity=bad)


def test_layer_sparsity_overrides_per_layer_and_per_key(engine, tiny_refs):
    model, data = tiny_refs
    report = engine.prune(PruneSpec(model=model, data=data, target_sparsity=0.5,
                                    layer_sparsity=(("conv", 0.25), ("out/kernel", 0.75))))
    layers = report.layers.set_index("name")
    for layer, s in {"conv": 0.25, "hidden": 0.5, "out": 0.75}.items():
        assert layers.loc[layer, "sparsity"] == (SIZES[layer] - keep_count(SIZES[layer], s)) / SIZES[layer]
    with pytest.raises(BadInput, match="not selected prunable layers"):
        engine.prune(PruneSpec(model=model, data=data, layer_sparsity=(("pool", 0.5),)))
