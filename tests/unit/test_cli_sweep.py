"""`python -m pruning sweep` and `sensitivity`: the output formats, the JSON keys, exit codes."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pruning.cli import main
from pruning.core.masks import keep_count
from pruning.reports import ROW_KEYS
from pruning.specs import METRIC_KEYS

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def paths(tiny_model_file, tiny_npz):
    return str(tiny_model_file), str(tiny_npz)


def test_sweep_json_has_baseline_rows_and_timing(capsys, paths):
    code, out, err = run_cli(capsys, "sweep", "--model", paths[0], "--dataset", paths[1],
                             "--methods", "magnitude,random", "--rates", "0,0.5,0.9", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert {"baseline", "rows", "timing_s"} <= set(data)
    assert set(METRIC_KEYS) <= set(data["baseline"])
    assert len(data["rows"]) == 6
    assert [(r["method"], r["target_sparsity"]) for r in data["rows"]] == [
        (m, r) for m in ("magnitude", "random") for r in (0.0, 0.5, 0.9)]
    for row in data["rows"]:
        assert set(METRIC_KEYS) | {"method", "target_sparsity", "sparsity"} <= set(row)
    assert {"prune", "evaluate", "total"} <= set(data["timing_s"])
    total = 36 + 1024 + 64
    zeros = sum(n - keep_count(n, 0.9) for n in (36, 1024, 64))
    assert data["rows"][2]["sparsity"] == zeros / total
    assert isinstance(data["run_id"], int) and data["resumed_points"] == 0


def test_sweep_json_resumes_an_interrupted_identical_sweep(capsys, paths):
    """The page's resume policy: finished points of an interrupted identical run are reused."""
    from pruning.runs.store import open_store
    from pruning.specs import DataRef, ModelRef, SweepSpec

    argv = ["sweep", "--model", paths[0], "--dataset", paths[1], "--methods", "magnitude", "--rates", "0.3,0.6",
            "--format", "json"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    fresh = json.loads(out)
    assert fresh["resumed_points"] == 0

    spec = SweepSpec(model=ModelRef.parse(paths[0]), data=DataRef.parse(paths[1]), methods=("magnitude",),
                     sparsities=(0.3, 0.6))
    marked = dict(fresh["rows"][0], accuracy=0.125)  # a value no measurement gives: proves it was not recomputed

    def stopped(on_point):
        on_point(marked)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_store().record_points("sweep", spec, stopped, source="test")
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["resumed_points"] == 1
    assert resumed["rows"][0]["accuracy"] == 0.125
    point = ("method", "target_sparsity", "sparsity", "accuracy", "nonzero_params")
    assert [resumed["rows"][1][k] for k in point] == [fresh["rows"][1][k] for k in point]  # measured again
    assert resumed["run_id"] != fresh["run_id"]
    assert list(resumed) == list(fresh)  # same keys, same order


def test_sweep_csv_has_every_column(capsys, paths):
    code, out, _ = run_cli(capsys, "sweep", "--model", paths[0], "--dataset", paths[1],
                           "--methods", "magnitude", "--rates", "0.2,0.8", "--format", "csv")
    assert code == 0
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == list(ROW_KEYS)
    assert list(frame.target_sparsity) == [0.2, 0.8] and list(frame.method) == ["magnitude"] * 2


def test_sweep_table_to_a_file(capsys, paths, tmp_path):
    target = tmp_path / "table.md"
    code, out, _ = run_cli(capsys, "sweep", "--model", paths[0], "--dataset", paths[1],
                           "--methods", "magnitude", "--rates", "0,0.9", "--out", target)
    assert code == 0
    assert out.startswith(f"2 points written to {target}")
    lines = target.read_text().splitlines()
    assert lines[0] == ("| method | sparsity | test accuracy | accuracy loss | latency (ms) | speedup | "
                        "nonzero params (M) | gzip size (MB) | FLOPs reduction | memory (MB) | accuracy per MFLOP | "
                        "accuracy per MB | robust accuracy | train accuracy |")
    assert len(lines) == 4
    assert lines[2].startswith("| magnitude | 0.0% | ") and "| +0.00 pt |" in lines[2]


def test_sensitivity_json_with_a_plan(capsys, paths):
    code, out, err = run_cli(capsys, "sensitivity", "--model", paths[0], "--dataset", paths[1],
                             "--rates", "0.5,0.9", "--plan-target", "0.7", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [layer["name"] for layer in data["layers"]] == ["conv", "hidden", "out"]
    assert data["rates"] == [0.5, 0.9]
    for layer in data["layers"]:
        assert layer["drop"] == pytest.approx([data["baseline_accuracy"] - a for a in layer["accuracy"]])
    sizes = {"conv": 36, "hidden": 1024, "out": 64}
    planned_zeros = sum(n - keep_count(n, data["plan"][name]) for name, n in sizes.items())
    assert planned_zeros == 1124 - keep_count(1124, 0.7)


def test_sensitivity_text_table(capsys, paths):
    code, out, _ = run_cli(capsys, "sensitivity", "--model", paths[0], "--dataset", paths[1], "--rates", "0.5")
    assert code == 0
    lines = out.splitlines()
    assert "baseline test accuracy" in lines[0]
    assert lines[1].split() == ["params", "50%"]  # header: one column per rate
    assert [line.split()[0] for line in lines[3:6]] == ["conv", "hidden", "out"]


@pytest.mark.parametrize("argv, message", [
    (["--methods", "magnitude", "--rates", "0,1.5"], "sparsity must be in [0, 1)"),
    (["--methods", "magnitude", "--rates", "0,abc"], "'abc' is not a number"),
    (["--methods", "magnitude", "--rates", ","], "--rates is empty"),
    (["--methods", "magnitude,nope", "--rates", "0.5"], "unknown method 'nope'"),
    (["--methods", "magnitude", "--rates", "0.5,0.5"], "twice"),
])
def test_sweep_bad_input_exits_2_with_one_line(capsys, paths, argv, message):
    code, out, err = run_cli(capsys, "sweep", "--model", paths[0], "--dataset", paths[1], *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_bad_input_from_a_real_process_has_no_traceback(tiny_npz):
    proc = subprocess.run(
        [sys.executable, "-m", "pruning", "sensitivity", "--model", "mlp", "--dataset", str(tiny_npz),
         "--rates", "0.5,2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: sparsity must be in [0, 1), not 2.0: 1.0 would remove every weight"]
