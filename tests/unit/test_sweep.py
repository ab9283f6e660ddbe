"""Sweeps on a tiny model file: one row per point, exact sparsity, rows equal to single prunes."""
from __future__ import annotations

import doctest
import math

import pandas as pd
import pytest

import pruning.reports as reports_module
from pruning.core.masks import keep_count
from pruning.errors import BadInput
from pruning.model.baselines import weights_checksum
from pruning.reports import ROW_KEYS
from pruning.run.engine import Engine
from pruning.run.sweep import run_sweep
from pruning.specs import METRIC_KEYS, DataRef, ModelRef, PruneSpec, SweepSpec
from pruning.tables import reference_table, to_markdown, wilson_interval

SIZES = {"conv": 36, "hidden": 1024, "out": 64}  # the tiny CNN's prunable kernels
COMPARED = ("accuracy", "loss", "train_accuracy", "robust_accuracy", "params", "nonzero_params",
            "flops", "effective_flops")


def layer_zeros(rate: float) -> int:
    return sum(n - keep_count(n, rate) for n in SIZES.values())


@pytest.fixture(scope="module")
def two_method_sweep(engine, tiny_refs):
    spec = SweepSpec(model=tiny_refs[0], data=tiny_refs[1], methods=("magnitude", "random"), sparsities=(0.0, 0.5, 0.9))
    points, progress = [], []
    report = engine.sweep(spec, on_point=points.append, on_progress=lambda f, m: progress.append(f))
    return spec, report, points, progress


def test_doctests():
    result = doctest.testmod(reports_module)
    assert result.attempted > 0 and result.failed == 0


def test_one_row_per_method_and_rate_streamed_in_order(two_method_sweep):
    spec, report, points, progress = two_method_sweep
    assert len(report.rows) == 2 * 3
    assert list(report.rows.columns) == list(ROW_KEYS)
    assert set(METRIC_KEYS) | {"method", "target_sparsity", "sparsity"} <= set(report.rows.columns)
    assert list(zip(report.rows.method, report.rows.target_sparsity)) == spec.points()
    # each finished point went to on_point at once, as the row that ends up in the report
    assert [(p["method"], p["target_sparsity"]) for p in points] == spec.points()
    assert pd.DataFrame(points, columns=list(ROW_KEYS)).equals(report.rows)
    assert progress == pytest.approx([(i + 1) / 6 for i in range(6)])
    assert report.timing_s["points"] == 6 and report.timing_s["resumed"] == 0
    assert report.n_test == 128


def test_measured_sparsity_follows_the_keep_count_rule(two_method_sweep):
    _, report, _, _ = two_method_sweep
    total = sum(SIZES.values())
    for row in report.rows.itertuples():
        zeros = layer_zeros(row.target_sparsity)
        assert row.sparsity == zeros / total
        assert row.nonzero_params == report.baseline["nonzero_params"] - zeros


def test_rate_zero_is_the_dense_baseline(two_method_sweep):
    _, report, _, _ = two_method_sweep
    for _, row in report.rows[report.rows.target_sparsity == 0.0].iterrows():
        for key in ("accuracy", "loss", "train_accuracy", "robust_accuracy", "nonzero_params", "effective_flops"):
            assert row[key] == report.baseline[key], key
        assert row.accuracy_loss == 0.0


@pytest.mark.parametrize("method", ["magnitude", "random"])
def test_a_sweep_row_equals_a_single_prune(engine, two_method_sweep, method):
    spec, report, _, _ = two_method_sweep
    row = report.rows[(report.rows.method == method) & (report.rows.target_sparsity == 0.9)].iloc[0]
    single = engine.prune(spec.point(method, 0.9))
    for key in COMPARED:
        assert row[key] == single.pruned[key], key
    assert row.sparsity == single.sparsity


def test_confidence_band_is_the_wilson_interval(two_method_sweep):
    _, report, _, _ = two_method_sweep
    for row in report.rows.itertuples():
        low, high = wilson_interval(row.accuracy, 128)
        assert (row.accuracy_low, row.accuracy_high) == (low, high)
        assert row.accuracy_low <= row.accuracy <= row.accuracy_high
        assert row.accuracy_ci95 == pytest.approx((high - low) / 2)
    # Wilson keeps a real width at 100 %, where the normal approximation gives none
    low, high = wilson_interval(1.0, 128)
    assert high == pytest.approx(1.0) and 0.02 < 1.0 - low < 0.04
    assert wilson_interval(0.5, 0) == pytest.approx((math.nan, math.nan), nan_ok=True)


def test_sweep_leaves_the_workbench_at_the_base_weights(engine, tiny_refs):
    bench = engine.workbench(*tiny_refs)
    before = weights_checksum(bench.base_weights)
    spec = SweepSpec(model=tiny_refs[0], data=tiny_refs[1], sparsities=(0.5, 0.9), finetune_epochs=1)
    report = run_sweep(bench, spec)
    assert weights_checksum(bench.current_weights()) == before  # BatchNorm/biases too, after fine-tuning
    assert weights_checksum(bench.base_weights) == before
    total = sum(SIZES.values())
    # fine-tuning re-applies the masks after every step: the sparsity is still exact
    assert list(report.rows.sparsity) == [layer_zeros(0.5) / total, layer_zeros(0.9) / total]
    assert (report.rows.finetune_s > 0).all() and (report.rows.finetune_epochs == 1).all()


