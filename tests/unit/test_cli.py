"""The CLI contract of DESIGN §8: JSON keys, exit codes, one-line errors, --out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pruning.cli import main
from pruning.specs import METRIC_KEYS

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pruning", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_prune_json_has_design_keys_and_out_matches(tiny_model_file, tiny_npz, tmp_path, capsys):
    out = tmp_path / "pruned.keras"
    code = main(["prune", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--method", "magnitude",
                 "--sparsity", "0.5", "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"baseline", "pruned", "method", "target_sparsity", "sparsity", "layers", "timing_s"} <= set(result)
    assert set(METRIC_KEYS) <= set(result["baseline"]) and set(METRIC_KEYS) <= set(result["pruned"])
    assert {"prune", "evaluate", "measure", "total"} <= set(result["timing_s"])
    assert result["method"] == "magnitude" and result["target_sparsity"] == 0.5
    assert result["sparsity"] == pytest.approx((1124 - (18 + 512 + 32)) / 1124)
    layer = result["layers"][1]
    assert set(layer) == {"name", "type", "params", "nonzero_params", "sparsity", "shape_before", "shape_after"}
    assert layer["name"] == "hidden" and layer["shape_before"] == "(64, 16)" == layer["shape_after"]

    from pruning._keras import keras

    model = keras.models.load_model(out)
    data = np.load(tiny_npz)
    accuracy = float((model(data["x_test"]).numpy().argmax(1) == data["y_test"]).mean())
    assert accuracy == pytest.approx(result["pruned"]["accuracy"], abs=1e-9)


def test_list_commands(capsys):
    assert main(["methods"]) == 0
    assert "magnitude" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "mlp", "cnn", "resnet20", "lstm", "resnet50"]
    assert main(["datasets"]) == 0
    assert "digits" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "cnn", "--dataset", "digits", "--method", "magnitude", "--sparsity", "1.0"], "sparsity must be in [0, 1)"),
        (["--model", "nope", "--dataset", "digits", "--method", "magnitude", "--sparsity", "0.5"], "unknown model 'nope'"),
        (["--model", "cnn", "--dataset", "digits", "--method", "nope", "--sparsity", "0.5"], "unknown method 'nope'"),
        (["--model", "missing.keras", "--dataset", "digits", "--method", "magnitude", "--sparsity", "0.5"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    assert main(["prune", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_mismatched_dataset_is_bad_input(tiny_model_file, tmp_path, capsys):
    data = tmp_path / "wide.npz"
    np.savez(data, x_test=np.zeros((4, 28, 28, 1), np.float32), y_test=np.array([0, 1, 2, 3]))
    assert main(["prune", "--model", str(tiny_model_file), "--dataset", str(data), "--method", "magnitude",
                 "--sparsity", "0.5"]) == 2
    assert "model expects (8, 8, 1) inputs, the dataset has (28, 28, 1)" in capsys.readouterr().err


@pytest.mark.slow
def test_real_process_error_is_one_clean_line(tiny_npz):
    # a real `python -m pruning` process: no TensorFlow log noise and no traceback on stderr
    result = run_cli("prune", "--model", "cnn", "--dataset", str(tiny_npz), "--method", "magnitude",
                     "--sparsity", "nan")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: sparsity must be a number in [0, 1), not nan"]


@pytest.mark.slow
def test_real_process_prune_json(tiny_model_file, tiny_npz):
    result = run_cli("prune", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--method", "random",
                     "--sparsity", "0.3", "--scope", "global", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "random" and report["sparsity"] == pytest.approx((1124 - 787) / 1124)
