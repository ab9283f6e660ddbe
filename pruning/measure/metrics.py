"""Measurements of a model: accuracy, loss, FLOPs, file size, latency (DESIGN §5).

Predictions run through one traced function per model (no `model.predict` per point);
FLOPs are dense multiply-accumulates per sample, computed from layer shapes.
"""
from __future__ import annotations

import gzip
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .._keras import keras, tf
from ..core.prunable import iter_layers
from ..disk import writing

LATENCY_CALLS = 30
LATENCY_WARMUP = 5
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


def measure_latency(forward: Callable, batch: np.ndarray, calls: int = LATENCY_CALLS) -> tuple[float, float]:
    """Median and p90 wall time (ms) of `calls` timed calls after warm-up."""
    tensor = tf.constant(batch)
    for _ in range(LATENCY_WARMUP):
        forward(tensor).numpy()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        forward(tensor).numpy()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times)), float(np.percentile(times, 90))


def measure_latency_pair(forward: Callable, reference: Callable, batch: np.ndarray,
                         calls: int = LATENCY_CALLS) -> tuple[tuple[float, float], tuple[float, float]]:
    """Latency of `forward` and of `reference`, timed alternately in one run.

    Interleaving makes the ratio of the two robust to load that comes and goes on a
    shared machine; each is (median ms, p90 ms) of `calls` timed calls after warm-up.
    """
    tensor = tf.constant(batch)
    for _ in range(LATENCY_WARMUP):
        forward(tensor).numpy()
        reference(tensor).numpy()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(2 * calls):
        fn, out = (forward, times[0]) if i % 2 == 0 else (reference, times[1])
        start = time.perf_counter()
        fn(tensor).numpy()
        out.append((time.perf_counter() - start) * 1000.0)
    return tuple((float(np.median(t)), float(np.percentile(t, 90))) for t in times)  # type: ignore[return-value]


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


def file_sizes(path: str | Path) -> tuple[int, int]:
    """Bytes of the saved file, and of the same bytes after gzip -9."""
    data = Path(path).read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


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
        elif isinstance(layer, keras.layers.LSTM):
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
