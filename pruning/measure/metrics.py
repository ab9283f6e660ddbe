"""Measurements of a model: accuracy, loss, FLOPs, serialized and compressed size, latency (DESIGN §5).

Predictions run through one traced function per model (no `model.predict` per point);
FLOPs are dense multiply-accumulates per sample, computed from layer shapes; sizes are
measured on the weights in memory (no file written), latency to a time budget.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
from isal import isal_zlib

from .._keras import keras, tf
from ..core.prunable import iter_layers
from ..disk import writing
from ..specs import COMPRESS_LEVEL

LATENCY_BUDGET_S = 0.5  # timed calls per model stop once they add up to this ...
LATENCY_MIN_CALLS = 5  # ... but never fewer than this (a slow model still gets percentiles)
LATENCY_MAX_CALLS = 200  # ... nor more (a tiny model is timed well before the budget)
LATENCY_WARMUP = 2  # the first calls after tracing pay for allocation, not inference
EVAL_BATCH = 256


def make_forward(model: keras.Model) -> Callable:
    """One traced inference function for `model`; any batch size, no retracing."""
    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
    return tf.function(lambda x: model(x, training=False), input_signature=[spec])


def predict(forward: Callable, x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    return np.concatenate([forward(x[i : i + batch]).numpy() for i in range(0, len(x), batch)])


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs as class probabilities: softmax unless they already are."""
    outputs = outputs.astype(np.float64)
    if (outputs >= 0).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return outputs
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def accuracy_and_loss(outputs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    probs = as_probabilities(outputs)
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return accuracy, float(-np.log(picked).mean())


@dataclass(frozen=True)
class Latency:
    """Wall time (ms) of one call, over `calls` timed calls after warm-up: median and its noise."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    calls: int

    @classmethod
    def of(cls, times: Sequence[float]) -> "Latency":
        """From timed calls (ms).

        >>> Latency.of([4.0, 1.0, 3.0, 2.0, 5.0])
        Latency(median_ms=3.0, p10_ms=1.4, p90_ms=4.6, calls=5)
        """
        p10, median, p90 = (float(v) for v in np.percentile(times, [10, 50, 90]))
        return cls(median_ms=median, p10_ms=p10, p90_ms=p90, calls=len(times))

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """As metric keys: `latency_ms`, `latency_p10_ms`, `latency_p90_ms` (after `prefix`)."""
        return {f"{prefix}latency_ms": self.median_ms, f"{prefix}latency_p10_ms": self.p10_ms,
                f"{prefix}latency_p90_ms": self.p90_ms}


def _timed_calls(forwards: Sequence[Callable], batch: np.ndarray, budget_s: float,
                 min_calls: int, max_calls: int) -> list[list[float]]:
    """Each of `forwards` called in turn until each has `min_calls` and together they
    spent `budget_s` per forward (or each has `max_calls`); the times (ms) per forward."""
    tensor = tf.constant(batch)
    for _ in range(LATENCY_WARMUP):
        for fn in forwards:
            fn(tensor).numpy()
    times: list[list[float]] = [[] for _ in forwards]
    spent, budget = 0.0, budget_s * len(forwards)
    while len(times[0]) < max_calls and (len(times[0]) < min_calls or spent < budget):
        # alternating makes a ratio of two forwards robust to load that comes and goes
        for fn, out in zip(forwards, times):
            start = time.perf_counter()
            fn(tensor).numpy()
            elapsed = time.perf_counter() - start
            spent += elapsed
            out.append(elapsed * 1000.0)
    return times


def measure_latency(forward: Callable, batch: np.ndarray, budget_s: float = LATENCY_BUDGET_S,
                    min_calls: int = LATENCY_MIN_CALLS, max_calls: int = LATENCY_MAX_CALLS) -> Latency:
    """Latency of `forward` on `batch`: timed calls after warm-up until they add up to
    `budget_s` (at least `min_calls`, at most `max_calls`)."""
    return Latency.of(_timed_calls([forward], batch, budget_s, min_calls, max_calls)[0])


def measure_latency_pair(forward: Callable, reference: Callable, batch: np.ndarray,
                         budget_s: float = LATENCY_BUDGET_S, min_calls: int = LATENCY_MIN_CALLS,
                         max_calls: int = LATENCY_MAX_CALLS) -> tuple[Latency, Latency]:
    """Latency of `forward` and of `reference`, timed alternately in one run (`budget_s` each).

    Interleaving makes the ratio of the two robust to load that comes and goes on a
    shared machine.
    """
    mine, theirs = _timed_calls([forward, reference], batch, budget_s, min_calls, max_calls)
    return Latency.of(mine), Latency.of(theirs)


_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()
BACKGROUND_NICE = 10  # added to the background threads' nice value (Linux: per thread)


def _lower_priority() -> None:
    """Run this thread below TensorFlow's: measuring during the evaluation must not delay the
    metric cards, only fill the cores the evaluation leaves idle. Where threads have no nice
    value of their own (not Linux), nothing changes."""
    try:
        mine = os.getpriority(os.PRIO_PROCESS, 0)  # on Linux: the calling thread's
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), mine + BACKGROUND_NICE)
    except (AttributeError, OSError):
        pass


def _compress_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="deflate",
                                       initializer=_lower_priority)
        return _pool


_background: Optional[ThreadPoolExecutor] = None


def in_background(fn: Callable, *args) -> Future:
    """`fn(*args)` started on a thread of its own, its `Future` returned: what a report measures
    while TensorFlow evaluates (ISA-L and numpy's large-array loops release the GIL).

    Not the DEFLATE pool: `memory_sizes` run here waits on that pool, and would deadlock in it.
    """
    global _background
    with _pool_lock:
        if _background is None:
            _background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="overlap", initializer=_lower_priority)
    return _background.submit(fn, *args)


def deflated_size(data) -> int:
    """Bytes of `data` (any contiguous buffer) as a zlib stream (header and checksum in), ISA-L's
    DEFLATE at COMPRESS_LEVEL; zlib's `decompress` reads it back.

    >>> deflated_size(bytes(4000)) < 40
    True
    """
    return len(isal_zlib.compress(data, COMPRESS_LEVEL))


def model_config_bytes(model: keras.Model) -> bytes:
    """The architecture as the saved file holds it (the model's JSON config), UTF-8."""
    return model.to_json().encode()


def memory_sizes(weights: Sequence[np.ndarray], config: bytes) -> tuple[int, int]:
    """`size_bytes`, `gzip_bytes` of a model measured in memory, without writing a file.

    `size_bytes` is the serialized payload: the bytes of every weight tensor as stored
    (float32 mostly) plus the JSON config. A `.keras` file adds a zip and HDF5 container
    around them (a few hundred bytes per tensor; tests bound the difference against a
    real file). `gzip_bytes` is COMPRESSION: each tensor and the config DEFLATE-compressed
    on its own, in parallel (ISA-L releases the GIL), the lengths summed.
    """
    buffers = [np.ascontiguousarray(w) for w in weights]
    compressed = _compress_pool().map(deflated_size, [b.data for b in buffers] + [config])
    return sum(b.nbytes for b in buffers) + len(config), int(sum(compressed))


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Save as `.keras`, written to a temp name and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        # a full disk names itself; the weights' bytes are what the file needs, roughly
        with writing(path, sum(w.nbytes for w in model.get_weights()), path.name):
            model.save(tmp)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _conv_macs(layer) -> int:
    out = layer.output_shape
    kernel = layer.kernel.shape
    spatial = int(np.prod(out[1:-1]))
    return spatial * int(np.prod(kernel))


def layer_macs(model: keras.Model) -> dict[str, dict[str, int]]:
    """Dense multiply-accumulates per sample: layer -> {weight attr (or "other"): MACs}."""
    macs: dict[str, dict[str, int]] = {}
    for layer in iter_layers(model):
        if isinstance(layer, keras.layers.Dense):
            out = layer.output_shape
            positions = int(np.prod(out[1:-1])) if len(out) > 2 else 1
            macs[layer.name] = {"kernel": positions * int(np.prod(layer.kernel.shape))}
        elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
            macs[layer.name] = {"kernel": _conv_macs(layer)}
        elif isinstance(layer, (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)):
            # every gate's columns are in the kernels: 4 (LSTM), 3 (GRU) or 1 block per step
            steps = int(layer.input_shape[1]) if layer.input_shape[1] else 1
            macs[layer.name] = {
                "kernel": steps * int(np.prod(layer.cell.kernel.shape)),
                "recurrent_kernel": steps * int(np.prod(layer.cell.recurrent_kernel.shape)),
            }
    return macs


def count_flops(macs: Mapping[str, Mapping[str, int]], density: Mapping[str, float] | None = None) -> int:
    """Total MACs; with `density` ("layer/attr" -> nonzero fraction) only those with a nonzero weight."""
    total = 0.0
    for layer, parts in macs.items():
        for attr, value in parts.items():
            total += value * (density.get(f"{layer}/{attr}", 1.0) if density else 1.0)
    return int(round(total))
