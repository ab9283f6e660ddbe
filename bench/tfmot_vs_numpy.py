"""Pruning cost per point: tfmot's way (wrap, one training step, strip) against numpy masks.

Same model, same sparsities; the masks must come out identical. The tfmot step uses a
learning rate of 0 so that only its mask update, not training, changes the weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning._keras import keras  # noqa: E402
from pruning.core.prunable import find_prunable  # noqa: E402
from pruning.methods import PruneRequest, get_method  # noqa: E402
from pruning.run.workbench import Workbench  # noqa: E402
from pruning.specs import DataRef, ModelRef  # noqa: E402

RATES = (0.2, 0.4, 0.6, 0.8, 0.9, 0.95)


def tfmot_masks(model, base_weights, x, y, sparsity: float) -> dict[str, np.ndarray]:
    """prune_low_magnitude + one training step + strip_pruning: the masks it leaves."""
    import tensorflow_model_optimization as tfmot

    sparsity_api = tfmot.sparsity.keras
    model.set_weights(base_weights)  # the wrapper shares variables with `model`: start from base
    # frequency 1, begin 0: the mask is set on the first step (the default 100 never fires here)
    schedule = sparsity_api.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    wrapped = sparsity_api.prune_low_magnitude(model, pruning_schedule=schedule)
    wrapped.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    wrapped.fit(x, y, batch_size=len(x), epochs=1, verbose=0, callbacks=[sparsity_api.UpdatePruningStep()])
    stripped = sparsity_api.strip_pruning(wrapped)
    weights = stripped.get_weights()
    return {pw.key: weights[pw.index] != 0 for pw in find_prunable(stripped)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    args = parser.parse_args()
    model_ref, data_ref = ModelRef.parse(args.model), DataRef.parse(args.dataset)
    bench = Workbench(model_ref, data_ref)
    x, y = bench.dataset.x_train[:32], bench.dataset.y_train[:32]
    # tfmot gets its own copy of the model so it cannot disturb the workbench
    tf_model = keras.models.load_model(bench.path, compile=False)
    base = [w.copy() for w in bench.base_weights]
    magnitude = get_method("magnitude")
    rows = []
    for rate in RATES:
        t0 = time.perf_counter()
        theirs = tfmot_masks(tf_model, base, x, y, rate)
        tfmot_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        # what a sweep point does: scores -> masks -> assign to the working model
        ours = magnitude.prune(PruneRequest(
            weights={pw.key: bench.base_weights[pw.index] for pw in bench.prunable},
            sparsity={pw.key: rate for pw in bench.prunable}, scope="layer",
        )).masks
        bench.apply_masks(ours)
        numpy_s = time.perf_counter() - t0
        identical = set(ours) == set(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)
        rows.append({"sparsity": rate, "tfmot_s": tfmot_s, "numpy_s": numpy_s,
                     "x_faster": tfmot_s / numpy_s, "masks_identical": identical,
                     "tensors": len(ours)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    bench.reset()
    tfmot_mean = float(np.mean([r["tfmot_s"] for r in rows]))
    numpy_mean = float(np.mean([r["numpy_s"] for r in rows]))
    print(json.dumps({
        "model": args.model, "dataset": args.dataset, "points": rows,
        "tfmot_s_per_point_mean": tfmot_mean, "numpy_ms_per_point_mean": 1000 * numpy_mean,
        "x_faster_mean_per_point": tfmot_mean / numpy_mean,
        "all_masks_identical": all(r["masks_identical"] for r in rows), "device": bench.env["device"],
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
