"""The CLI's run commands: prune runs are stored, `runs` lists them, bad input exits 2 in one line.

In-process through `main(argv)`, each test with its own PRUNESCOPE_HOME.
"""
from __future__ import annotations

import json

import pytest

from pruning.cli import main
from pruning.runs.store import RunStore


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_HOME", str(tmp_path))
    return tmp_path


def run_json(capsys, argv: list[str]):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_prunes_are_stored_and_listed(home, tiny_model_file, tiny_npz, capsys):
    base = ["prune", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--json"]
    first = run_json(capsys, base + ["--method", "magnitude", "--sparsity", "0.5"])
    second = run_json(capsys, base + ["--method", "random", "--sparsity", "0.8", "--seed", "3"])
    listed = run_json(capsys, ["runs", "--json"])
    assert [r["id"] for r in listed] == [second["run_id"], first["run_id"]]
    newest = listed[0]
    assert (newest["status"], newest["kind"], newest["method"], newest["seed"]) == ("completed", "prune", "random", 3)
    assert newest["model"] == tiny_model_file.name and newest["dataset"] == tiny_npz.name
    assert newest["target_sparsity"] == 0.8 and newest["sparsity"] == second["sparsity"]
    assert newest["accuracy"] == second["pruned"]["accuracy"]
    assert newest["baseline_accuracy"] == second["baseline"]["accuracy"]
    assert newest["gzip_bytes"] == second["pruned"]["gzip_bytes"]
    assert [r["id"] for r in run_json(capsys, ["runs", "--json", "--method", "magnitude"])] == [first["run_id"]]

    assert main(["runs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and "random" in table[1] and "magnitude" in table[2]
    assert RunStore(home / "runs.db").get(first["run_id"]).source == "cli"


def test_a_failed_cli_prune_is_stored_as_failed(home, tiny_model_file, tiny_npz, capsys):
    argv = ["prune", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--method", "magnitude",
            "--sparsity", "0.5", "--layers", "nope"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: layer(s) nope cannot be pruned")
    (run,) = RunStore(home / "runs.db").list()
    assert run.status == "failed" and "nope" in run.error


@pytest.mark.parametrize("argv, message", [
    (["prune", "--model", "cnn"], "prune needs --dataset, --method, --sparsity"),
    (["prune", "--recipe", "missing.json"], "recipe missing.json does not exist"),
    (["prune", "--recipe", "r.json", "--sparsity", "0.5"], "--recipe fixes the whole spec: drop --sparsity"),
    (["export", "7", "--format", "keras", "--out", "x.keras"], "there is no run 7"),
    (["report", "7", "--out", "r.html"], "there is no run 7"),
])
def test_bad_input_exits_2_with_one_line(home, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_empty_store_lists_nothing(home, capsys):
    assert run_json(capsys, ["runs", "--json"]) == []
