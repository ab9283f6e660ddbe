"""Deployment measurements: TFLite conversion (float32, full-integer int8, PQAT) and what the
converted model does under the TFLite interpreter (accuracy, sparsity, memory, latency).
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Iterator, Optional

import numpy as np

from .._keras import _quiet_native_stderr, keras, tf

QUANTIZATIONS = ("float32", "int8")
INTERFACES = ("float", "int8")  # the int8 model's input/output tensors: float32 (default) or int8
TFLITE_BATCH = 512
# TFLite ops whose input 1 is a weight tensor in PruneScope's sense (conv/dense kernels)
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D")
# ops that only re-encode a constant on its way to a weight op (sparse -> dense, int8 -> float)
PASS_OPS = ("DENSIFY", "DEQUANTIZE")
LATENCY_WARMUP = 5


def convert_tflite(model: keras.Model, quantization: str = "float32", representative: Optional[np.ndarray] = None,
                   interface: str = "float", sparsity: bool = True, float_output: bool = False) -> bytes:
    """A TFLite flatbuffer of `model`.

    Args:
        model: a plain tf_keras model, or a tfmot quantize-aware one (then `int8` needs no
            representative samples: the ranges were learned).
        quantization: `float32` (weights and activations float) or `int8` (full-integer:
            int8 weights per channel, int8 activations calibrated on `representative`,
            int32 biases, only TFLITE_BUILTINS_INT8 ops so nothing falls back to float).
        representative: samples from the train split for the activation ranges (int8).
        interface: `float` keeps float32 input/output tensors (quantize/dequantize inside the
            model, a drop-in replacement); `int8` makes them int8 (the caller quantizes).
        sparsity: add `Optimize.EXPERIMENTAL_SPARSITY`: weight tensors sparse enough are
            stored in TFLite's sparse encoding (values + indices, a DENSIFY op at load).
        float_output: with an `int8` interface, keep the output tensor float32 (only the
            input is int8): what a regression head needs, whose values an int8 tensor of one
            scale would round to 256 levels the caller must dequantize.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
    if interface not in INTERFACES:
        raise ValueError(f"unknown interface {interface!r}: choose one of {', '.join(INTERFACES)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparsity else []
    if quantization == "int8":
        optimizations = [tf.lite.Optimize.DEFAULT] + optimizations
        if representative is not None:
            samples = np.asarray(representative, dtype=np.float32)

            def calibration() -> Iterator[list[np.ndarray]]:
                for i in range(len(samples)):
                    yield [samples[i : i + 1]]

            converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if interface == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.float32 if float_output else tf.int8
    converter.optimizations = optimizations
    with _quiet_native_stderr(), warnings.catch_warnings():  # MLIR prints pages of progress on fd 2
        warnings.simplefilter("ignore", UserWarning)
        return converter.convert()


def make_interpreter(flatbuffer: bytes, threads: Optional[int] = None, delegates: bool = True):
    """A TFLite interpreter; `delegates=False` runs TFLite's builtin kernels (no XNNPACK)."""
    kwargs: dict[str, Any] = {"model_content": flatbuffer, "num_threads": threads}
    if not delegates:
        kwargs["experimental_op_resolver_type"] = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings(), _quiet_native_stderr():
        # tf.lite.Interpreter warns it moves to ai_edge_litert; in TF 2.21 it still works
        warnings.simplefilter("ignore", UserWarning)
        return tf.lite.Interpreter(**kwargs)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] == np.float32 or not scale:
        return np.ascontiguousarray(x, dtype=detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] == np.float32 or not scale:
        return y.astype(np.float32)
    return (y.astype(np.float32) - zero) * scale


def tflite_predict(flatbuffer: bytes, x: np.ndarray, batch: int = TFLITE_BATCH) -> np.ndarray:
    """Outputs of the TFLite model on `x`, in batches (the input tensor resized to each batch).

    An int8 interface is handled here: inputs quantized and outputs dequantized with the
    tensors' own scale and zero point, so every caller gets float outputs.
    """
    interpreter = make_interpreter(flatbuffer)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    outputs, size = [], None
    with _quiet_native_stderr():  # the XNNPACK delegate announces itself on fd 2
        for start in range(0, len(x), batch):
            chunk = np.asarray(x[start : start + batch], dtype=np.float32)
            if len(chunk) != size:
                interpreter.resize_tensor_input(inp["index"], list(chunk.shape))
                interpreter.allocate_tensors()
                size = len(chunk)
            interpreter.set_tensor(inp["index"], _quantize(chunk, inp))
            interpreter.invoke()
            outputs.append(_dequantize(interpreter.get_tensor(out["index"]), out))
    return np.concatenate(outputs)


def _graph(flatbuffer: bytes):
    """(interpreter without delegates, allocated; its ops in execution order; tensor details by index)."""
    interpreter = make_interpreter(flatbuffer, delegates=False)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # no public op list in TF 2.21; tf.lite's own Analyzer reads the same
    return interpreter, ops, {d["index"]: d for d in interpreter.get_tensor_details()}


