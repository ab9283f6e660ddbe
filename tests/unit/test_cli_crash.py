"""kill -9 of `python -m pruning sweep` mid-sweep, then the same command again (issue 13, part 2).

A real process is killed after its first points are stored; the next start must read the
run as interrupted with those points, and the same command must compute only the others.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pruning.cli import main

ROOT = Path(__file__).resolve().parents[2]
RATES = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"
POINTS = 20  # two methods x ten rates
# measured again on every run, so they differ between any two runs; everything else must not
TIMED = {"latency_ms", "latency_p10_ms", "latency_p90_ms", "base_latency_ms", "speedup", "prune_s", "finetune_s", "evaluate_s",
         "measure_s"}


def stored_points(db: Path) -> int:
    """Points in the store, read without the store's code (the CLI may be mid-write)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM sweep_points").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def kill_after_points(argv: list[str], home: Path, at_least: int, timeout: float = 240) -> int:
    """Start the CLI, kill -9 it once `at_least` points are stored; returns the count stored then."""
    env = dict(os.environ, PRUNESCOPE_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "pruning", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while stored_points(home / "runs.db") < at_least:
            if proc.poll() is not None:
                pytest.fail(f"the sweep ended (exit {proc.returncode}) before it was killed: {proc.stderr.read()}")
            assert time.monotonic() < deadline, "no points stored in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return stored_points(home / "runs.db")


def cli_json(capsys, *argv: str):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def comparable(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in TIMED}  # sizes are measured in memory: equal


@pytest.mark.slow
def test_a_killed_cli_sweep_is_interrupted_and_the_same_command_resumes_it(tmp_path, monkeypatch, capsys,
                                                                         tiny_model_file, tiny_npz):
    argv = ["sweep", "--model", str(tiny_model_file), "--dataset", str(tiny_npz), "--methods", "magnitude,random",
            "--rates", RATES, "--format", "json"]
    home = tmp_path / "home"
    killed_at = kill_after_points(argv, home, at_least=2)
    assert 2 <= killed_at < POINTS

    monkeypatch.setenv("PRUNESCOPE_HOME", str(home))
    runs = cli_json(capsys, "runs", "--json")  # the next start: the dead process's run is interrupted
    assert [(r["kind"], r["status"], r["points"]) for r in runs] == [("sweep", "interrupted", killed_at)]
    with sqlite3.connect(home / "runs.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finished = [json.loads(text) for (text,) in conn.execute("SELECT row_json FROM sweep_points ORDER BY seq")]

    resumed = cli_json(capsys, *argv)  # the same command
    assert resumed["resumed_points"] == killed_at
    assert resumed["timing_s"]["resumed"] == killed_at and resumed["timing_s"]["points"] == POINTS
    rows = resumed["rows"]
    assert [(r["method"], r["target_sparsity"]) for r in rows] == [
        (m, r / 10) for m in ("magnitude", "random") for r in range(10)]
    assert rows[:killed_at] == finished  # taken from the store, timings and all: not recomputed

    runs = cli_json(capsys, "runs", "--json")
    assert [(r["id"], r["status"], r["points"]) for r in runs] == [
        (resumed["run_id"], "completed", POINTS), (runs[1]["id"], "interrupted", killed_at)]
    with sqlite3.connect(home / "runs.db") as conn:
        keys = conn.execute(
            "SELECT json_extract(row_json, '$.method'), json_extract(row_json, '$.target_sparsity') "
            "FROM sweep_points WHERE run_id = ?", (resumed["run_id"],)).fetchall()
    assert len(keys) == len(set(keys)) == POINTS  # each point stored once

    monkeypatch.setenv("PRUNESCOPE_HOME", str(tmp_path / "fresh"))
    fresh = cli_json(capsys, *argv)  # the same sweep, never interrupted
    assert fresh["resumed_points"] == 0
    assert [comparable(r) for r in rows] == [comparable(r) for r in fresh["rows"]]
    assert comparable(resumed["baseline"]) == comparable(fresh["baseline"])