def test_resume_reuses_finished_points_without_recomputing(engine, tiny_refs):
    spec = SweepSpec(model=tiny_refs[0], data=tiny_refs[1], sparsities=(0.5, 0.9))
    first = engine.sweep(spec)
    stored = first.rows.iloc[0].to_dict()
    stored["accuracy"] = -1.0  # a marker: a recomputed point could never have it
    points = []
    again = engine.sweep(spec, on_point=points.append, resume=[stored])
    assert again.rows.accuracy.iloc[0] == -1.0
    assert again.rows.accuracy.iloc[1] == first.rows.accuracy.iloc[1]
    assert again.timing_s["resumed"] == 1 and len(points) == 2


def test_bad_method_fails_before_any_model_is_loaded():
    engine = Engine()
    with pytest.raises(BadInput, match="unknown method 'nope'"):
        engine.sweep(SweepSpec(model=ModelRef("resnet20"), data=DataRef("digits"), methods=("magnitude", "nope")))
    assert len(engine._benches) == 0  # nothing was trained or loaded for a spec that cannot run


@pytest.mark.parametrize("kwargs, message", [
    ({"sparsities": (0.5, 1.0)}, r"in \[0, 1\)"),
    ({"sparsities": (0.5, 0.5)}, "twice"),
    ({"sparsities": ()}, "at least one sparsity"),
    ({"methods": ()}, "at least one method"),
    ({"methods": ("magnitude", "magnitude")}, "twice"),
    ({"scope": "model"}, "scope"),
    ({"finetune_epochs": -1}, "epochs"),
])
def test_spec_rejects_bad_input(kwargs, message):
    with pytest.raises(BadInput, match=message):
        SweepSpec(**kwargs)


def test_spec_is_hashable_and_round_trips():
    spec = SweepSpec(methods=("magnitude", "random"), sparsities=(0.0, 0.9), layers=("conv",), finetune_epochs=2)
    again = SweepSpec.from_dict(spec.to_dict())
    assert again == spec and hash(again) == hash(spec) and again.key() == spec.key()
    assert spec.point("random", 0.9) == PruneSpec(method="random", target_sparsity=0.9, layers=("conv",), finetune_epochs=2)


def test_seed_table_and_markdown(two_method_sweep):
    _, report, _, _ = two_method_sweep
    table = reference_table(report.rows)
    assert list(table.columns) == [
        "method", "sparsity", "test accuracy", "accuracy loss", "latency (ms)", "speedup", "nonzero params (M)",
        "gzip size (MB)", "FLOPs reduction", "memory (MB)", "accuracy per MFLOP", "accuracy per MB",
        "robust accuracy", "train accuracy",
    ]
    row = report.rows.iloc[2]  # magnitude at 90 %
    assert table.iloc[2]["sparsity"] == f"{row.sparsity:.1%}"
    assert table.iloc[2]["test accuracy"] == f"{row.accuracy:.2%}"
    lines = to_markdown(table).splitlines()
    assert lines[0] == "| " + " | ".join(table.columns) + " |"
    assert lines[1] == "|---" + "|---:" * 13 + "|"
    assert len(lines) == 2 + 6 and lines[2].startswith("| magnitude | 0.0% | ")


def test_a_method_that_cannot_prune_the_model_is_skipped_with_a_note(engine, tiny_refs):
    # the tiny CNN has no LSTM: lstm-units has nothing to remove, magnitude still gets its curve
    spec = SweepSpec(model=tiny_refs[0], data=tiny_refs[1], methods=("lstm-units", "magnitude"), sparsities=(0.0, 0.5))
    report = engine.sweep(spec)
    assert list(report.rows.method) == ["magnitude", "magnitude"]
    assert len(report.notes) == 1 and report.notes[0].startswith("lstm-units skipped: ")
    with pytest.raises(BadInput, match="lstm-units"):
        engine.sweep(SweepSpec(model=tiny_refs[0], data=tiny_refs[1], methods=("lstm-units",), sparsities=(0.5,)))


def test_a_structured_method_after_masks_starts_from_the_dense_model(engine, tiny_refs):
    # the sweep used to hand filters-l1 the working model still masked by the last magnitude
    # point: filters-l1 at 0 % then "measured" 90 % sparsity and the masked model's accuracy
    spec = SweepSpec(model=tiny_refs[0], data=tiny_refs[1], methods=("magnitude", "filters-l1"),
                     sparsities=(0.0, 0.9))
    rows = engine.sweep(spec).rows.set_index(["method", "target_sparsity"])
    single = engine.prune(spec.point("filters-l1", 0.0))
    assert rows.loc[("magnitude", 0.9), "sparsity"] == layer_zeros(0.9) / sum(SIZES.values())
    assert rows.loc[("filters-l1", 0.0), "sparsity"] == 0.0 == single.sparsity
    assert rows.loc[("filters-l1", 0.0), "accuracy"] == rows.loc[("magnitude", 0.0), "accuracy"] \
        == single.pruned["accuracy"]
    assert rows.loc[("filters-l1", 0.0), "nonzero_params"] == single.pruned["nonzero_params"]
