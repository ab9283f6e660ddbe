"""What the live memory figure costs: `measure.memory.activation_bytes` timed on cnn, resnet20 and
MobileNetV2 (32x32x3), the work a structured point adds (a masked point reuses its workbench's figure).

    python3 bench/deploy_memory.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning._keras import keras  # noqa: E402
from pruning.measure.memory import activation_bytes  # noqa: E402
from pruning.model import zoo  # noqa: E402

SHAPE, CLASSES, CALLS = (32, 32, 3), 10, 5


def main() -> None:
    builders = {"cnn": lambda: zoo.build_cnn(SHAPE, CLASSES), "resnet20": lambda: zoo.build_resnet20(SHAPE, CLASSES),
                "mobilenetv2": lambda: keras.applications.MobileNetV2(input_shape=SHAPE, weights=None, classes=CLASSES)}
    print("| model | activation bytes | median ms of 5 calls |")
    print("|---|---:|---:|")
    for name, build in builders.items():
        model = build()
        times, value = [], 0
        for _ in range(CALLS):
            start = time.perf_counter()
            value = activation_bytes(model)
            times.append((time.perf_counter() - start) * 1000)
        print(f"| {name} | {value:,} | {np.median(times):.1f} |", flush=True)


if __name__ == "__main__":
    main()
