"""Measurement that scales (issue 11): sizes in memory, latency to a budget, two phases, supersede.

Exact where the figure is computed (zlib of the tensors, counts); bounded where a real file
or a clock is involved, with the bound stated.
"""
from __future__ import annotations

import gzip
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from isal import isal_zlib

from pruning.executors.errors import Cancelled
from pruning.executors.jobs import Job
from pruning.reports import MEASURED_KEYS
from pruning.specs import COMPRESSION, PruneSpec

LATENCY_KEYS = ("latency_ms", "latency_p10_ms", "latency_p90_ms")


def deflate1(data: bytes) -> int:
    """ISA-L's DEFLATE level 1 as a zlib stream, written out here apart from the code under test."""
    return len(isal_zlib.compress(data, 1))


def test_memory_sizes_are_the_tensors_bytes_and_their_zlib_lengths():
    from pruning.measure.metrics import memory_sizes

    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 3, 1, 4)).astype(np.float32), np.zeros(4, np.float32),
               np.where(rng.random((64, 16)) < 0.8, 0, rng.normal(size=(64, 16))).astype(np.float32),
               np.asfortranarray(rng.normal(size=(16, 4)).astype(np.float32))]  # not C-contiguous
    config = b'{"class_name": "Sequential"}'
    size, gz = memory_sizes(weights, config)
    assert size == sum(w.size * 4 for w in weights) + len(config)
    assert gz == sum(deflate1(np.ascontiguousarray(w).tobytes()) for w in weights) + deflate1(config)
    assert COMPRESSION == "DEFLATE level 1 (ISA-L), over the weights in memory"
    # a real zlib stream: Python's own zlib inflates it to the bytes it measured
    assert zlib.decompress(isal_zlib.compress(weights[2].tobytes(), 1)) == weights[2].tobytes()
    # and it finds what there is to find: the 80 %-zero tensor's zeros, nothing in random floats
    assert deflate1(weights[2].tobytes()) < 0.5 * weights[2].nbytes
    assert deflate1(weights[0].tobytes()) > 0.8 * weights[0].nbytes


def test_reported_sizes_match_the_written_file(engine, tiny_refs, tmp_path):
    from pruning._keras import keras
    from pruning.runs.deployment import (
        gzip_size,  # what an export reports: gzip -9 of the file
    )

    spec = PruneSpec(model=tiny_refs[0], data=tiny_refs[1], target_sparsity=0.8)
    report = engine.prune(spec)
    bench = engine.workbench(*tiny_refs)
    path = engine.save(spec, tmp_path / "pruned.keras")
    saved = keras.models.load_model(path, compile=False).get_weights()
    config = bench.model.to_json().encode()
    # exact: the figure is DEFLATE level 1 of the weights the file holds, and of the config
    assert report.pruned["gzip_bytes"] == sum(deflate1(w.tobytes()) for w in saved) + deflate1(config)
    assert report.pruned["size_bytes"] == sum(w.nbytes for w in saved) + len(config)
    assert report.compression == COMPRESSION and report.to_json_dict()["compression"] == COMPRESSION
    # bounded: the .keras container adds a zip and HDF5 headers (at most 4 KiB per tensor + 32 KiB),
    # and gzip -9 of the whole file lands within 30 % below to 10 % above the fast per-tensor figure,
    # plus 4 KiB for the container's own (compressed) headers, which weigh on a model this tiny
    data = Path(path).read_bytes()
    size, gz9 = len(data), gzip_size(data)
    assert report.pruned["size_bytes"] <= size <= report.pruned["size_bytes"] + 4096 * len(saved) + 32768
    assert 0.7 * report.pruned["gzip_bytes"] <= gz9 <= 1.1 * report.pruned["gzip_bytes"] + 4096
    assert gz9 == len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


class Sleeper:
    """A stand-in forward: sleeps `seconds`, counts its calls, returns its input."""

    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, 0

    def __call__(self, x):
        self.calls += 1
        time.sleep(self.seconds)
        return x


