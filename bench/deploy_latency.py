"""Deploy latency and memory benchmark: Keras vs TFLite float32 vs TFLite int8 on cnn, resnet20 and
keras.applications MobileNetV2 (weights=None, 32x32x3, random data), dense / masks / filters-l1.

    PRUNESCOPE_HOME=/tmp/ps-bench-latency python3 bench/deploy_latency.py [--models cnn,resnet20,mobilenetv2]

No training: random inputs and labels (accuracy is meaningless here and not reported); the pruned
models come from the project's own methods (Engine.prune, then Engine.save). Prints one JSON line per
point and a Markdown table per figure at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pruning._keras import keras  # noqa: E402
from pruning.measure.deploy import (  # noqa: E402
    convert_tflite,
    tflite_latency,
    tflite_memory,
)
from pruning.measure.memory import activation_bytes, weight_bytes  # noqa: E402
from pruning.measure.metrics import make_forward, measure_latency  # noqa: E402
from pruning.model import zoo  # noqa: E402
from pruning.paths import home  # noqa: E402
from pruning.run.engine import Engine  # noqa: E402
from pruning.specs import DataRef, ModelRef, PruneSpec  # noqa: E402

SHAPE, CLASSES, BATCH = (32, 32, 3), 10, 32
VARIANTS = (("dense", "magnitude", 0.0), ("masks 80 %", "magnitude", 0.8), ("filters-l1 50 %", "filters-l1", 0.5))


def build(name: str) -> keras.Model:
    if name == "mobilenetv2":
        return keras.applications.MobileNetV2(input_shape=SHAPE, weights=None, classes=CLASSES)
    return {"cnn": zoo.build_cnn, "resnet20": zoo.build_resnet20}[name](SHAPE, CLASSES)


def random_data(folder: Path) -> DataRef:
    rng = np.random.default_rng(0)
    path = folder / "random-32x32x3.npz"
    np.savez(path, x_train=rng.normal(size=(128,) + SHAPE).astype(np.float32),
             y_train=rng.integers(0, CLASSES, 128), x_test=rng.normal(size=(64,) + SHAPE).astype(np.float32),
             y_test=rng.integers(0, CLASSES, 64))
    return DataRef.parse(str(path))


def measure(model: keras.Model, batch: np.ndarray, samples: np.ndarray, calls: int, threads: int) -> dict:
    forward = make_forward(model)
    keras_ms = measure_latency(forward, batch, budget_s=0.0, min_calls=calls, max_calls=calls).median_ms
    point = {"keras_ms": keras_ms, "keras_memory": weight_bytes(model.get_weights()) + activation_bytes(model)}
    for quantization in ("float32", "int8"):
        start = time.perf_counter()
        flatbuffer = convert_tflite(model, quantization, samples if quantization == "int8" else None)
        point[f"{quantization}_convert_s"] = time.perf_counter() - start
        point[f"{quantization}_1t_ms"] = tflite_latency(flatbuffer, batch, 1, calls)[0]
        point[f"{quantization}_all_ms"] = tflite_latency(flatbuffer, batch, threads, calls)[0]
        point[f"{quantization}_memory"] = tflite_memory(flatbuffer)["memory_bytes"]
        point[f"{quantization}_bytes"] = len(flatbuffer)
    return point


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="cnn,resnet20,mobilenetv2")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    folder = home() / "bench-latency"
    folder.mkdir(parents=True, exist_ok=True)
    data = random_data(folder)
    x = np.load(data.path)["x_train"]
    batch, samples, threads = x[:BATCH], x[:64], os.cpu_count() or 1
    engine, results = Engine(1), []
    started = time.perf_counter()
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        source = folder / f"{name}.keras"
        build(name).save(source)
        ref = ModelRef.parse(str(source))
        for label, method, target in VARIANTS:
            start = time.perf_counter()
            spec = PruneSpec(model=ref, data=data, method=method, target_sparsity=target)
            report = engine.prune(spec)
            out = folder / f"{name}-{method}-{target}.keras"
            engine.save(spec, out)
            model = keras.models.load_model(out, compile=False)
            point = {"model": name, "variant": label, "sparsity": report.sparsity,
                     "params": int(sum(w.size for w in model.get_weights())),
                     **measure(model, batch, samples, args.calls, threads), "threads": threads,
                     "seconds": time.perf_counter() - start}
            results.append(point)
            print(json.dumps(point), flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")
    print("\n| model | pruned by | sparsity | Keras ms | TFLite f32 1t | f32 all | int8 1t | int8 all |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for p in results:
        print(f"| {p['model']} | {p['variant']} | {p['sparsity']:.3f} | {p['keras_ms']:.2f} | {p['float32_1t_ms']:.2f} "
              f"| {p['float32_all_ms']:.2f} | {p['int8_1t_ms']:.2f} | {p['int8_all_ms']:.2f} |")
    print("\n| model | pruned by | params | Keras memory | TFLite f32 memory | int8 memory | int8 file bytes |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for p in results:
        print(f"| {p['model']} | {p['variant']} | {p['params']:,} | {p['keras_memory']:,} | {p['float32_memory']:,} "
              f"| {p['int8_memory']:,} | {p['int8_bytes']:,} |")
    (folder / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
