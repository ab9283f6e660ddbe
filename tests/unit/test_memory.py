"""Inference memory and efficiency on every point: `measure.memory` read off the Keras graph, in the
prune report, its derived figures, a sweep's rows and its reference table, and `prune --json`.

The tiny CNN of tests/conftest.py: input 8x8x1 (64 floats), conv 8x8x4 (256), pool 4x4x4 (64),
flatten (64), hidden 16, out 4; weights 40 + 1,040 + 68 = 1,148 floats.
"""
from __future__ import annotations

import json
import math

import pytest

from pruning.cli import main
from pruning.measure.memory import activation_bytes
from pruning.specs import PruneSpec, SweepSpec

TINY_WEIGHT_BYTES = 4 * 1148
TINY_PEAK = 4 * (64 + 256)  # at the conv: its input and its output (and at the pool: 256 + 64)


def test_tiny_cnn_peak_is_the_conv_input_and_output_and_tflite_agrees():
    from pruning.measure.deploy import convert_tflite, tflite_memory
    from tests.conftest import build_tiny_cnn

    model = build_tiny_cnn()
    assert activation_bytes(model) == TINY_PEAK
    # TFLite fuses the relu into the conv and plans the same live set: the two rules agree here
    assert tflite_memory(convert_tflite(model, "float32", sparsity=False))["activation_bytes"] == TINY_PEAK


def test_a_residual_branch_stays_live_and_dropout_makes_no_buffer():
    from pruning._keras import keras

    L = keras.layers
    inputs = L.Input((10,))
    a = L.Dense(20, name="a")(inputs)
    b = L.Dropout(0.5, name="drop")(a)  # the identity at inference
    c = L.Dense(20, name="c")(b)
    d = L.Dense(20, name="d")(c)
    out = L.Add(name="add")([a, d])  # `a` is live from its Dense to the Add
    model = keras.Model(inputs, out)
    # at d: a (20, the skip), c (20) and d (20); the input (10) was last read by `a`
    assert activation_bytes(model) == 4 * 60
    chain = keras.Model(inputs, L.Dense(20, name="e")(L.Dropout(0.5, name="drop2")(L.Dense(20, name="f")(inputs))))
    assert activation_bytes(chain) == 4 * 40  # at e: f's output through the dropout (20) and e's (20)


def test_masks_keep_memory_structured_filters_shrink_it(engine, tiny_refs):
    model, data = tiny_refs
    masks = engine.prune(PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.6, seed=3))
    base, pruned, derived = masks.baseline, masks.pruned, masks.derived()
    assert base["memory_bytes"] == TINY_WEIGHT_BYTES + TINY_PEAK == 5872
    assert (pruned["activation_bytes"], pruned["memory_bytes"]) == (TINY_PEAK, 5872)  # zeros are still stored
    assert derived["memory_reduction"] == 0.0
    for metrics in (base, pruned):
        assert metrics["accuracy_per_mflop"] == metrics["accuracy"] / (metrics["effective_flops"] / 1e6)
        assert metrics["accuracy_per_mb"] == metrics["accuracy"] / (metrics["memory_bytes"] / 1e6)
    assert derived["efficiency_gain"] == pruned["accuracy_per_mflop"] / base["accuracy_per_mflop"]
    # the cards stream from the evaluated view: memory and efficiency are in it
    assert {"memory_bytes", "accuracy_per_mflop", "accuracy_per_mb"} <= set(masks.evaluated()["pruned"])

    filters = engine.prune(PruneSpec(model=model, data=data, method="filters-l1", target_sparsity=0.5, seed=3))
    # conv 3*3*1*2 + 2, hidden (4*4*2)*16 + 16, out 16*4 + 4 = 616 floats; peak at the conv: 64 + 8*8*2
    assert filters.pruned["activation_bytes"] == 4 * (64 + 128)
    assert filters.pruned["memory_bytes"] == 4 * 616 + 4 * 192
    assert filters.derived()["memory_reduction"] == 1 - (4 * 808) / 5872


def test_sweep_rows_and_reference_table_carry_memory_and_efficiency(engine, tiny_refs):
    from pruning.run.sweep import run_sweep

    model, data = tiny_refs
    report = run_sweep(engine.workbench(model, data, 0), SweepSpec(model=model, data=data, methods=("magnitude",),
                                                                   sparsities=(0.0, 0.5)))
    rows = report.rows
    assert list(rows["memory_bytes"]) == [5872, 5872]
    assert list(rows["accuracy_per_mb"]) == [a / 5872e-6 for a in rows["accuracy"]]
    table = report.table()
    assert list(table["memory (MB)"]) == ["0.006", "0.006"]
    assert list(table["accuracy per MFLOP"]) == [f"{v:.4g}" for v in rows["accuracy_per_mflop"]]
    assert "accuracy per MB" in table.columns


def test_prune_json_has_memory_and_efficiency(tiny_refs, tiny_model_file, tiny_npz, capsys):
    code = main(["prune", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--method", "magnitude",
                 "--sparsity", "0.6", "--seed", "3", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    for side in ("baseline", "pruned"):
        assert result[side]["memory_bytes"] == 5872 and result[side]["activation_bytes"] == TINY_PEAK
        assert math.isclose(result[side]["accuracy_per_mb"], result[side]["accuracy"] / 5872e-6)
    assert result["derived"]["memory_reduction"] == 0.0
    assert result["derived"]["efficiency_gain"] == pytest.approx(
        result["pruned"]["accuracy_per_mflop"] / result["baseline"]["accuracy_per_mflop"], rel=1e-12)


def test_a_model_with_no_graph_gets_no_memory_figure_not_a_refusal():
    import numpy as np

    from pruning._keras import keras
    from pruning.measure.memory import graph_activation_bytes, memory_metrics

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(np.zeros((1, 4), np.float32))
    assert graph_activation_bytes(model) is None
    figures = memory_metrics(model.get_weights(), None)
    assert math.isnan(figures["memory_bytes"]) and math.isnan(figures["activation_bytes"])
    assert memory_metrics([np.zeros((4, 3), np.float32)], 40) == {"activation_bytes": 40, "memory_bytes": 88}


def test_cli_sweep_json_rows_have_memory_and_efficiency(tiny_model_file, tiny_npz, capsys):
    code = main(["sweep", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--methods", "magnitude",
                 "--rates", "0,0.5", "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [row["memory_bytes"] for row in result["rows"]] == [5872, 5872]
    assert [row["memory_reduction"] for row in result["rows"]] == [0.0, 0.0]
    for row in result["rows"]:
        assert row["accuracy_per_mflop"] == row["accuracy"] / (row["effective_flops"] / 1e6)
    assert result["baseline"]["memory_bytes"] == 5872
