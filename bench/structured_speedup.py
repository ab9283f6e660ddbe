"""Structured speedup: filters-l1 at 0.5, the pruned model against a freshly built one of its shape.

    python bench/structured_speedup.py [--models vgg,resnet20,MobileNetV2,ResNet50,DenseNet121] [--out t.md]

Per model and batch (1, 32): dense, pruned (PruneScope's surgery) and fresh (the pruned model's
config rebuilt with `from_config`, new weights, no state of the surgery) are timed alternately in
one run with the project's latency timing; speedup = dense / model median latency; ratio =
pruned speedup / fresh speedup (goal >= 0.9, issue 11). 32x32x3 random inputs, 10 classes,
weights=None: no downloads. "paired ratio": the median over timing rounds of fresh / pruned ms;
"p10 ratio": fresh p10 / pruned p10 (the least disturbed calls); "control": the dense model against
its own rebuild, timed in the same rounds (paired, twin / dense): how far two equal models drift
apart under this load. "same graph": the pruned and fresh traced graphs hold the same op types and
shapes in order. `--check` times fresh before pruned in each round and adds a rebuild carrying
the pruned weights (its paired time over pruned's: do the weights' values matter?).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning._keras import device_name, keras  # noqa: E402
from pruning.core.prunable import find_prunable  # noqa: E402
from pruning.measure.metrics import Latency, _timed_calls, make_forward  # noqa: E402
from pruning.methods import METHODS, PruneRequest  # noqa: E402
from pruning.model.op_forms import library_objects  # noqa: E402
from pruning.model.zoo import ZOO  # noqa: E402

L = keras.layers
A = keras.applications
SHAPE = (32, 32, 3)
TARGET = 0.5


def build_vgg(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A plain VGG-style stack: 3 blocks of 2 x (3x3 conv, BatchNorm, ReLU) + max-pool, 32/64/128."""
    layers = [L.Input(input_shape)]
    for block, filters in enumerate((32, 64, 128), start=1):
        for i in (1, 2):
            layers += [L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"b{block}_conv{i}"),
                       L.BatchNormalization(name=f"b{block}_bn{i}"), L.ReLU(name=f"b{block}_relu{i}")]
        layers.append(L.MaxPooling2D(2, name=f"b{block}_pool"))
    layers += [L.Flatten(name="flatten"), L.Dense(256, activation="relu", name="fc"),
               L.Dense(num_classes, name="logits")]
    return keras.Sequential(layers, name="vgg")


MODELS = {
    "vgg": build_vgg,
    "resnet20": ZOO["resnet20"].build,
    "MobileNetV2": lambda s, n: A.MobileNetV2(input_shape=s, weights=None, classes=n, classifier_activation=None),
    "ResNet50": lambda s, n: A.ResNet50(input_shape=s, weights=None, classes=n, classifier_activation=None),
    "DenseNet121": lambda s, n: A.DenseNet121(input_shape=s, weights=None, classes=n, classifier_activation=None),
}


def graph_signature(forward) -> list[tuple]:
    """Each operation of the traced inference graph: its type and output shapes, in order."""
    graph = forward.get_concrete_function().graph
    return [(op.type, tuple(tuple(o.shape.as_list()) if o.shape.rank is not None else None for o in op.outputs))
            for op in graph.get_operations()]


