"""One `gradual` fine-tuning epoch against one plain `fit` epoch of the same model on the same data.

    python bench/gradual_epoch.py [--model cnn] [--rounds 3] [--source /work/shared/data/mnist-t10k]

Goal (issue 11): gradual / fit <= 1.3. Each round times, back to back: METHODS["gradual"] with one
fine-tune epoch (its whole call: the wrapped copy, compile, fit with tfmot's callbacks,
strip_pruning, the weights read back), and the same model cloned, compiled with the same optimizer,
loss and metric and fitted one epoch at the same batch size (clone + compile + fit). The medians of
the rounds give the ratio; a breakdown of gradual's stages (the bench re-runs them one by one
through the module's own functions) says where the rest goes. MNIST: 8,000 train images.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mnist_npz import SOURCE, build_mnist_npz  # noqa: E402

from pruning._keras import device_name, keras  # noqa: E402
from pruning.core.prunable import find_prunable  # noqa: E402
from pruning.methods import METHODS, PruneRequest  # noqa: E402
from pruning.methods import gradual as G  # noqa: E402
from pruning.methods.data import loss_for  # noqa: E402
from pruning.model.datasets import load_npz  # noqa: E402
from pruning.model.zoo import ZOO  # noqa: E402

TARGET = 0.5


class FirstStep(keras.callbacks.Callback):
    """When the first train batch ended (it holds the train step's tracing) and when the last did."""

    def on_train_batch_end(self, batch, logs=None):
        self.last = time.perf_counter()
        if batch == 0:
            self.first = self.last


def plain_epoch(model, data, prebuilt: bool = False) -> tuple[float, float, float]:
    """Seconds of clone + compile + one fit epoch, as gradual trains (batch, optimizer, loss, metric):
    (total, up to the end of the first step, the other steps); `prebuilt`: fit prepared as gradual
    prepares it (gradual._trace_once: traced once, without AutoGraph)."""
    start = time.perf_counter()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    loss, as_labels = loss_for(model, data.x_train, data)
    copy.compile(keras.optimizers.Adam(G.LEARNING_RATE), loss, metrics=["accuracy"])
    if prebuilt:
        G._trace_once(copy, data.x_train, as_labels(data.y_train))
    steps = FirstStep()
    copy.fit(data.x_train, as_labels(data.y_train), batch_size=G.BATCH, epochs=1, verbose=0, shuffle=True,
             callbacks=[steps])
    return time.perf_counter() - start, steps.first - start, steps.last - steps.first


def gradual_epoch(request: PruneRequest) -> float:
    start = time.perf_counter()
    METHODS["gradual"].prune(request)
    return time.perf_counter() - start


def gradual_stages(request: PruneRequest) -> dict[str, float]:
    """gradual's prune, stage by stage, through the module's own pieces (seconds each)."""
    import tensorflow_model_optimization as tfmot

    t = {}
    x, y = request.data.x_train, request.data.y_train
    total = math.ceil(len(x) / G.BATCH)
    end, frequency = G.schedule_steps(total)
    targets = {key.rsplit("/", 1)[0]: TARGET for key in request.weights}
    start = time.perf_counter()
    model = G._wrapped_copy(request.model, targets, G.polynomial, end, frequency)
    t["wrapped copy"] = time.perf_counter() - start
    start = time.perf_counter()
    loss, as_labels = loss_for(request.model, x, request.data)
    model.compile(keras.optimizers.Adam(G.LEARNING_RATE), loss, metrics=["accuracy"])
    t["compile"] = time.perf_counter() - start
    if hasattr(G, "_trace_once"):
        start = time.perf_counter()
        G._trace_once(model, x, as_labels(y))
        t["_trace_once (variables, train function)"] = time.perf_counter() - start
    start = time.perf_counter()
    steps = FirstStep()
    model.fit(x, as_labels(y), batch_size=G.BATCH, epochs=1, verbose=0, shuffle=True,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), steps])
    t["fit: first step (traces the train step)"] = steps.first - start
    t[f"fit: the other {total - 1} steps"] = steps.last - steps.first
    t["fit: after the last step"] = time.perf_counter() - steps.last
    t["train-step traces"] = model.train_function.experimental_get_tracing_count()
    start = time.perf_counter()
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    t["strip_pruning"] = time.perf_counter() - start
    start = time.perf_counter()
    {f"{layer.name}/kernel": layer.kernel.numpy() for layer in stripped.layers if hasattr(layer, "kernel")}
    t["read weights"] = time.perf_counter() - start
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--rounds", type=int, default=3)
    # a worktree under /work/wt/ has no shared/ beside it: the project's shared data then
    parser.add_argument("--source", default=str(SOURCE if SOURCE.is_dir() else "/work/shared/data/mnist-t10k"))
    args = parser.parse_args()
    npz = build_mnist_npz(Path(tempfile.gettempdir()) / "prunescope-bench" / "mnist-8k-2k.npz", Path(args.source))
    data = load_npz(npz, "mnist")
    keras.utils.set_random_seed(0)
    model = ZOO[args.model].build(data.input_shape, data.num_classes)
    values = model.get_weights()
    weights = {pw.key: values[pw.index] for pw in find_prunable(model)}
    request = PruneRequest(weights=weights, sparsity={k: TARGET for k in weights}, scope="layer", seed=0,
                           model=model, data=data, finetune_epochs=1)
    print(f"device: {device_name()}; load average before: {os.getloadavg()}", flush=True)
    print(f"{args.model} on mnist: {len(data.x_train)} train images, batch {G.BATCH}, "
          f"{math.ceil(len(data.x_train) / G.BATCH)} steps", flush=True)
    # warm-up: the first fit in a process pays for TensorFlow's setup, the first gradual for tfmot's import
    plain_epoch(model, data)
    gradual_epoch(request)
    plain, grad, built = [], [], []
    for _ in range(args.rounds):
        plain.append(plain_epoch(model, data))
        grad.append(gradual_epoch(request))
        built.append(plain_epoch(model, data, prebuilt=True) if hasattr(G, "_trace_once") else (float("nan"),) * 3)
        print(f"round: fit {plain[-1][0]:.2f} s, gradual {grad[-1]:.2f} s, fit prepared {built[-1][0]:.2f} s", flush=True)
    p, b = (float(np.median([r[0] for r in v])) for v in (plain, built))
    g = float(np.median(grad))
    print(f"\n| | median s ({args.rounds} rounds) |\n|---|---:|\n| plain fit epoch (clone + compile + fit) | {p:.2f} |\n"
          f"| gradual epoch (METHODS['gradual'], 1 epoch) | {g:.2f} |\n| **ratio gradual / fit** | **{g / p:.2f}** |\n"
          f"| plain fit epoch prepared like gradual's (_trace_once) | {b:.2f} |\n"
          f"| ratio gradual / that fit | {g / b:.2f} |")
    print("\n| plain fit, median of the rounds | s |\n|---|---:|")
    for label, v in (("plain", plain), ("prepared", built)):
        print(f"| {label}: first step (with tracing) | {np.median([r[1] for r in v]):.2f} |\n"
              f"| {label}: the other steps | {np.median([r[2] for r in v]):.2f} |")
    stages = gradual_stages(request)
    print("\n| gradual stage | s |\n|---|---:|")
    for stage, seconds in stages.items():
        print(f"| {stage} | {seconds:.2f} |" if isinstance(seconds, float) else f"| {stage} | {seconds} |")
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