def test_latency_is_timed_to_its_budget_within_its_call_limits():
    from pruning.measure.metrics import (
        LATENCY_WARMUP,
        measure_latency,
        measure_latency_pair,
    )

    batch = np.zeros((2, 3), np.float32)
    slow = Sleeper(0.005)
    timed = measure_latency(slow, batch, budget_s=0.1, min_calls=5, max_calls=200)
    # each call takes >= 5 ms, so the budget is spent after at most 20 calls
    assert 5 <= timed.calls <= 20 and slow.calls == timed.calls + LATENCY_WARMUP
    assert timed.p10_ms <= timed.median_ms <= timed.p90_ms and timed.p10_ms >= 5.0
    assert measure_latency(Sleeper(0.02), batch, budget_s=0.001, min_calls=5).calls == 5  # the floor
    assert measure_latency(Sleeper(0.0), batch, budget_s=60.0, max_calls=50).calls == 50  # the ceiling
    mine, other = measure_latency_pair(Sleeper(0.002), Sleeper(0.004), batch, budget_s=0.05)
    assert mine.calls == other.calls and mine.median_ms < other.median_ms


def test_a_mask_point_gets_the_cached_dense_timing_unless_retimed(engine, tiny_refs):
    from pruning.run.prune import DENSE_LATENCY_NOTE

    model, data = tiny_refs
    bench = engine.workbench(model, data)
    low = engine.prune(PruneSpec(model=model, data=data, target_sparsity=0.3))
    high = engine.prune(PruneSpec(model=model, data=data, method="random", target_sparsity=0.9))
    dense = bench.dense_latency(PruneSpec(model=model, data=data)).metrics()
    for report in (low, high):
        assert {k: report.pruned[k] for k in LATENCY_KEYS} == dense == {k: report.baseline[k] for k in LATENCY_KEYS}
        assert DENSE_LATENCY_NOTE in report.notes and report.derived()["speedup"] == 1.0
        assert report.pruned["latency_p10_ms"] <= report.pruned["latency_ms"] <= report.pruned["latency_p90_ms"]
    retimed = engine.prune(PruneSpec(model=model, data=data, target_sparsity=0.3, retime_latency=True))
    assert DENSE_LATENCY_NOTE not in retimed.notes
    assert retimed.pruned["latency_ms"] != dense["latency_ms"]  # timed afresh, with the dense beside it
    assert retimed.pruned["latency_p10_ms"] <= retimed.pruned["latency_ms"] <= retimed.pruned["latency_p90_ms"]
    structured = engine.prune(PruneSpec(model=model, data=data, method="filters-l1", target_sparsity=0.5))
    assert DENSE_LATENCY_NOTE not in structured.notes and structured.baseline["latency_ms"] != dense["latency_ms"]


def test_the_evaluated_phase_comes_first_with_the_cards_figures(engine, tiny_refs):
    from pruning.executors.inline import InlineExecutor

    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, method="random", target_sparsity=0.6, seed=3)
    seen: list[dict] = []
    report = InlineExecutor().prune(spec, on_evaluated=seen.append)
    assert len(seen) == 1
    first = seen[0]
    assert set(first["pruned"]) == set(report.pruned) - set(MEASURED_KEYS)  # no size or latency yet
    assert {"accuracy", "loss", "train_accuracy", "robust_accuracy", "nonzero_params"} <= set(first["pruned"])
    assert first == report.evaluated()
    assert first["pruned"]["nonzero_params"] == report.pruned["nonzero_params"] and first["sparsity"] == report.sparsity
    assert set(first["timing_s"]) == {"prune", "finetune", "evaluate"} and "measure" in report.timing_s