def rows(name: str, batches: tuple[int, ...], budget_s: float, min_calls: int, check: bool = False) -> list[dict]:
    keras.utils.set_random_seed(0)
    dense = MODELS[name](SHAPE, 10)
    values = dense.get_weights()
    weights = {pw.key: values[pw.index] for pw in find_prunable(dense)}
    request = PruneRequest(weights=weights, sparsity={k: TARGET for k in weights}, scope="layer", model=dense)
    start = time.perf_counter()
    pruned = METHODS["filters-l1"].prune(request).model
    prune_s = time.perf_counter() - start
    keras.utils.set_random_seed(1)
    fresh = keras.Model.from_config(pruned.get_config(), custom_objects=library_objects())
    if [w.shape for w in fresh.weights] != [w.shape for w in pruned.weights]:
        raise SystemExit(f"{name}: the rebuilt model's weights differ in shape from the pruned model's")
    # the noise floor: the dense model against its own rebuild, two equal computations
    twin = type(dense).from_config(dense.get_config(), custom_objects=library_objects())
    models = [dense, pruned, fresh, twin]
    if check:  # a rebuild that carries the pruned weights: do the weights' values matter?
        carrier = keras.Model.from_config(pruned.get_config(), custom_objects=library_objects())
        carrier.set_weights(pruned.get_weights())
        models.append(carrier)
    forwards = [make_forward(m) for m in models]
    signatures = [graph_signature(f) for f in forwards[:3]]
    ops = [len(sig) for sig in signatures]
    # same op types and shapes in the same order: the two compute alike but for the weights' values
    same = "yes" if signatures[1] == signatures[2] else "no"
    out = []
    for batch in batches:
        x = np.random.default_rng(batch).normal(size=(batch,) + SHAPE).astype(np.float32)
        # the project's timing, three forwards in turn: each ratio is same-load
        # --check: fresh before pruned in each round, so a place in the round cannot favour pruned
        order = [0, 2, 1, 3, 4] if check else [0, 1, 2, 3]
        timed = _timed_calls([forwards[i] for i in order], x, budget_s, min_calls, 200)
        times = [timed[order.index(i)] for i in range(len(order))]
        d, p, f = (Latency.of(t) for t in times[:3])
        rounds = np.asarray(times)
        # per round (the four back to back): fresh / pruned = pruned speedup / fresh speedup
        paired = float(np.median(rounds[2] / rounds[1]))
        control = float(np.median(rounds[3] / rounds[0]))
        carried = float(np.median(rounds[4] / rounds[1])) if check else float("nan")
        out.append({"model": name, "batch": batch, "params": f"{dense.count_params():,} -> {pruned.count_params():,}",
                    "dense_ms": d, "pruned_ms": p, "fresh_ms": f, "ops": ops, "same": same, "paired": paired, "control": control, "carried": carried,
                    "calls": d.calls, "prune_s": prune_s,
                    "pruned_speedup": d.median_ms / p.median_ms, "fresh_speedup": d.median_ms / f.median_ms})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--budget", type=float, default=1.0, help="timing seconds per forward and batch")
    parser.add_argument("--min-calls", type=int, default=10)
    parser.add_argument("--check", action="store_true",
                        help="time fresh before pruned, and add a rebuild carrying the pruned weights")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    batches = tuple(int(b) for b in args.batches.split(","))
    lines = [f"device: {device_name()}; load average before: {os.getloadavg()}", "",
             "| model | params dense -> pruned | batch | dense ms (p10-p90) | pruned ms | fresh ms | "
             "pruned speedup | fresh speedup | **ratio** | paired ratio | p10 ratio | control | calls | "
             "graph ops dense / pruned / fresh | same graph |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    if args.check:
        lines[2] += " carrier / pruned (paired) |"
        lines[3] += "---:|"
    print("\n".join(lines), flush=True)
    for name in args.models.split(","):
        for r in rows(name, batches, args.budget, args.min_calls, args.check):
            d, p, f = r["dense_ms"], r["pruned_ms"], r["fresh_ms"]
            lines.append(
                f"| {name} | {r['params']} | {r['batch']} | {d.median_ms:.2f} ({d.p10_ms:.2f}-{d.p90_ms:.2f}) | "
                f"{p.median_ms:.2f} ({p.p10_ms:.2f}-{p.p90_ms:.2f}) | {f.median_ms:.2f} ({f.p10_ms:.2f}-{f.p90_ms:.2f}) | "
                f"{r['pruned_speedup']:.2f}x | {r['fresh_speedup']:.2f}x | "
                f"**{r['pruned_speedup'] / r['fresh_speedup']:.2f}** | {r['paired']:.2f} | {f.p10_ms / p.p10_ms:.2f} | "
                f"{r['control']:.2f} | {r['calls']} | "
                f"{' / '.join(map(str, r['ops']))} | {r['same']} |"
                + (f" {r['carried']:.2f} |" if args.check else ""))
            print(lines[-1], flush=True)
    lines.append(f"\nload average after: {os.getloadavg()}")
    print(lines[-1])
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
