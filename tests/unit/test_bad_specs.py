"""Bad prune specs: sparsity out of [0, 1) or not a number, no layers, nothing prunable.

Each is refused with one line at the boundary: the spec, or the engine for facts about the model.
"""
from __future__ import annotations

import math

import pytest
from conftest import INPUT_SHAPE

from pruning.errors import BadInput
from pruning.specs import PruneSpec


@pytest.mark.parametrize(
    "sparsity, message",
    [
        (-0.1, r"sparsity must be in \[0, 1\), not -0.1"),
        (1.0, r"sparsity must be in \[0, 1\), not 1.0: 1.0 would remove every weight"),
        (1.5, r"sparsity must be in \[0, 1\), not 1.5"),
        (math.inf, r"sparsity must be in \[0, 1\), not inf"),
        (math.nan, r"sparsity must be a number in \[0, 1\), not nan"),
        ("0.5", r"sparsity must be a number in \[0, 1\), not '0.5'"),
        (True, r"sparsity must be a number in \[0, 1\), not True"),
    ],
)
def test_sparsity_outside_0_1_or_not_a_number(sparsity, message):
    with pytest.raises(BadInput, match=message):
        PruneSpec(target_sparsity=sparsity)


def test_bounds_themselves():
    assert PruneSpec(target_sparsity=0.0).target_sparsity == 0.0
    assert PruneSpec(target_sparsity=0.999).target_sparsity == 0.999


def test_empty_layer_selection():
    with pytest.raises(BadInput, match="^no layer selected for pruning: select at least one prunable layer$"):
        PruneSpec(layers=())


def test_unknown_layer_names_the_prunable_ones(tiny_refs, engine):
    model, data = tiny_refs
    with pytest.raises(BadInput, match=r"layer\(s\) flatten cannot be pruned: choose among conv, hidden, out"):
        engine.prune(PruneSpec(model=model, data=data, layers=("flatten",)))


def test_model_without_prunable_weights_exits_2(tmp_path, tiny_npz, capsys):
    """Flatten only: 64 outputs cover the 4 classes, but there is nothing to prune."""
    from pruning._keras import keras
    from pruning.cli import main

    inputs = keras.layers.Input(INPUT_SHAPE)
    path = tmp_path / "no_weights.keras"
    keras.Model(inputs, keras.layers.Flatten(name="flat")(inputs)).save(path)
    code = main(["prune", "--model", str(path), "--dataset", str(tiny_npz), "--method", "magnitude", "--sparsity", "0.5"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == ("error: no_weights.keras (file) has no prunable weights (Dense, Conv1D/2D/3D or LSTM kernels): "
                   "pick a model with such layers")