def test_save_writes_the_model_of_an_earlier_or_a_fresh_prune(engine, tiny_refs, tmp_path):
    from pruning._keras import keras
    from pruning.run.engine import Engine

    model, data = tiny_refs
    spec = PruneSpec(model=model, data=data, target_sparsity=0.7)
    report = engine.prune(spec)
    kept = keras.models.load_model(engine.save(spec, tmp_path / "kept.keras"), compile=False).get_weights()
    # an engine that never pruned `spec` prunes it again (without measuring) to write it
    fresh = keras.models.load_model(Engine().save(spec, tmp_path / "fresh.keras"), compile=False).get_weights()
    assert sum(int(np.count_nonzero(w)) for w in kept) == report.pruned["nonzero_params"]
    assert all(np.array_equal(a, b) for a, b in zip(kept, fresh))


def wait_for(condition, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_newer_worker_job_supersedes_a_queued_one_with_its_key():
    from pruning.executors.worker import WorkerExecutor

    executor = WorkerExecutor()  # no process is started: only its queue is exercised
    running = Job(id=100, kind="prune", label="running", state="running")
    executor._running = running
    jobs = {name: Job(id=i, kind="prune", label=name, supersede_key=key)
            for i, (name, key) in enumerate((("old", "session-1"), ("other", "session-2"), ("new", "session-1")))}
    outcome: dict[str, object] = {}

    def wait(name: str) -> None:
        try:
            executor._wait_turn(jobs[name], None)
            outcome[name] = "ran"
            executor._release(jobs[name])
        except Cancelled as exc:
            outcome[name] = exc

    threads = {}
    for name in ("old", "other", "new"):
        threads[name] = threading.Thread(target=wait, args=(name,))
        threads[name].start()
        wait_for(lambda: jobs[name] in executor._queue or name in outcome)
    threads["old"].join(5)
    assert isinstance(outcome["old"], Cancelled) and "superseded by a newer job (#2)" in str(outcome["old"])
    assert [j.label for j in executor.pending()] == ["running", "other", "new"]
    executor._release(running)
    for name in ("other", "new"):
        threads[name].join(5)
    assert outcome["other"] == outcome["new"] == "ran"


def test_a_newer_inline_job_supersedes_a_queued_one_with_its_key(tiny_refs):
    from pruning.executors.inline import InlineExecutor

    executor = InlineExecutor()
    model, data = tiny_refs
    results: dict[str, object] = {}

    def prune(name: str, sparsity: float) -> None:
        try:
            results[name] = executor.prune(PruneSpec(model=model, data=data, target_sparsity=sparsity),
                                           supersede_key="session")
        except Cancelled as exc:
            results[name] = exc

    executor.lock.acquire()  # as if a job were running
    old = threading.Thread(target=prune, args=("old", 0.3))
    old.start()
    wait_for(lambda: len(executor.pending()) == 1)
    new = threading.Thread(target=prune, args=("new", 0.6))
    new.start()
    old.join(5)
    executor.lock.release()
    new.join(60)
    assert isinstance(results["old"], Cancelled) and "superseded" in str(results["old"])
    assert results["new"].target_sparsity == 0.6


def test_recurrent_macs_count_every_gate_at_every_step():
    """kernel (inputs x gates*units) and recurrent kernel (units x gates*units), once per time step."""
    from pruning._keras import keras
    from pruning.measure.metrics import layer_macs

    L = keras.layers
    inputs = L.Input((7, 3))
    outputs = [L.LSTM(4, name="lstm")(inputs), L.GRU(4, name="gru")(inputs), L.SimpleRNN(4, name="rnn")(inputs)]
    macs = layer_macs(keras.Model(inputs, outputs))
    assert macs["lstm"] == {"kernel": 7 * 3 * 16, "recurrent_kernel": 7 * 4 * 16}
    assert macs["gru"] == {"kernel": 7 * 3 * 12, "recurrent_kernel": 7 * 4 * 12}
    assert macs["rnn"] == {"kernel": 7 * 3 * 4, "recurrent_kernel": 7 * 4 * 4}
