"""The worker-process executor: JSON round trips, errors, streaming, cancel, kill -9, recycling.

One worker serves the module (each start imports TensorFlow, ~5 s); tests that replace it say so.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from pruning.errors import BadInput
from pruning.executors.base import make_executor
from pruning.executors.errors import Cancelled, WorkerDied
from pruning.executors.inline import InlineExecutor
from pruning.executors.jobs import queued_message
from pruning.executors.wire import dumps, from_wire, reports_equal, to_wire
from pruning.executors.worker import WorkerExecutor
from pruning.runs.store import open_store

ROOT = Path(__file__).resolve().parents[2]
from pruning.specs import PruneSpec, SensitivitySpec, SweepSpec, file_sha256

ROOT = Path(__file__).resolve().parents[2]
# Measured afresh on every run: timers. Everything else (sizes included: they are measured on the
# weights in memory) must match exactly.
TIMED = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "base_latency_ms", "prune_s", "finetune_s", "evaluate_s",
         "measure_s")


@pytest.fixture(scope="module")
def worker():
    executor = WorkerExecutor()
    yield executor
    executor.stop()


@pytest.fixture(scope="module")
def inline():
    return InlineExecutor()


def untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMED}


def same_prune(a, b) -> None:
    assert (a.method, a.target_sparsity, a.sparsity) == (b.method, b.target_sparsity, b.sparsity)
    assert untimed(a.pruned) == untimed(b.pruned)
    assert untimed(a.baseline) == untimed(b.baseline)
    pd.testing.assert_frame_equal(a.layers, b.layers, check_exact=True)
    assert a.histograms == b.histograms and a.mask_images == b.mask_images
    assert (a.spec, a.model_path, a.notes) == (b.spec, b.model_path, b.notes)


def through_json(kind: str, report):
    return from_wire(kind, json.loads(dumps(to_wire(kind, report))))


def test_every_report_survives_the_json_round_trip(inline, tiny_refs):
    model, data = tiny_refs
    reports = {
        "baseline": inline.baseline(model, data),
        "prune": inline.prune(PruneSpec(model=model, data=data, target_sparsity=0.6)),
        "sweep": inline.sweep(SweepSpec(model=model, data=data, methods=("magnitude", "random"), sparsities=(0.0, 0.5))),
        "sensitivity": inline.sensitivity(SensitivitySpec(model=model, data=data, sparsities=(0.5, 0.9))),
    }
    for kind, report in reports.items():
        back = through_json(kind, report)
        assert reports_equal(back, report), kind
    # a changed value is caught, so the comparison above can fail
    prune = reports["prune"]
    changed = through_json("prune", prune)
    changed.layers.loc[0, "nonzero_params"] += 1
    assert not reports_equal(changed, prune)
    # missing values survive: layers left out of the selection have no target sparsity
    partial = inline.prune(PruneSpec(model=model, data=data, target_sparsity=0.6, layers=("hidden",)))
    assert partial.layers["target_sparsity"].isna().sum() == 2
    assert reports_equal(through_json("prune", partial), partial)


def test_worker_reports_equal_inline_ones(worker, inline, tiny_refs):
    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.7, scope="global")
    same_prune(worker.prune(spec), inline.prune(spec))
    base_w, base_i = worker.baseline(model, data), inline.baseline(model, data)
    assert untimed(base_w.metrics) == untimed(base_i.metrics)
    pd.testing.assert_frame_equal(base_w.layers, base_i.layers, check_exact=True)
    scan = SensitivitySpec(model=model, data=data, sparsities=(0.5, 0.9))
    sens_w, sens_i = worker.sensitivity(scan), inline.sensitivity(scan)
    pd.testing.assert_frame_equal(sens_w.accuracy, sens_i.accuracy, check_exact=True)
    assert sens_w.layer_sizes == sens_i.layer_sizes


def test_bad_input_arrives_as_bad_input_with_the_same_message(worker, inline, tiny_refs):
    model, data = tiny_refs
    for spec in (PruneSpec(model=model, data=data, method="no-such-method"),
                 PruneSpec(model=model, data=data, layers=("no_such_layer",))):
        with pytest.raises(BadInput) as in_worker:
            worker.prune(spec)
        with pytest.raises(BadInput) as in_process:
            inline.prune(spec)
        assert str(in_worker.value) == str(in_process.value)
    assert worker.prune(PruneSpec(model=model, data=data, target_sparsity=0.3)).sparsity > 0  # still serving


def test_progress_and_points_stream_while_the_job_runs(worker, tiny_refs):
    model, data = tiny_refs
    spec = SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=(0.0, 0.3, 0.6, 0.9))
    points, progress, running = [], [], []

    def on_point(row):
        points.append(row)
        running.append([job.state for job in worker.pending()])  # the job is still in the worker

    report = worker.sweep(spec, on_point=on_point, on_progress=lambda f, m: progress.append(f))
    assert [p["target_sparsity"] for p in points] == [0.0, 0.3, 0.6, 0.9]
    assert running == [["running"]] * 4
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 4
    assert [p["accuracy"] for p in points] == report.rows["accuracy"].tolist()


def long_sweep(model, data, n=12):
    return SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=tuple(round(i / n, 3) for i in range(n)),
                     finetune_epochs=1)


def test_cancel_a_running_job_and_a_queued_one(worker, tiny_refs):
    model, data = tiny_refs
    first_point = threading.Event()
    outcome = {}

    def run_sweep():
        try:
            worker.sweep(long_sweep(model, data), on_point=lambda row: first_point.set())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["sweep"] = exc

    told = []  # what the waiting prune's on_progress hears: its place in the queue (ui.progress shows it)

    def run_prune():
        try:
            worker.prune(PruneSpec(model=model, data=data, target_sparsity=0.2),
                         on_progress=lambda fraction, message: told.append((fraction, message)))
        except Exception as exc:  # noqa: BLE001
            outcome["prune"] = exc

    old_pid = worker.worker_pid
    sweeper = threading.Thread(target=run_sweep)
    sweeper.start()
    assert first_point.wait(120)
    pruner = threading.Thread(target=run_prune)
    pruner.start()
    while len(worker.pending()) < 2:
        time.sleep(0.05)
    running, queued = worker.pending()
    assert (running.kind, queued.kind, worker.queue_position(queued)) == ("sweep", "prune", 1)
    deadline = time.time() + 10
    while not told and time.time() < deadline:
        time.sleep(0.05)
    assert told == [(0.0, queued_message(1))]
    assert worker.cancel(queued.id) and worker.cancel(running.id)
    sweeper.join(60)
    pruner.join(60)
    assert isinstance(outcome["sweep"], Cancelled) and "cancelled" in str(outcome["sweep"])
    assert isinstance(outcome["prune"], Cancelled) and "queue" in str(outcome["prune"])
    assert worker.pending() == [] and worker.worker_pid is None  # stopped; the next job starts a new one
    assert worker.prune(PruneSpec(model=model, data=data, target_sparsity=0.2)).sparsity > 0
    assert worker.worker_pid not in (None, old_pid)


@pytest.mark.parametrize("kill_after", [1, 2, 3])
def test_kill_9_during_a_sweep_keeps_every_streamed_point(worker, tiny_refs, tmp_path, kill_after):
    model, data = tiny_refs
    store = open_store(tmp_path / "runs.db")
    spec = long_sweep(model, data)
    seen = []

    def work(store_point):
        def on_point(row):
            store_point(row)
            seen.append(row)
            if len(seen) == kill_after:
                os.kill(worker.worker_pid, signal.SIGKILL)

        return worker.sweep(spec, on_point=on_point)

    killed_pid = worker.worker_pid
    with pytest.raises(WorkerDied) as died:
        store.record_points("sweep", spec, work)
    message = str(died.value)
    assert message.startswith("the worker process died (signal 9) while running sweep of tiny_cnn.keras")
    assert message.endswith("the job was not finished — run it again") and "\n" not in message
    run = store.list(kind="sweep")[0]
    assert run.status == "interrupted" and "signal 9" in run.error
    assert kill_after <= len(seen) < len(spec.sparsities)
    assert store.points(run.id) == json.loads(json.dumps(seen))  # every streamed point, none lost
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert worker.prune(PruneSpec(model=model, data=data, target_sparsity=0.4)).sparsity > 0
    assert worker.worker_pid not in (None, killed_pid)


def test_eight_threads_at_eight_sparsities_match_serial_inline_runs(worker, inline, tiny_refs, tiny_model_file):
    model, data = tiny_refs
    checksum = file_sha256(tiny_model_file)
    specs = [PruneSpec(model=model, data=data, target_sparsity=s) for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
    waits = []

    def prune(spec):
        return worker.prune(spec, on_progress=lambda f, m: waits.append(m) if "ahead of yours" in m else None)

    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(prune, specs))
    serial = [inline.prune(spec) for spec in specs]
    for a, b in zip(concurrent, serial):
        same_prune(a, b)
    assert [r.sparsity for r in concurrent] == [r.sparsity for r in serial]
    assert len({r.pruned["nonzero_params"] for r in concurrent}) == 8
    assert waits  # at least one caller was told how many jobs were ahead of it
    assert file_sha256(tiny_model_file) == checksum


def test_worker_is_recycled_after_n_jobs_and_past_its_memory_limit(worker):
    worker.stop()
    saved = worker.max_jobs, worker.max_rss_bytes
    try:
        worker.max_jobs = 2
        pids = [worker.describe()["pid"] for _ in range(3)]
        assert pids[0] == pids[1] != pids[2]
        worker.max_jobs, worker.max_rss_bytes = saved[0], 1  # any worker is over one byte
        first, second = worker.describe()["pid"], worker.describe()["pid"]
        assert first != second
    finally:
        worker.max_jobs, worker.max_rss_bytes = saved


def test_an_unknown_operation_fails_in_the_worker_with_the_valid_names(worker):
    with pytest.raises(ValueError) as unknown:
        worker._call("prnue", "a misspelt job", {})
    assert str(unknown.value) == ("unknown operation 'prnue': choose one of "
                                  "baseline, convert, deploy, describe, prune, save, sensitivity, sweep")
    assert worker.describe()["models"]  # the worker serves on


def test_cancel_without_an_id_cancels_every_pending_job(worker, tiny_refs):
    model, data = tiny_refs
    assert worker.cancel() is False and worker.cancel(10 ** 9) is False  # nothing to cancel
    first_point = threading.Event()
    outcome = {}

    def run_sweep():
        try:
            worker.sweep(long_sweep(model, data), on_point=lambda row: first_point.set())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["sweep"] = exc

    sweeper = threading.Thread(target=run_sweep)
    sweeper.start()
    assert first_point.wait(120)
    assert worker.cancel() is True
    sweeper.join(60)
    assert isinstance(outcome["sweep"], Cancelled) and worker.pending() == []


def test_make_executor_knows_the_worker():
    assert isinstance(make_executor("worker"), WorkerExecutor)
    with pytest.raises(ValueError, match="inline, worker, ray"):
        make_executor("nope")


def test_the_streamlit_process_never_imports_tensorflow(tiny_refs, tmp_path):
    """The server's whole path, the deploy step (TFLite float32 + int8) and its report included."""
    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.5)
    code = ("import sys, json; import ui.backend, ui.sidebar, ui.charts, ui.cards; "
            "from pruning.executors.worker import WorkerExecutor; from pruning.specs import PruneSpec, DeploySpec; "
            "device, models = ui.backend.device(), ui.backend.model_names(); "
            f"spec = PruneSpec.from_dict(json.loads({spec.to_json()!r})); ui.backend.prune(spec); "
            "run_id = ui.backend.list_runs()[0].id; seen = []; "
            "ui.backend.deploy(run_id, lambda f, m: seen.append(m), DeploySpec(representative_samples=32, latency_calls=2)); "
            "summary = ui.backend.deploy_figures(run_id); ui.backend.deploy_frame(summary); "
            "stages = ui.backend.size_stages(run_id); ui.backend.report_html(run_id); "
            "print('tensorflow' in sys.modules, device.split()[0], 'cnn' in models, len(stages), "
            "any('int8' in m for m in seen), summary['int8']['artifact'].replace(' ', '_'))")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PRUNESCOPE_EXECUTOR="worker", PRUNESCOPE_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    words = out.stdout.split()
    assert words[0] == "False" and words[1] in ("CPU", "GPU:")
    assert words[2:] == ["True", "8", "True", "pruned_int8"]  # 8 stages: both int8 encodings


