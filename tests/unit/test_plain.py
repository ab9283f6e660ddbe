"""The one JSON cleaner and the one sparsity-list parser: exact outputs and their doctests."""
from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

import pruning.plain as plain_module
import pruning.specs as specs_module
import pruning.tables as tables_module
from pruning.errors import BadInput
from pruning.plain import to_plain
from pruning.specs import parse_sparsities


@pytest.mark.parametrize("module", [plain_module, specs_module, tables_module])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_to_plain_makes_strict_json_and_keeps_nan_only_when_asked():
    value = {"x": np.float32(0.25), "n": np.int64(3), "a": np.array([[1, 2]]), "t": (np.nan, 1.5), 4: [np.inf]}
    assert json.dumps(to_plain(value), allow_nan=False) == '{"x": 0.25, "n": 3, "a": [[1, 2]], "t": [null, 1.5], "4": [null]}'
    kept = to_plain(value, keep_nan=True)
    assert math.isnan(kept["t"][0]) and kept["4"] == [math.inf]
    assert to_plain(np.float64(0.1) + np.float64(0.2)) == 0.30000000000000004  # full precision


def test_parse_sparsities_fractions_and_percent():
    assert parse_sparsities("0,0.5, 0.9,") == (0.0, 0.5, 0.9)
    assert parse_sparsities("90, 20 %;0", percent=True) == (0.9, 0.2, 0.0)


@pytest.mark.parametrize("text, percent, message", [
    ("0,abc", False, "--rates: 'abc' is not a number"),
    (",", False, "--rates is empty"),
    ("0.5,1.0", False, "sparsity must be in [0, 1), not 1.0"),
    ("50, x", True, "'x' is not a number: list sparsities in percent"),
    ("50, 100", True, "sparsity 100% is outside [0, 100)"),
    (" ", True, "the sparsity list is empty"),
])
def test_parse_sparsities_bad_input_names_the_entry(text, percent, message):
    with pytest.raises(BadInput) as info:
        parse_sparsities(text, percent=percent)
    assert message in str(info.value)
