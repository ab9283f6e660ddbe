"""The Ray executor against the inline one on a local Ray instance (num_cpus=2): same rows, same scan.

One Ray instance and one executor serve the module; skipped where `ray` is not installed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

pytest.importorskip("ray")

from pruning.errors import BadInput  # noqa: E402
from pruning.executors.errors import Cancelled  # noqa: E402
from pruning.specs import (
    SensitivitySpec,  # noqa: E402
    SweepSpec,  # noqa: E402
)

pytestmark = pytest.mark.slow

# Metric columns that must match exactly; timings, latencies and file sizes are measurements.
EXACT = ["method", "target_sparsity", "sparsity", "accuracy", "loss", "train_accuracy", "robust_accuracy",
         "params", "nonzero_params", "flops", "effective_flops", "accuracy_low", "accuracy_high", "n_test",
         "accuracy_loss", "parameter_reduction", "flops_reduction", "robustness_change", "finetune_epochs"]


@pytest.fixture(scope="module")
def ray_executor():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from pruning.executors.ray_actors import RayExecutor

    executor = RayExecutor(num_cpus=2, object_store_memory=200 * 1024 * 1024, log_to_driver=False)
    yield executor
    executor.shutdown()


@pytest.fixture(scope="module")
def inline():
    from pruning.executors.inline import InlineExecutor

    return InlineExecutor()


def test_a_sweep_gives_the_inline_rows_streamed_as_they_finish(ray_executor, inline, tiny_refs):
    model, data = tiny_refs
    spec = SweepSpec(model=model, data=data, methods=("magnitude", "random"), sparsities=(0.0, 0.5, 0.9))
    streamed: list[dict] = []
    threads: set[int] = set()
    running: list[list[str]] = []

    def on_point(row: dict) -> None:
        streamed.append(row)
        threads.add(threading.get_ident())
        running.append([job.kind for job in ray_executor.pending()])

    got = ray_executor.sweep(spec, on_point=on_point)
    assert running == [["sweep"]] * 6 and ray_executor.pending() == []
    want = inline.sweep(spec)
    pd.testing.assert_frame_equal(got.rows[EXACT], want.rows[EXACT], check_exact=True)
    assert got.n_test == want.n_test == 128
    assert got.baseline["accuracy"] == want.baseline["accuracy"]
    assert len(streamed) == 6 and threads == {threading.get_ident()}  # on the calling thread
    assert sorted((r["method"], r["target_sparsity"]) for r in streamed) == sorted(spec.points())
    assert got.timing_s["points"] == 6 and got.timing_s["resumed"] == 0


def test_resumed_points_are_reemitted_not_recomputed(ray_executor, tiny_refs):
    model, data = tiny_refs
    spec = SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=(0.3, 0.6))
    fake = dict(ray_executor.sweep(SweepSpec(model=model, data=data, sparsities=(0.3,))).rows.iloc[0], accuracy=0.123)
    got = ray_executor.sweep(spec, resume=[fake])
    assert list(got.rows["accuracy"])[0] == 0.123  # the stored row, not a recomputed one
    assert got.timing_s["resumed"] == 1 and list(got.rows["target_sparsity"]) == [0.3, 0.6]


def test_a_sensitivity_scan_gives_the_inline_grid(ray_executor, inline, tiny_refs):
    model, data = tiny_refs
    spec = SensitivitySpec(model=model, data=data, sparsities=(0.0, 0.5, 0.9))
    got = ray_executor.sensitivity(spec)
    want = inline.sensitivity(spec)
    pd.testing.assert_frame_equal(got.accuracy, want.accuracy, check_exact=True)
    pd.testing.assert_frame_equal(got.drop, want.drop, check_exact=True)
    assert list(got.accuracy.index) == ["conv", "hidden", "out"]
    assert (got.baseline_accuracy, got.layer_sizes, got.layer_types) == \
        (want.baseline_accuracy, want.layer_sizes, want.layer_types)
    assert got.timing_s["evaluations"] == want.timing_s["evaluations"] == 1 + 3 * 2


def test_bad_input_crosses_as_bad_input(ray_executor, tiny_refs):
    model, data = tiny_refs
    with pytest.raises(BadInput, match="nope cannot be pruned"):
        ray_executor.sweep(SweepSpec(model=model, data=data, layers=("nope",), sparsities=(0.5,)))
    with pytest.raises(BadInput, match="cannot: pick magnitude"):
        ray_executor.sensitivity(SensitivitySpec(model=model, data=data, method="gradual", sparsities=(0.5,)))


def test_an_exception_from_on_point_cancels_the_rest(ray_executor, tiny_refs):
    model, data = tiny_refs
    spec = SweepSpec(model=model, data=data, sparsities=tuple(round(0.05 * i, 2) for i in range(16)))
    seen: list[dict] = []

    def on_point(row: dict) -> None:
        seen.append(row)
        raise KeyboardInterrupt  # what a Streamlit rerun does to the page's callback

    with pytest.raises(KeyboardInterrupt):
        ray_executor.sweep(spec, on_point=on_point)
    assert len(seen) == 1


def test_cancel_stops_a_running_sweep_and_keeps_finished_points(ray_executor, tiny_refs):
    model, data = tiny_refs
    spec = SweepSpec(model=model, data=data, sparsities=tuple(round(0.05 * i, 2) for i in range(20)))
    seen: list[dict] = []

    def on_point(row: dict) -> None:
        seen.append(row)
        if len(seen) == 2:
            threading.Thread(target=ray_executor.cancel).start()  # as another session's button would

    assert ray_executor.cancel() is False and ray_executor.cancel(10 ** 9) is False  # nothing runs
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        ray_executor.sweep(spec, on_point=on_point)
    assert 2 <= len(seen) < 20
    assert time.perf_counter() - started < 120
    # the pool still serves the next call after a cancel
    assert len(ray_executor.sweep(SweepSpec(model=model, data=data, sparsities=(0.5,))).rows) == 1


def test_describe_reports_the_cluster(ray_executor):
    about = ray_executor.describe()
    assert about["executor"] == "ray" and about["nodes"] == 1
    assert about["cpus"] == 2.0 and about["gpus"] == 0.0
    assert "cnn" in about["models"] and about["device"]


def test_shipped_files_give_the_same_rows(tiny_refs, tiny_model_file, tmp_path, ray_executor):
    """As on a multi-node cluster: the model travels as bytes to a content-addressed copy."""
    import shutil

    from pruning.paths import home
    from pruning.specs import ModelRef

    _, data = tiny_refs
    copy = tmp_path / "elsewhere.keras"
    shutil.copy(tiny_model_file, copy)
    model = ModelRef.parse(str(copy))
    ray_executor.ship_files = True
    try:
        ray_executor._blobs_for(model, data)  # the bytes are in Ray's object store ...
        copy.unlink()  # ... so the actors cannot read the caller's path, as on another node
        got = ray_executor.sweep(SweepSpec(model=model, data=data, sparsities=(0.5,)))
    finally:
        ray_executor.ship_files = None
    (node,) = {about["node"] for about in ray_executor.slots()}  # one node: its own copy of the bytes
    assert (home() / "ray-inputs" / node[:16] / f"{model.sha256}.keras").is_file()
    want = ray_executor.sweep(SweepSpec(model=tiny_refs[0], data=data, sparsities=(0.5,)))
    pd.testing.assert_frame_equal(got.rows[EXACT], want.rows[EXACT], check_exact=True)


def test_importing_the_executors_does_not_import_ray():
    code = ("import sys, pruning.executors.base, pruning.cli, ui.backend; "
            "print('ray' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
