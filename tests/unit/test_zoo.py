"""Zoo builders: the right shapes and sizes for any dataset; prunable layers found."""
from __future__ import annotations

import pytest

from pruning.core.prunable import find_prunable, layer_table
from pruning.model.zoo import ZOO, build_resnet20


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet20", "lstm"])
@pytest.mark.parametrize("shape, classes", [((8, 8, 1), 10), ((28, 28, 1), 10), ((32, 32, 3), 10)])
def test_builders_fit_the_dataset(name, shape, classes):
    model = ZOO[name].build(shape, classes)
    assert model.input_shape[1:] == shape
    assert model.output_shape == (None, classes)
    assert find_prunable(model)


def test_resnet20_matches_he_et_al():
    model = build_resnet20((32, 32, 3), 10)
    convs = [l for l in model.layers if type(l).__name__ == "Conv2D"]
    # 1 stem + 18 block convs (the "20" counts these 19 plus the Dense) + 2 projections
    assert len(convs) == 21
    assert sorted({c.filters for c in convs}) == [16, 32, 64]
    assert 265_000 < model.count_params() < 280_000  # "about 0.27M on CIFAR-10"


def test_lstm_prunes_kernel_and_recurrent_kernel():
    model = ZOO["lstm"].build((8, 8, 1), 10)
    keys = [pw.key for pw in find_prunable(model)]
    assert keys == ["lstm/kernel", "lstm/recurrent_kernel", "predictions/kernel"]


def test_layer_table_says_why_not_prunable():
    table = layer_table(build_resnet20((8, 8, 1), 10)).set_index("name")
    assert not table.loc["stem_bn", "prunable"]
    assert "BatchNorm" in table.loc["stem_bn", "reason"]
    assert table.loc["stem_conv", "prunable"]
    assert table.loc["pool", "reason"] == "no weights"