def tflite_weight_sparsity(flatbuffer: bytes) -> dict[str, Any]:
    """Zeros among the conv/dense weight tensors of a TFLite model, read from its tensors.

    A weight is input 1 of a WEIGHT_OPS op, followed back through DENSIFY/DEQUANTIZE to the
    constant stored in the file. A sparse-encoded constant stores only its nonzero values,
    so zeros = elements of the (dense) weight shape - nonzero stored values, which is also
    right for a dense constant. TFLite keeps kernels transposed (OHWI, [out, in]): counts,
    not positions, are comparable with Keras. int8 weights count a weight that rounds to 0.

    Returns:
        `layers` (name, op, shape, params, zeros), `params`, `zeros`, `sparsity`.
    """
    interpreter, ops, tensors = _graph(flatbuffer)
    producer = {int(t): op for op in ops for t in op["outputs"]}
    layers = []
    for op in ops:
        if op["op_name"] not in WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        weight = int(op["inputs"][1])
        source = weight
        while source in producer and producer[source]["op_name"] in PASS_OPS:
            source = int(producer[source]["inputs"][0])
        values = interpreter.get_tensor(source)
        params = int(np.prod(tensors[weight]["shape"]))
        layers.append({"name": tensors[source]["name"], "op": op["op_name"],
                       "shape": [int(s) for s in tensors[weight]["shape"]], "params": params,
                       "zeros": params - int(np.count_nonzero(values)),
                       "sparse_encoded": bool(tensors[source].get("sparsity_parameters"))})
    params = sum(layer["params"] for layer in layers)
    zeros = sum(layer["zeros"] for layer in layers)
    return {"layers": layers, "params": params, "zeros": zeros, "sparsity": zeros / params if params else 0.0}


def _nbytes(detail: dict) -> int:
    return int(np.prod(detail["shape"])) * np.dtype(detail["dtype"]).itemsize


def tflite_memory(flatbuffer: bytes) -> dict[str, int]:
    """Inference memory of one sample (batch 1): weights as stored + peak activation memory.

    `weight_bytes`: every constant tensor as the file stores it (sparse-encoded ones as their
    values; their indices and the flatbuffer's framing are not counted). `activation_bytes`:
    the largest sum, over the ops in execution order, of the tensors alive at that op (made
    by an earlier op or the input, still read by this op or a later one, or a model output),
    which is what TFLite's arena planner packs, before its alignment and in-place reuse.
    Dense copies of sparse weights (DENSIFY outputs) are the runtime's, not counted here;
    the interpreter's arena size itself is not exposed by the Python API.
    """
    interpreter, ops, tensors = _graph(flatbuffer)
    inputs = {int(d["index"]) for d in interpreter.get_input_details()}
    outputs = {int(d["index"]) for d in interpreter.get_output_details()}
    made = {int(t): i for i, op in enumerate(ops) for t in op["outputs"]}
    used = {int(t) for op in ops for t in list(op["inputs"]) + list(op["outputs"])} - {-1}
    constants = used - set(made) - inputs
    densified = {int(t) for op in ops if op["op_name"] in PASS_OPS and int(op["inputs"][0]) in constants
                 for t in op["outputs"]}
    last: dict[int, int] = {}
    for i, op in enumerate(ops):
        for t in op["inputs"]:
            last[int(t)] = i
    end = len(ops) - 1
    spans = [(made.get(t, 0), end if t in outputs else last.get(t, made.get(t, 0)), _nbytes(tensors[t]))
             for t in used - constants - densified]
    peak = max((sum(b for s, e, b in spans if s <= i <= e) for i in range(len(ops))), default=0)
    weight_bytes = sum(_nbytes(tensors[t]) if not tensors[t].get("sparsity_parameters")
                       else int(interpreter.get_tensor(t).nbytes) for t in constants)
    return {"weight_bytes": int(weight_bytes), "activation_bytes": int(peak), "memory_bytes": int(weight_bytes + peak)}


def tflite_latency(flatbuffer: bytes, batch: np.ndarray, threads: Optional[int], calls: int) -> tuple[float, float]:
    """Median and p90 ms of `calls` invokes on `batch` after warm-up, with the default delegate
    (XNNPACK in TF 2.21) on `threads` threads (None: TFLite's default)."""
    interpreter = make_interpreter(flatbuffer, threads=threads)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(batch.shape))
    with _quiet_native_stderr():
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], _quantize(batch, inp))
        for _ in range(LATENCY_WARMUP):
            interpreter.invoke()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times)), float(np.percentile(times, 90))


def pqat_model(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
               on_progress: Optional[Callable[[float, str], None]] = None,
               loss: Any = "sparse_categorical_crossentropy") -> keras.Model:
    """Sparsity-preserving quantization-aware training (tfmot PQAT) of a pruned model.

    The fake-quantized twin trains `epochs` on (x, y) with tfmot's
    Default8BitPrunePreserveQuantizeScheme, which keeps the zeros where they are; convert it
    with `convert_tflite(..., "int8")`. `loss` is the task head's training loss (and `y` in
    its form: `Head.keras_loss`, `Head.training_labels`).
    """
    import tensorflow_model_optimization as tfmot

    keras.utils.set_random_seed(seed)
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    qat = tfmot.quantization.keras.quantize_apply(
        annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    qat.compile(keras.optimizers.Adam(1e-4), loss)
    for epoch in range(epochs):
        qat.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=True)
        if on_progress:
            on_progress((epoch + 1) / epochs, f"PQAT epoch {epoch + 1}/{epochs}")
    return qat
