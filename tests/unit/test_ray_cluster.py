"""The Ray executor on a real multi-node cluster on this machine: Ray's `cluster_utils.Cluster`, a head
(no CPU for actors, as head nodes are often kept) and two worker nodes of 1 CPU each, every node its
own raylet, joined through RAY_ADDRESS.

One cluster and one executor serve the module (TensorFlow loads once per actor); the node-loss test
runs last, since it removes a node. Skipped where `ray` is not installed.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from collections import Counter

import pandas as pd
import pytest

pytest.importorskip("ray")

from pruning.executors.errors import Cancelled  # noqa: E402
from pruning.specs import DataRef, ModelRef, SensitivitySpec, SweepSpec  # noqa: E402

pytestmark = pytest.mark.slow  # a 3-node cluster and 2 TensorFlow actors: ~20 s before the first test

# Metric columns that must match exactly; timings, latencies and file sizes are measurements.
EXACT = ["method", "target_sparsity", "sparsity", "accuracy", "loss", "train_accuracy", "robust_accuracy",
         "params", "nonzero_params", "flops", "effective_flops", "n_test", "finetune_epochs"]
CANCEL_BOUND_S = 5.0  # cancel() to Cancelled, and to the process running the point gone
LONG_EPOCHS = 3000  # a point that fine-tunes this long runs for minutes on the tiny model
ACTOR_PIDS: set[int] = set()  # the actors' processes at the end, checked gone after the cluster's shutdown


def _free_port() -> int:
    with socket.socket() as sock:  # the head's GCS port: never Ray's default 6379, which others may hold
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    store = 80 * 1024 * 1024
    # a node whose raylet is killed is declared dead after ~1.5 s of missed health checks, not ~30 s
    health = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}
    found = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "gcs_server_port": _free_port(), "include_dashboard": False,
        "object_store_memory": store, "_system_config": health})
    workers = [found.add_node(num_cpus=1, object_store_memory=store) for _ in range(2)]
    found.wait_for_nodes()
    yield found, workers
    pids = {info.process.pid for node in [found.head_node, *found.worker_nodes]
            for infos in node.all_processes.values() for info in infos}
    found.shutdown()
    # no raylet, GCS, object store or actor process outlives the module
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids | ACTOR_PIDS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids | ACTOR_PIDS if _alive(pid)]


@pytest.fixture(scope="module")
def executor(cluster):
    from pruning.executors.ray_actors import RayExecutor

    before = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = cluster[0].address
    found = RayExecutor(log_to_driver=False)  # no address given: it reads RAY_ADDRESS
    yield found
    ACTOR_PIDS.update(about["pid"] for about in found.slots(timeout=5))
    found.shutdown()
    if before is None:
        os.environ.pop("RAY_ADDRESS")
    else:
        os.environ["RAY_ADDRESS"] = before


@pytest.fixture(scope="module")
def inline():
    from pruning.executors.inline import InlineExecutor

    return InlineExecutor()


def sweep_of(model: ModelRef, data: DataRef) -> SweepSpec:
    """The module's sweep: 6 points, 3 per actor."""
    return SweepSpec(model=model, data=data, methods=("magnitude", "random"), sparsities=(0.0, 0.5, 0.9))


@pytest.fixture(scope="module")
def inline_sweep(inline, tiny_refs):
    return inline.sweep(sweep_of(*tiny_refs))


def ran(executor) -> Counter:
    """Calls run so far, by operation, summed over the pool's actors."""
    total: Counter = Counter()
    for about in executor.slots():
        total.update(about["ran"])
    return total


def test_the_executor_joins_the_three_node_cluster_at_ray_address(executor, cluster):
    assert executor.address == cluster[0].address
    assert executor.resources() == {"nodes": 3, "cpus": 2.0, "gpus": 0.0}
    nodes = {about["node"] for about in executor.slots()}
    assert nodes == {worker.node_id for worker in cluster[1]}  # one actor per 1-CPU worker node


def test_files_reach_every_node_as_bytes_and_sweep_and_scan_equal_inline(executor, inline, inline_sweep, tiny_refs,
                                                                        tiny_model_file, tiny_npz, tmp_path):
    from pruning.paths import home

    shutil.copy(tiny_model_file, tmp_path / "upload.keras")
    shutil.copy(tiny_npz, tmp_path / "upload.npz")
    model, data = ModelRef.parse(str(tmp_path / "upload.keras")), DataRef.parse(str(tmp_path / "upload.npz"))
    executor._blobs_for(model, data)  # the bytes go into Ray's object store ...
    shutil.rmtree(tmp_path)  # ... and the caller's paths vanish: no node can read them
    got = executor.sweep(sweep_of(model, data))
    want = inline_sweep
    pd.testing.assert_frame_equal(got.rows[EXACT], want.rows[EXACT], check_exact=True)
    assert got.baseline["accuracy"] == want.baseline["accuracy"] and got.n_test == want.n_test == 128

    before = ran(executor)
    scan = SensitivitySpec(model=model, data=data, sparsities=(0.0, 0.5, 0.9))
    got_scan = executor.sensitivity(scan)
    want_scan = inline.sensitivity(dict_replace(scan, *tiny_refs))
    pd.testing.assert_frame_equal(got_scan.accuracy, want_scan.accuracy, check_exact=True)
    pd.testing.assert_frame_equal(got_scan.drop, want_scan.drop, check_exact=True)
    assert got_scan.baseline_accuracy == want_scan.baseline_accuracy
    # the dense model is evaluated once, by the setup call; no per-layer call evaluates it again
    calls = ran(executor) - before
    assert calls == Counter({"sensitivity_setup": 1, "sensitivity_layer": 3})
    assert got_scan.timing_s["evaluations"] == want_scan.timing_s["evaluations"] == 1 + 3 * 2

    slots = executor.slots()
    nodes = {about["node"] for about in slots if about["ran"].get("sweep_point")}
    assert len(nodes) == 2  # both worker nodes ran points, each from its own copy of the shipped bytes
    for node in nodes:
        folder = home() / "ray-inputs" / node[:16]
        assert sorted(p.name for p in folder.iterdir()) == sorted([f"{model.sha256}.keras", f"{data.sha256}.npz"])
        assert (folder / f"{model.sha256}.keras").read_bytes() == tiny_model_file.read_bytes()


