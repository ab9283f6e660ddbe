"""One `gradual` fine-tuning epoch against one plain `fit` epoch of the same model on the same data.

    python bench/gradual_epoch.py [--model cnn] [--rounds 3] [--source /work/shared/data/mnist-t10k]

Goal (issue 11): gradual / fit <= 1.3. Each round times, back to back: the same model cloned,
compiled with the same optimizer, loss and metric and fitted one epoch at the same batch size
(clone + compile + fit); METHODS["gradual"] with one fine-tune epoch (its whole call: the copy,
the masked train loop with tfmot's schedule deciding the mask updates, the weights read back);
and gradual's loop alone (clone + `train_masked` at all-ones masks, no updates), which says what
the mask updates cost. The medians of the rounds give the ratios. MNIST: 8,000 train images.
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
from pruning.measure import training as T  # noqa: E402
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


def plain_epoch(model, data) -> tuple[float, float, float]:
    """Seconds of clone + compile + one fit epoch, as gradual trains (batch, optimizer, loss):
    (total, up to the end of the first step, the other steps)."""
    start = time.perf_counter()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    loss, as_labels = loss_for(model, data.x_train, data)
    copy.compile(keras.optimizers.Adam(T.FINETUNE_LR), loss, metrics=["accuracy"])
    steps = FirstStep()
    copy.fit(data.x_train, as_labels(data.y_train), batch_size=T.FINETUNE_BATCH, epochs=1, verbose=0, shuffle=True,
             callbacks=[steps])
    return time.perf_counter() - start, steps.first - start, steps.last - steps.first


def gradual_epoch(request: PruneRequest) -> float:
    start = time.perf_counter()
    METHODS["gradual"].prune(request)
    return time.perf_counter() - start


def masked_epoch(request: PruneRequest) -> float:
    """gradual's loop without its mask updates: clone + one `train_masked` epoch at all-ones masks."""
    start = time.perf_counter()
    copy = keras.models.clone_model(request.model)
    copy.set_weights(request.model.get_weights())
    loss, _ = loss_for(request.model, request.data.x_train, request.data)
    ones = {pw.index: np.ones(pw.shape, bool) for pw in find_prunable(copy)}
    T.train_masked(copy, ones, request.data, 1, 0, loss=loss)
    return time.perf_counter() - start


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
    print(f"{args.model} on mnist: {len(data.x_train)} train images, batch {T.FINETUNE_BATCH}, "
          f"{math.ceil(len(data.x_train) / T.FINETUNE_BATCH)} steps", flush=True)
    # warm-up: the first fit in a process pays for TensorFlow's setup, the first gradual for tfmot's import
    plain_epoch(model, data)
    gradual_epoch(request)
    masked_epoch(request)
    plain, grad, loop = [], [], []
    for _ in range(args.rounds):
        plain.append(plain_epoch(model, data))
        grad.append(gradual_epoch(request))
        loop.append(masked_epoch(request))
        print(f"round: fit {plain[-1][0]:.2f} s, gradual {grad[-1]:.2f} s, its loop without mask updates "
              f"{loop[-1]:.2f} s", flush=True)
    p, g, m = float(np.median([r[0] for r in plain])), float(np.median(grad)), float(np.median(loop))
    print(f"\n| | median s ({args.rounds} rounds) |\n|---|---:|\n| plain fit epoch (clone + compile + fit) | {p:.2f} |\n"
          f"| plain fit: first step (with tracing) | {np.median([r[1] for r in plain]):.2f} |\n"
          f"| plain fit: the other steps | {np.median([r[2] for r in plain]):.2f} |\n"
          f"| gradual epoch (METHODS['gradual'], 1 epoch) | {g:.2f} |\n"
          f"| gradual's loop without its mask updates (clone + train_masked) | {m:.2f} |\n"
          f"| **ratio gradual / fit** | **{g / p:.2f}** |\n| ratio gradual / its loop alone | {g / m:.2f} |")
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