def test_a_deploy_in_the_worker_reports_progress_and_can_be_cancelled(worker, tiny_refs, tmp_path):
    from pruning.specs import DeploySpec

    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.5)
    artifact = tmp_path / "model.keras"
    artifact.write_bytes(Path(model.path).read_bytes())  # any model file stands in for a pruned one
    started, outcome = threading.Event(), {}

    def on_progress(fraction: float, message: str) -> None:
        if "converting" in message:
            started.set()

    def run_deploy():
        try:
            outcome["value"] = worker.deploy(spec, str(artifact), DeploySpec(latency_calls=200), on_progress)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            outcome["value"] = exc

    thread = threading.Thread(target=run_deploy)
    thread.start()
    assert started.wait(120)
    assert worker.cancel() is True
    thread.join(60)
    assert isinstance(outcome["value"], Cancelled) and worker.pending() == []


def test_a_worker_ends_soon_after_its_server_is_killed(tmp_path):
    # a busy worker does not read its pipe, so it would not see its server die until its job
    # ends (minutes for a big model): serve() runs watch_parent. Here a "server" process starts
    # a child that watches it the same way and then sleeps; the server gets kill -9.
    child = ("import os, time; from pruning.executors.worker import watch_parent; "
             "watch_parent(os.getppid(), poll_s=0.05); print(os.getpid(), flush=True); time.sleep(60)")
    server_script = ("import subprocess, sys; "
                     f"p = subprocess.Popen([sys.executable, '-c', {child!r}]); p.wait()")
    server = subprocess.Popen([sys.executable, "-c", server_script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(server.stdout.readline())
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        start = time.monotonic()
        while time.monotonic() - start < 10:
            stat = Path(f"/proc/{child_pid}/stat")
            if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break  # exited (a zombie waits for init to reap it)
            time.sleep(0.02)
        gone_in = time.monotonic() - start
        assert gone_in < 3, f"the child {child_pid} still ran {gone_in:.1f} s after its server died"
    finally:
        server.kill()
        server.stdout.close()
        try:
            os.kill(child_pid, signal.SIGKILL)
        except (ProcessLookupError, NameError, UnboundLocalError):
            pass