def dict_replace(spec, model, data):
    """`spec` on the fixtures' own files (the same bytes as the shipped copies)."""
    import dataclasses

    return dataclasses.replace(spec, model=model, data=data)


def test_cancel_stops_the_point_running_on_an_actor_within_the_bound(executor, tiny_refs):
    model, data = tiny_refs
    pids = {about["pid"] for about in executor.slots()}
    spec = SweepSpec(model=model, data=data, sparsities=(0.5,), finetune_epochs=LONG_EPOCHS)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            executor.sweep(spec)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    busy: set[int] = set()
    deadline = time.monotonic() + 60
    while not busy and time.monotonic() < deadline:  # an actor too busy to answer runs the point
        time.sleep(1.0)
        busy = pids - {about["pid"] for about in executor.slots(timeout=0.5)}
    assert len(busy) == 1 and thread.is_alive()
    (pid,) = busy
    started = time.monotonic()
    assert executor.cancel() is True
    thread.join(CANCEL_BOUND_S)
    assert not thread.is_alive() and isinstance(raised[0], Cancelled)
    while _alive(pid) and time.monotonic() - started < CANCEL_BOUND_S:
        time.sleep(0.1)
    assert not _alive(pid), "the process running the cancelled point is still there"
    assert time.monotonic() - started < CANCEL_BOUND_S
    assert all(_alive(other) for other in pids - {pid})  # only the actor running it was stopped
    # its replacement serves the next call, on a fresh process
    assert len(executor.sweep(SweepSpec(model=model, data=data, sparsities=(0.5,))).rows) == 1
    after = {about["pid"] for about in executor.slots()}
    assert len(after) == 2 and pid not in after


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return False


def test_an_actor_killed_mid_sweep_is_restarted_by_ray_and_its_point_sent_again(executor, inline_sweep, tiny_refs):
    before = {about["pid"]: about["node"] for about in executor.slots()}
    victim = min(before)
    retried = executor.retried
    streamed: list[tuple[str, float]] = []

    def on_point(row: dict) -> None:
        streamed.append((row["method"], row["target_sparsity"]))
        if len(streamed) == 1:
            os.kill(victim, signal.SIGKILL)  # the process dies, its node stays

    got = executor.sweep(sweep_of(*tiny_refs), on_point=on_point)
    assert executor.retried > retried and sorted(streamed) == sorted(inline_sweep.spec.points())
    pd.testing.assert_frame_equal(got.rows[EXACT], inline_sweep.rows[EXACT], check_exact=True)
    after = {about["pid"]: about["node"] for about in executor.slots()}
    assert victim not in after and sorted(after.values()) == sorted(before.values())  # restarted in place


def test_a_node_removed_mid_sweep_its_points_run_elsewhere_once(executor, inline_sweep, cluster, tiny_refs, tmp_path):
    from pruning.runs.store import RunStore

    found, workers = cluster
    model, data = tiny_refs
    spec = sweep_of(model, data)
    victim = workers[0]
    retried = executor.retried
    streamed: list[tuple[str, float]] = []
    store = RunStore(tmp_path / "runs.db")

    def work(store_point):
        def on_point(row: dict) -> None:
            store_point(row)
            streamed.append((row["method"], row["target_sparsity"]))
            if len(streamed) == 1:  # the other actor is mid-point now
                found.remove_node(victim, allow_graceful=False)

        return executor.sweep(spec, on_point=on_point)

    run_id, got = store.record_points("sweep", spec, work, source="test")
    assert executor.retried > retried  # the lost node's point was sent again
    assert sorted(streamed) == sorted(spec.points())  # every row exactly once
    stored = store.points(run_id)
    assert sorted((r["method"], r["target_sparsity"]) for r in stored) == sorted(spec.points())
    assert store.get(run_id).status == "completed"
    pd.testing.assert_frame_equal(got.rows[EXACT], inline_sweep.rows[EXACT], check_exact=True)
    assert executor.resources() == {"nodes": 2, "cpus": 1.0, "gpus": 0.0}
    assert {about["node"] for about in executor.slots(timeout=2)} == {workers[1].node_id}
