"""The run store: round trip, concurrent writers, migrations, interrupted runs.

No TensorFlow here: reports are built by hand, so these run in seconds.
"""
from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from pruning.errors import BadInput
from pruning.reports import PruneReport
from pruning.runs import store as store_module
from pruning.runs.store import SCHEMA_VERSION, Outcome, RunStore, StoreError
from pruning.specs import DataRef, ModelRef, PruneSpec

ROOT = Path(__file__).resolve().parents[2]


def make_report(spec: PruneSpec, model_path: Path, accuracy: float = 0.75) -> PruneReport:
    base = {"accuracy": 0.9, "loss": 0.3, "train_accuracy": float("nan"), "robust_accuracy": 0.85,
            "params": 1000, "nonzero_params": 1000, "flops": 5000, "effective_flops": 5000,
            "size_bytes": 40_000, "gzip_bytes": 30_000, "latency_ms": 1.5, "latency_p90_ms": 1.7}
    pruned = dict(base, accuracy=accuracy, nonzero_params=400, effective_flops=2000, gzip_bytes=12_000)
    layers = pd.DataFrame([
        {"name": "conv", "type": "Conv2D", "params": 40, "nonzero_params": 16, "prunable_params": 36,
         "sparsity": 24 / 36, "target_sparsity": spec.target_sparsity, "shape_before": "(3, 3, 1, 4)", "shape_after": "(3, 3, 1, 4)"},
        {"name": "out", "type": "Dense", "params": 68, "nonzero_params": 30, "prunable_params": 64,
         "sparsity": 38 / 64, "target_sparsity": spec.target_sparsity, "shape_before": "(16, 4)", "shape_after": "(16, 4)"},
    ])
    hist = {"edges": [-1.0, 0.0, 1.0], "before": [5, 7], "after": [2, 3], "zeros_before": 0, "zeros_after": 7}
    return PruneReport(
        spec=spec, method=spec.method, granularity="unstructured", target_sparsity=spec.target_sparsity,
        sparsity=0.6, baseline=base, pruned=pruned, layers=layers, histograms={"conv": hist},
        mask_images={"conv": [[1.0, 0.0]]}, timing_s={"prune": 0.01, "evaluate": 0.02, "total": 0.05},
        model_path=str(model_path), environment={"python": "3.11", "device": "CPU (2 cores)"},
        notes=("a note",),
    )


@pytest.fixture
def spec() -> PruneSpec:
    return PruneSpec(model=ModelRef("cnn"), data=DataRef("digits"), method="magnitude", target_sparsity=0.6, seed=3)


@pytest.fixture
def artifact(tmp_path) -> Path:
    path = tmp_path / "pruned.keras"
    path.write_bytes(b"model bytes \x00\x01" * 100)
    return path


def test_round_trip_keeps_everything(tmp_path, spec, artifact):
    store = RunStore(tmp_path / "runs.db")
    report = make_report(spec, artifact)
    run_id, returned = store.record_prune(spec, lambda: report, name="first", source="test")
    assert returned is report
    run = store.get(run_id)
    assert (run.kind, run.status, run.name, run.source) == ("prune", "completed", "first", "test")
    assert run.prune_spec() == spec  # the spec survives JSON exactly, so re-runs are the same spec
    assert run.metrics["pruned"]["accuracy"] == 0.75
    assert run.metrics["baseline"]["train_accuracy"] is None  # NaN is stored as null, not lost as text
    assert run.metrics["derived"]["accuracy_loss"] == pytest.approx(0.9 - 0.75)
    assert [row["name"] for row in run.layers] == ["conv", "out"]
    assert run.layers[0]["sparsity"] == pytest.approx(24 / 36)
    assert run.details["histograms"]["conv"]["after"] == [2, 3]
    assert run.details["notes"] == ["a note"]
    assert run.environment["device"] == "CPU (2 cores)"
    assert (run.model, run.dataset, run.method) == ("cnn", "digits", "magnitude")
    assert run.finished_at >= run.created_at
    # the artifact is the run's own copy, so a later prune of the same spec cannot overwrite it
    assert Path(run.artifact_path).read_bytes() == artifact.read_bytes()
    assert Path(run.artifact_path).parent == tmp_path / "runs" / str(run_id)
    assert not list(Path(run.artifact_path).parent.glob(".*.tmp"))
    assert run.summary()["accuracy"] == 0.75 and run.summary()["target_sparsity"] == 0.6


