"""What the executors share: one protocol, one operation table, one error codec, one sweep assembly.

Most checks need no TensorFlow; the inline queue and cancel tests run on the tiny model.
"""
from __future__ import annotations

import doctest
import inspect
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from pruning.errors import BadInput
from pruning.executors import errors, jobs, operations
from pruning.executors.base import Executor
from pruning.executors.errors import Cancelled, WorkerError, decode_error, encode_error
from pruning.executors.inline import InlineExecutor
from pruning.executors.operations import OPERATIONS, get_operation, run_operation
from pruning.executors.ray_actors import RAY_OPERATIONS, RayExecutor
from pruning.executors.wire import dumps
from pruning.executors.worker import WorkerExecutor
from pruning.reports import ROW_KEYS
from pruning.specs import DataRef, ModelRef, PruneSpec, SweepSpec
from pruning.sweep_rows import SweepRows

ROOT = Path(__file__).resolve().parents[2]
EXECUTOR_CLASSES = [InlineExecutor, WorkerExecutor, RayExecutor]
PROTOCOL_METHODS = ["baseline", "prune", "sweep", "sensitivity", "describe", "pending", "cancel"]


@pytest.mark.parametrize("cls", EXECUTOR_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_every_executor_has_the_protocol_signature(cls, method):
    assert inspect.signature(getattr(cls, method)) == inspect.signature(getattr(Executor, method))


@pytest.mark.parametrize("cls", EXECUTOR_CLASSES, ids=lambda c: c.__name__)
def test_every_executor_is_named(cls):
    assert isinstance(cls.name, str) and cls.name


def test_importing_the_worker_module_leaves_multiprocessing_alone():
    code = ("import multiprocessing.spawn as spawn; before = spawn.get_preparation_data; "
            "import pruning.executors.worker as worker; "
            "print(spawn.get_preparation_data is before); "
            "worker.patch_spawn(); worker.patch_spawn(); "  # idempotent: the original is kept once
            "print(spawn.get_preparation_data is worker._preparation_without_main, "
            "worker._preparation_data is before)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True", "True"]


@pytest.mark.parametrize("table", [OPERATIONS, RAY_OPERATIONS], ids=["worker", "ray"])
def test_an_unknown_operation_lists_the_valid_ones(table):
    with pytest.raises(ValueError) as unknown:
        run_operation(table, None, "prnue", {})  # fails before the engine is touched
    assert str(unknown.value) == f"unknown operation 'prnue': choose one of {', '.join(sorted(table))}"
    assert get_operation(table, "prune") is OPERATIONS["prune"]  # shared, not copied


def test_the_tables_are_read_only_and_ray_adds_its_split_operations():
    with pytest.raises(TypeError):
        OPERATIONS["x"] = None  # type: ignore[index]
    assert set(RAY_OPERATIONS) - set(OPERATIONS) == {"sweep_setup", "sweep_point", "sensitivity_setup",
                                                     "sensitivity_layer"}


def test_an_error_crosses_as_data_and_comes_back_the_same():
    try:
        raise BadInput("model expects (8, 8, 1) inputs")
    except BadInput as exc:
        raw = encode_error(exc)
    assert raw["error"] == "BadInput" and "Traceback" in raw["traceback"]
    back = decode_error(json.loads(json.dumps(raw)), "in the worker")
    assert type(back) is BadInput and str(back) == "model expects (8, 8, 1) inputs"
    try:
        {}["x"]
    except KeyError as exc:
        raw = encode_error(exc)
    bug = decode_error(raw, "on a Ray actor while running a prune")
    assert type(bug) is WorkerError and str(bug) == "KeyError on a Ray actor while running a prune: 'x'"
    assert "KeyError" in bug.worker_traceback


def test_interrupted_errors_say_so_to_the_run_store():
    assert errors.Cancelled.run_status == errors.WorkerDied.run_status == "interrupted"
    assert not hasattr(WorkerError, "run_status")  # a bug is a failure


@pytest.mark.parametrize("module", [errors, jobs, operations], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_wire_keeps_nan_and_full_precision():
    text = dumps({"nan": np.float64("nan"), "f32": np.float32(0.1), "f64": np.float64(1 / 3),
                  "ints": np.arange(3), "tuple": (1, 2)})
    assert text == ('{"nan": NaN, "f32": 0.10000000149011612, "f64": 0.3333333333333333, '
                    '"ints": [0, 1, 2], "tuple": [1, 2]}')
    assert math.isnan(json.loads(text)["nan"])
    with pytest.raises(TypeError, match="set cannot cross the worker boundary as JSON"):
        dumps({"bad": {1, 2}})


# -- sweep assembly -----------------------------------------------------------------------------------
def row(method: str, rate: float, accuracy: float = 0.9) -> dict:
    values = {key: 1.0 for key in ROW_KEYS}
    values.update(method=method, target_sparsity=rate, sparsity=rate, accuracy=accuracy)
    return values


def sweep_spec() -> SweepSpec:
    return SweepSpec(model=ModelRef(), data=DataRef(), methods=("magnitude", "random"), sparsities=(0.0, 0.5, 0.9))


def test_rows_in_any_order_give_the_point_order_and_a_skipped_method_its_note():
    spec = sweep_spec()
    seen, progress = [], []
    rows = SweepRows(spec, resume=[row("magnitude", 0.0)], on_point=seen.append,
                              on_progress=lambda f, m: progress.append(f))
    assert [(m, r) for _, m, r in rows.todo()] == spec.points()[1:]
    rows.replay()
    rows.add(2, row("magnitude", 0.9))
    rows.add(4, row("random", 0.5))  # streamed before random failed at an earlier point ...
    rows.skip(3, "random cannot prune this model")
    rows.add(1, row("magnitude", 0.5))
    rows.add(5, row("random", 0.9))  # ... and after: dropped
    report = rows.report({"accuracy": 0.95}, 128, {"tensorflow": "2.21"})
    assert list(zip(report.rows["method"], report.rows["target_sparsity"])) == \
        [("magnitude", 0.0), ("magnitude", 0.5), ("magnitude", 0.9)]
    assert report.notes == ("random skipped: random cannot prune this model",)
    assert [r["target_sparsity"] for r in seen] == [0.0, 0.9, 0.5, 0.5]  # as they arrived
    assert progress == [1 / 6, 2 / 6, 3 / 6, 4 / 6]
    assert (report.timing_s["points"], report.timing_s["resumed"], report.timing_s["prune"]) == (6, 1, 3.0)
    assert list(report.rows.columns) == list(ROW_KEYS) and report.n_test == 128


def test_a_sweep_whose_every_method_was_skipped_is_bad_input():
    rows = SweepRows(sweep_spec())
    rows.skip(0, "no BatchNorm layer")
    rows.skip(3, "no LSTM layer")
    with pytest.raises(BadInput, match="no BatchNorm layer; no LSTM layer"):
        rows.report({}, 0, {})


# -- the inline executor's queue ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def inline():
    return InlineExecutor()


def test_inline_lists_and_cancels_a_waiting_job(inline, tiny_refs):
    model, data = tiny_refs
    in_sweep, release = threading.Event(), threading.Event()
    outcome = {}

    def on_point(row: dict) -> None:
        in_sweep.set()
        assert release.wait(60)

    def run(name, call):
        try:
            outcome[name] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome[name] = exc

    spec = SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=(0.0, 0.5))
    sweeper = threading.Thread(target=run, args=("sweep", lambda: inline.sweep(spec, on_point=on_point)))
    sweeper.start()
    assert in_sweep.wait(120)
    pruner = threading.Thread(target=run, args=("prune", lambda: inline.prune(PruneSpec(model=model, data=data))))
    pruner.start()
    while len(inline.pending()) < 2:
        threading.Event().wait(0.05)
    running, waiting = inline.pending()
    assert (running.kind, running.state, waiting.kind, waiting.state) == ("sweep", "running", "prune", "queued")
    assert inline.cancel(waiting.id) is True
    pruner.join(60)
    release.set()
    sweeper.join(120)
    assert isinstance(outcome["prune"], Cancelled) and "queue" in str(outcome["prune"])
    assert len(outcome["sweep"].rows) == 2  # the running job was not touched
    assert inline.pending() == [] and inline.cancel() is False


def test_inline_stops_a_running_job_at_its_next_callback(inline, tiny_refs):
    model, data = tiny_refs
    spec = SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=(0.0, 0.3, 0.6, 0.9))
    seen = []

    def on_point(row: dict) -> None:
        seen.append(row)
        assert inline.cancel() is True  # as another session's button would

    with pytest.raises(Cancelled, match="sweep of tiny_cnn.keras .* was cancelled"):
        inline.sweep(spec, on_point=on_point)
    assert len(seen) == 1 and inline.pending() == []
    assert inline.prune(PruneSpec(model=model, data=data, target_sparsity=0.5)).sparsity > 0  # serves on
