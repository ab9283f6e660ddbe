"""One-command device check: which device TensorFlow uses, and resnet20 pruned and timed on it.

    python bench/gpu_check.py [--dataset digits] [--rates 0,0.5,0.9]

Prints the device, then per sparsity the measured sparsity, accuracy and the latency of
the pruned and the dense model timed alternately in the same run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning._keras import device_name, tf  # noqa: E402
from pruning.run.engine import Engine  # noqa: E402
from pruning.specs import DataRef, ModelRef, PruneSpec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--rates", default="0,0.5,0.9")
    args = parser.parse_args()

    print(f"device: {device_name()}")
    print(f"GPUs visible to TensorFlow: {[g.name for g in tf.config.list_physical_devices('GPU')]}")
    engine = Engine()
    model, data = ModelRef(args.model), DataRef(args.dataset)
    start = time.perf_counter()
    baseline = engine.baseline(model, data, on_progress=lambda f, m: print(f"  {m}", flush=True))
    print(f"baseline: {baseline.description}; accuracy {baseline.metrics['accuracy']:.4f}; "
          f"loaded in {time.perf_counter() - start:.1f} s")
    print(f"{'target':>7} {'measured':>9} {'accuracy':>9} {'pruned ms':>10} {'dense ms':>9} {'speedup':>8} {'total s':>8}")
    for rate in (float(r) for r in args.rates.split(",")):
        report = engine.prune(PruneSpec(model=model, data=data, target_sparsity=rate))
        p, b = report.pruned, report.baseline
        print(f"{rate:7.2f} {report.sparsity:9.4f} {p['accuracy']:9.4f} {p['latency_ms']:10.3f} "
              f"{b['latency_ms']:9.3f} {report.derived()['speedup']:7.2f}x {report.timing_s['total']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