def test_failed_and_interrupted_work_is_recorded_and_reraised(tmp_path, spec):
    store = RunStore(tmp_path / "runs.db")

    def bad():
        raise BadInput("model expects (8, 8, 1) inputs")

    with pytest.raises(BadInput):
        store.record_prune(spec, bad)
    with pytest.raises(KeyboardInterrupt):
        store.record_prune(spec, lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    interrupted, failed = store.list()
    assert failed.status == "failed" and "model expects (8, 8, 1) inputs" in failed.error
    assert interrupted.status == "interrupted" and interrupted.artifact_path is None


def test_list_filters_edit_and_delete(tmp_path, spec, artifact):
    store = RunStore(tmp_path / "runs.db")
    a, _ = store.record_prune(spec, lambda: make_report(spec, artifact))
    other = PruneSpec(model=ModelRef("mlp"), data=DataRef("digits"), method="random", target_sparsity=0.3)
    b, _ = store.record_prune(other, lambda: make_report(other, artifact))
    assert [r.id for r in store.list()] == [b, a]  # newest first
    assert [r.id for r in store.list(model="mlp")] == [b]
    assert [r.id for r in store.list(method="magnitude", dataset="digits")] == [a]
    store.rename(a, "  keep me  ")
    store.set_note(a, "for the Tuesday demo")
    store.set_detail(a, "tflite", {"agreement": 1.0})
    run = store.get(a)
    assert (run.name, run.note, run.details["tflite"]) == ("keep me", "for the Tuesday demo", {"agreement": 1.0})
    assert run.details["notes"] == ["a note"]  # set_detail merges, it does not replace
    folder = Path(store.get(b).artifact_path).parent
    store.delete(b)
    assert not folder.exists()
    with pytest.raises(BadInput, match="no run"):
        store.get(b)
    with pytest.raises(BadInput, match="no run"):
        store.rename(b, "gone")


def test_sweep_points_stream_in_order_and_survive_a_crash(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    sweep_spec = {"model": {"name": "cnn"}, "data": {"name": "digits"}, "methods": ["magnitude", "random"]}

    def sweep(on_point):
        for i, rate in enumerate((0.0, 0.5, 0.9)):
            on_point({"method": "magnitude", "target_sparsity": rate, "sparsity": rate, "accuracy": 1 - rate})
            if i == 1:
                raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        store.record_points("sweep", sweep_spec, sweep)
    run = store.list(kind="sweep")[0]
    assert run.status == "failed" and run.method == "magnitude,random"
    assert [p["target_sparsity"] for p in store.points(run.id)] == [0.0, 0.5]

    run_id, result = store.record_points("sweep", sweep_spec, lambda on_point: [on_point({"i": i}) for i in range(3)])
    assert [p["i"] for p in store.points(run_id)] == [0, 1, 2]
    assert store.get(run_id).metrics["points"] == 3


def test_eight_threads_write_1600_runs_without_loss_or_lock_errors(tmp_path, spec, artifact):
    path = tmp_path / "runs.db"
    shared = RunStore(path)
    errors: list[BaseException] = []
    ids: list[list[int]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def writer(t: int) -> None:
        # half the threads share one store object (the app's cache_resource), half open their own
        store = shared if t % 2 else RunStore(path)
        start.wait()
        try:
            for i in range(200):
                run_id = store.begin("prune", spec, name=f"t{t}-{i}")
                if i % 3 == 0:
                    store.add_sweep_point(run_id, {"i": i})
                store.complete(run_id, Outcome(metrics={"thread": t, "i": i}))
                ids[t].append(run_id)
        except BaseException as exc:  # any error reaching a caller fails the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runs = shared.list()
    assert len(runs) == 1600 and shared.count() == 1600
    assert len({i for chunk in ids for i in chunk}) == 1600
    assert {r.status for r in runs} == {"completed"}
    assert {r.name for r in runs} == {f"t{t}-{i}" for t in range(8) for i in range(200)}
    assert all(r.metrics == {"thread": int(r.name[1]), "i": int(r.name.split("-")[1])} for r in runs)


def test_a_held_lock_is_waited_out_not_reported(tmp_path, spec, monkeypatch):
    """A writer that holds the file longer than busy_timeout: we retry with back-off instead of failing."""
    path = tmp_path / "runs.db"
    store = RunStore(path)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 20)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # released from a timer thread
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.4, lambda: holder.execute("COMMIT"))
    release.start()
    t0 = time.monotonic()
    run_id = store.begin("prune", spec)
    waited = time.monotonic() - t0
    release.join()
    holder.close()
    assert store.get(run_id).status == "running"
    assert waited >= 0.3  # it really was blocked, beyond several 20 ms busy timeouts

    monkeypatch.setattr(store_module, "WRITE_DEADLINE_S", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="busy"):  # a stuck writer ends in one clear error
            store.begin("prune", spec)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


V1_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    metrics_json TEXT,
    created_at REAL NOT NULL,
    finished_at REAL
);
"""


def make_v1_db(path: Path, spec: PruneSpec) -> None:
    """A file as the first release wrote it, by hand (not through our migrations)."""
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.execute("INSERT INTO runs (kind, status, spec_json, metrics_json, created_at, finished_at) "
                 "VALUES ('prune', 'completed', ?, ?, 100.0, 101.0)",
                 (spec.to_json(), '{"pruned": {"accuracy": 0.5}, "sparsity": 0.6}'))
    conn.execute("INSERT INTO runs (kind, status, spec_json, created_at) VALUES ('prune', 'running', ?, 102.0)",
                 (spec.to_json(),))
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()


def test_migrates_a_v1_file_and_keeps_its_runs(tmp_path, spec):
    path = tmp_path / "runs.db"
    make_v1_db(path, spec)
    store = RunStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    old, left_running = store.get(1), store.get(2)
    assert old.status == "completed" and old.metrics["pruned"]["accuracy"] == 0.5
    assert (old.model, old.dataset, old.method) == ("cnn", "digits", "magnitude")  # back-filled from the spec
    assert (old.name, old.note, old.layers, old.details) == ("", "", [], {})
    assert old.prune_spec() == spec
    # v1 rows had no owner: a leftover `running` one cannot be live, so it is interrupted
    assert left_running.status == "interrupted"
    store.add_sweep_point(1, {"x": 1})  # the v2 table exists
    new_id = store.begin("prune", spec)
    assert new_id == 3
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failing_migration_changes_nothing(tmp_path, spec, monkeypatch):
    """All steps run in one transaction: a failure leaves the v1 file exactly as it was."""
    path = tmp_path / "runs.db"
    make_v1_db(path, spec)
    broken = store_module.MIGRATIONS[:1] + (store_module.MIGRATIONS[1] + ("THIS IS NOT SQL",),)
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    with pytest.raises(StoreError):
        RunStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    assert "name" not in columns and "artifact_path" not in columns
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sweep_points'").fetchone()[0] == 0


def test_a_newer_file_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        RunStore(path)


def test_a_run_left_running_by_a_dead_process_becomes_interrupted(tmp_path, spec):
    path = tmp_path / "runs.db"
    # a real process starts a run and dies without finishing it (no cleanup code runs)
    script = (
        "import os, sys; from pruning.runs.store import RunStore; from pruning.specs import PruneSpec; "
        "s = RunStore(sys.argv[1]); print(s.begin('prune', PruneSpec(target_sparsity=0.5))); sys.stdout.flush(); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    dead_id = int(out.stdout.strip())
    here = RunStore(path)
    live_id = here.begin("prune", spec)  # this process is alive: its run must stay running
    assert here.interrupted_on_open == [dead_id]
    reopened = RunStore(path)
    assert reopened.interrupted_on_open == []
    run = reopened.get(dead_id)
    assert run.status == "interrupted" and "stopped before it finished" in run.error
    assert not math.isnan(run.finished_at)
    assert reopened.get(live_id).status == "running"


def test_control_flow_marks_the_run_interrupted_not_failed(tmp_path):
    """A Streamlit rerun (a BaseException, not an Exception) stops a job the user moved on from."""
    from pruning.runs.store import RunStore

    class Rerun(BaseException):
        pass

    store = RunStore(tmp_path / "runs.db")

    def work():
        raise Rerun("user moved the slider")

    with pytest.raises(Rerun):
        store.record("prune", {"sparsity": 0.5}, work, lambda r: r)
    with pytest.raises(ValueError):
        store.record("prune", {"sparsity": 0.6}, lambda: (_ for _ in ()).throw(ValueError("bad")), lambda r: r)
    assert sorted(run.status for run in store.list()) == ["failed", "interrupted"]


@pytest.mark.parametrize("stop, status", [
    (KeyboardInterrupt, "interrupted"),
    ("rerun", "interrupted"),  # Streamlit's rerun: the user moved a slider while a sweep ran
    ("stop", "interrupted"),  # Streamlit's st.stop()
    (SystemExit, "interrupted"),
    (RuntimeError, "failed"),
    (BadInput, "failed"),
])
def test_record_points_stores_the_same_status_as_record(tmp_path, stop, status):
    """One record path: a sweep and a prune stopped the same way end in the same state."""
    from streamlit.runtime.scriptrunner_utils.exceptions import (
        RerunException,
        StopException,
    )

    exc_type = {"rerun": lambda: RerunException(None), "stop": StopException}.get(stop, stop)
    store = RunStore(tmp_path / "runs.db")
    sweep_spec = {"model": {"name": "cnn"}, "data": {"name": "digits"}, "methods": ["magnitude"]}

    def sweep(on_point):
        on_point({"method": "magnitude", "target_sparsity": 0.0, "sparsity": 0.0, "accuracy": 0.9})
        raise exc_type()

    def prune():
        raise exc_type()

    with pytest.raises(BaseException):
        store.record_points("sweep", sweep_spec, sweep)
    with pytest.raises(BaseException):
        store.record("prune", {"sparsity": 0.5}, prune, lambda r: r)
    prune_run, sweep_run = store.list()
    assert (sweep_run.kind, sweep_run.status) == ("sweep", status)
    assert (prune_run.kind, prune_run.status) == ("prune", status)
    assert sweep_run.error == prune_run.error
    assert len(store.points(sweep_run.id)) == 1  # the finished point stays, to resume from


def test_a_job_the_worker_could_not_finish_is_interrupted_in_both_paths(tmp_path):
    from pruning.executors.worker import WorkerDied

    store = RunStore(tmp_path / "runs.db")

    def died(*_):
        raise WorkerDied("the worker process exited")

    for record in (lambda: store.record_points("sweep", {"methods": ["magnitude"]}, died),
                   lambda: store.record("prune", {"sparsity": 0.5}, died, lambda r: r)):
        with pytest.raises(WorkerDied):
            record()
    assert [run.status for run in store.list()] == ["interrupted", "interrupted"]
    assert store.list()[0].error == "WorkerDied: the worker process exited"


@pytest.mark.parametrize("exc, status", [
    (KeyboardInterrupt(), "interrupted"), (SystemExit(), "interrupted"), (GeneratorExit(), "interrupted"),
    (ValueError("bad"), "failed"), (BadInput("bad"), "failed"),
])
def test_ended_status(exc, status):
    assert store_module.ended_status(exc) == status


def test_store_writes_the_artifact_in_the_run_folder_once(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    spec = PruneSpec(target_sparsity=0.4)
    writes: list[str] = []

    def save(path: str) -> str:
        writes.append(path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"model bytes")
        return path

    run_id, report = store.record_prune(spec, lambda: make_report(spec, ""), save=save)
    run = store.get(run_id)
    assert writes == [str(store.artifact_target(run_id))] == [run.artifact_path] == [report.model_path]
    assert Path(run.artifact_path).read_bytes() == b"model bytes"
    no_file, _ = store.record_prune(spec, lambda: make_report(spec, ""))
    assert store.get(no_file).artifact_path is None  # no save given: the run keeps no model


def test_a_process_killed_while_the_store_is_open_reads_as_interrupted_with_its_points(tmp_path):
    """kill -9 of a sweep's process: a store opened before the kill (the app's) sees it too,
    even while the dead process is a zombie its parent has not reaped yet."""
    path = tmp_path / "runs.db"
    here = RunStore(path)
    script = (
        "import sys, time; from pruning.runs.store import RunStore; s = RunStore(sys.argv[1]); "
        "r = s.begin('sweep', {'model': {'name': 'cnn'}, 'data': {'name': 'digits'}, 'methods': ['magnitude']}); "
        "[s.add_sweep_point(r, {'method': 'magnitude', 'target_sparsity': t}) for t in (0.0, 0.5)]; "
        "print(r, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        run_id = int(proc.stdout.readline())
        assert here.get(run_id).status == "running"  # alive: left alone
        proc.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        run = here.list(kind="sweep")[0]  # a zombie now: dead, though its pid still answers
        assert (run.id, run.status, run.stored_points) == (run_id, "interrupted", 2)
        assert run.summary()["points"] == 2 and "stopped before it finished" in run.error
        assert here.get(run_id).status == "interrupted"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
