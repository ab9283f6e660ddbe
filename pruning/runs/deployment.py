"""The deploy step of a pruned model: TFLite float32 and int8 (optionally PQAT) files written beside
it, each measured under the TFLite interpreter, with the dense model measured the same way.

Runs where TensorFlow lives (the worker process, or inline in the CLI and tests).
"""
from __future__ import annotations

import gzip
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..errors import BadInput
from ..paths import write_atomic
from ..reports import DeployReport
from ..specs import DeploySpec, ProgressFn, PruneSpec

if TYPE_CHECKING:
    from ..measure.tasks import Head

FILES = {"pruned float32": "model-float32.tflite", "pruned int8": "model-int8.tflite",
         "pruned int8 PQAT": "model-int8-pqat.tflite", "dense float32": "dense-float32.tflite",
         "pruned int8 zeros stored": "model-int8-plain.tflite", "pruned int8 sparse-encoded": "model-int8-sparse.tflite",
         "pruned int8 PQAT zeros stored": "model-int8-pqat-plain.tflite",
         "pruned int8 PQAT sparse-encoded": "model-int8-pqat-sparse.tflite"}
ENCODINGS = (" zeros stored", " sparse-encoded")  # how an artifact in the other int8 encoding is named


def other_encoding(int8: str, sparse_encoding: bool) -> str:
    """The artifact that holds int8 artifact `int8` (post-training or PQAT) in the encoding the options
    did not ask for: which is smaller depends on the model (sparse indices compress worse than zeros)."""
    return int8 + ENCODINGS[0 if sparse_encoding else 1]


def deployed_path(artifact: str | Path, name: str) -> Path:
    """Where the deploy step keeps artifact `name` (FILES) of the pruned model at `artifact`."""
    return Path(artifact).with_name(FILES[name])


def gzip_size(data: bytes) -> int:
    """Bytes after gzip -9 (mtime 0, so the same bytes always give the same size)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def representative_samples(x_train: Optional[np.ndarray], count: int, seed: int) -> np.ndarray:
    """`count` training samples (seeded choice) that calibrate the int8 activation ranges."""
    if x_train is None:
        raise BadInput("int8 needs training samples to calibrate its activations: give the dataset x_train")
    pick = np.random.default_rng(seed).choice(len(x_train), min(count, len(x_train)), replace=False)
    return x_train[np.sort(pick)]


def kernel_zeros(model) -> tuple[int, int]:
    """(zeros, weights) among a Keras model's conv/dense kernels: what TFLite's weight tensors hold."""
    from .._keras import keras
    from ..core.prunable import iter_layers

    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
             keras.layers.DepthwiseConv2D)
    kernels = [layer.depthwise_kernel if isinstance(layer, keras.layers.DepthwiseConv2D) else layer.kernel
               for layer in iter_layers(model) if isinstance(layer, kinds)]
    values = [k.numpy() for k in kernels]
    return sum(int(v.size - np.count_nonzero(v)) for v in values), sum(int(v.size) for v in values)


def decisions(head: "Head", outputs: np.ndarray) -> Optional[np.ndarray]:
    """What a classifier head decides from `outputs`: class indices, 0/1 labels or a 0/1 matrix
    (threshold 0.5 on probabilities, as its metrics score them); None for regression."""
    from ..measure.tasks import sigmoid

    task = head.task.name
    if task == "multiclass":
        return outputs.argmax(axis=1)
    if task == "binary":
        return head.positive_probability(outputs) > 0.5
    if task == "multilabel":
        return (sigmoid(outputs) if head.activation == "linear" else outputs) > 0.5
    return None


def agreement(head: "Head", outputs: np.ndarray, reference: np.ndarray) -> Optional[float]:
    """Share of test decisions (multi-label: of label cells) `outputs` makes as `reference` does;
    None for regression, whose closeness is `max_abs_diff`."""
    mine, theirs = decisions(head, outputs), decisions(head, reference)
    return None if mine is None else float((mine == theirs).mean())


def tflite_scores(head: "Head", flatbuffer: bytes, x_test: np.ndarray, y_test: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """The head's metrics (`Head.score`: accuracy, AUC, MAE, R², loss) of a TFLite file under the
    TFLite interpreter on the test split, and its (float) outputs."""
    from ..measure.deploy import tflite_predict

    outputs = tflite_predict(flatbuffer, x_test)
    return head.score(outputs, y_test), outputs


def _tflite_row(name: str, quantization: str, flatbuffer: bytes, reference: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray, batch: np.ndarray, threads: int, calls: int, head: "Head") -> dict[str, Any]:
    from ..measure.deploy import tflite_latency, tflite_memory, tflite_weight_sparsity

    scores, outputs = tflite_scores(head, flatbuffer, x_test, y_test)
    sparsity = tflite_weight_sparsity(flatbuffer)
    one, all_ = tflite_latency(flatbuffer, batch, 1, calls), tflite_latency(flatbuffer, batch, threads, calls)
    return {
        "artifact": name, "quantization": quantization, "bytes": len(flatbuffer), "gzip_bytes": gzip_size(flatbuffer),
        **scores, "agreement": agreement(head, outputs, reference),
        "max_abs_diff": float(np.abs(outputs - reference).max()),
        "zeros": sparsity["zeros"], "weights": sparsity["params"], "sparsity": sparsity["sparsity"],
        "sparse_encoded_tensors": sum(layer["sparse_encoded"] for layer in sparsity["layers"]),
        **tflite_memory(flatbuffer),
        "latency_1t_ms": one[0], "latency_1t_p90_ms": one[1], "latency_all_ms": all_[0], "latency_all_p90_ms": all_[1],
    }


def deploy_model(spec: PruneSpec, artifact: str | Path, options: DeploySpec = DeploySpec(),
                 on_progress: Optional[ProgressFn] = None) -> DeployReport:
    """Convert the pruned model at `artifact` (and its dense baseline) to TFLite and measure them.

    Writes FILES beside `artifact`. float32 and int8 carry EXPERIMENTAL_SPARSITY (unless
    `options.sparse_encoding` is off), and the int8 model is also converted in the other
    encoding (`other_encoding`), so the waterfall shows which is smaller; int8 is
    full-integer (weights and activations), calibrated on `options.representative_samples`
    train-split samples, with a float (default) or int8 interface; a regression head keeps a
    float32 output under an int8 interface (int8 input, float32 output: its values are not
    rounded to one int8 scale). With `options.pqat_epochs`, tfmot's PQAT trains a fake-quantized
    twin first (with the head's loss) and its int8 file is measured as well. Every headline
    figure is the head's metric (measure.tasks) under the TFLite interpreter on the whole test split.
    """
    from .._keras import keras
    from ..measure.deploy import convert_tflite, pqat_model
    from ..measure.metrics import make_forward, measure_latency_pair, predict
    from ..measure.tasks import detect_head, prepare_labels
    from ..model.baselines import load_baseline
    from ..model.datasets import load_dataset
    from ..model.op_forms import library_objects

    def progress(fraction: float, message: str) -> None:
        if on_progress is not None:
            on_progress(fraction, message)

    started = time.perf_counter()
    artifact = Path(artifact)
    if not artifact.is_file():
        raise BadInput(f"the pruned model {artifact} is gone: re-run the prune")
    progress(0.02, "loading the pruned and the dense model")
    dataset = load_dataset(spec.data)
    pruned = keras.models.load_model(artifact, compile=False, custom_objects=library_objects())
    dense = load_baseline(spec.model, spec.data, dataset, seed=0)[0]
    head = detect_head(dense, dataset)
    dataset = prepare_labels(head, dataset)
    float_output = head.task.name == "regression"
    interface = "int8 input, float32 output" if options.interface == "int8" and float_output else options.interface
    samples = representative_samples(dataset.x_train, options.representative_samples, options.seed)
    x_test, y_test = dataset.x_test, dataset.y_test
    batch = np.resize(x_test, (spec.latency_batch,) + dataset.input_shape).astype(np.float32)
    threads = os.cpu_count() or 1
    timing: dict[str, float] = {}

    progress(0.08, "measuring the Keras models")
    keras_rows, outputs = [], {}
    forwards = {"dense": make_forward(dense), "pruned": make_forward(pruned)}
    timed = measure_latency_pair(forwards["pruned"], forwards["dense"], batch,
                                 min_calls=options.latency_calls, max_calls=options.latency_calls)
    (p_ms, p_p90), (d_ms, d_p90) = ((t.median_ms, t.p90_ms) for t in timed)
    for name, model, ms, p90 in (("dense", dense, d_ms, d_p90), ("pruned", pruned, p_ms, p_p90)):
        outputs[name] = predict(forwards[name], x_test)
        zeros, weights = kernel_zeros(model)
        params = int(sum(w.size for w in model.get_weights()))
        keras_rows.append({"model": name, **head.score(outputs[name], y_test), "params": params, "zeros": zeros,
                           "weights": weights, "weight_bytes": 4 * params, "latency_ms": ms, "latency_p90_ms": p90})

    sparse = options.sparse_encoding
    steps = [("dense float32", "float32", dense, "dense", sparse), ("pruned float32", "float32", pruned, "pruned", sparse),
             ("pruned int8", "int8", pruned, "pruned", sparse)]
    if options.pqat_epochs:
        progress(0.15, f"PQAT: {options.pqat_epochs} epochs of sparsity-preserving quantization-aware training")
        start = time.perf_counter()
        qat = pqat_model(pruned, dataset.x_train, head.training_labels(dataset.y_train), options.pqat_epochs,
                         options.seed, lambda f, m: progress(0.15 + 0.2 * f, m), loss=head.keras_loss())
        timing["pqat"] = time.perf_counter() - start
        steps.append(("pruned int8 PQAT", "int8", qat, "pruned", sparse))
    offered = steps[-1]  # the int8 file export offers (PQAT where made), also in the other encoding
    steps.append((other_encoding(offered[0], sparse), "int8", offered[2], "pruned", not sparse))
    rows = []
    for i, (name, quantization, model, source, encoded) in enumerate(steps):
        progress(0.35 + 0.6 * i / len(steps), f"converting and measuring {name} (TFLite interpreter)")
        start = time.perf_counter()
        flatbuffer = convert_tflite(model, quantization, samples if quantization == "int8" else None,
                                    options.interface if quantization == "int8" else "float",
                                    sparsity=encoded, float_output=float_output)
        timing[f"convert {name}"] = time.perf_counter() - start
        start = time.perf_counter()
        row = _tflite_row(name, quantization, flatbuffer, outputs[source], x_test, y_test, batch, threads,
                          options.latency_calls, head)
        timing[f"measure {name}"] = time.perf_counter() - start
        path = write_atomic(deployed_path(artifact, name), lambda tmp: tmp.write_bytes(flatbuffer))
        rows.append({**row, "path": str(path)})
    # a Keras model's memory: its weights as Keras stores them (float32) + the activations of its float32 graph
    for keras_row, name in zip(keras_rows, ("dense float32", "pruned float32")):
        activations = next(r["activation_bytes"] for r in rows if r["artifact"] == name)
        keras_row.update(activation_bytes=activations, memory_bytes=keras_row["weight_bytes"] + activations)
    timing["total"] = time.perf_counter() - started
    progress(1.0, "deployed")
    return DeployReport(spec=spec, options=options, metric=head.task.metric,
                        interface=interface, threads=threads, latency_batch=spec.latency_batch,
                        artifacts=rows, keras=keras_rows, timing_s=timing)
