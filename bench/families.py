"""The keras.applications family table: loads / masks / structured / max surgery error / speedup.

    python bench/families.py [--families MobileNetV2,Xception] [--out table.md]

weights=None, 32x32x3 inputs (75 for InceptionV3, 71 for Xception), 10 classes, logits out.
"loads": saved as .keras and read back through PruneScope's file check; "masks": magnitude at
0.5 reaches its exact keep count; "structured": filters-l1 at 0.5, parameters before -> after;
"max error": pruned outputs against the original with the removed channels zeroed (relative to
the largest output); "speedup": dense / pruned median latency, batch 32, timed alternately.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pruning._keras import device_name, keras  # noqa: E402
from pruning.core.masks import keep_count  # noqa: E402
from pruning.core.prunable import find_prunable  # noqa: E402
from pruning.core.surgery import ChannelGraph  # noqa: E402
from pruning.errors import BadInput  # noqa: E402
from pruning.measure.metrics import make_forward, measure_latency_pair  # noqa: E402
from pruning.methods import METHODS, PruneRequest  # noqa: E402
from pruning.model.baselines import load_model_file  # noqa: E402
from pruning.specs import ModelRef  # noqa: E402

A = keras.applications
FAMILIES = {
    "MobileNetV2": (lambda s: A.MobileNetV2(input_shape=s, alpha=0.35, weights=None, classes=10,
                                             classifier_activation=None), 32),
    "MobileNetV3Small": (lambda s: A.MobileNetV3Small(input_shape=s, weights=None, classes=10,
                                                      classifier_activation=None), 32),
    "RegNetX002": (lambda s: A.RegNetX002(input_shape=s, weights=None, classes=10, classifier_activation=None), 32),
    "EfficientNetB0": (lambda s: A.EfficientNetB0(input_shape=s, weights=None, classes=10,
                                                  classifier_activation=None), 32),
    "ResNet50": (lambda s: A.ResNet50(input_shape=s, weights=None, classes=10, classifier_activation=None), 32),
    "DenseNet121": (lambda s: A.DenseNet121(input_shape=s, weights=None, classes=10, classifier_activation=None), 32),
    "InceptionV3": (lambda s: A.InceptionV3(input_shape=s, weights=None, classes=10, classifier_activation=None), 75),
    "Xception": (lambda s: A.Xception(input_shape=s, weights=None, classes=10, classifier_activation=None), 71),
    "NASNetMobile": (lambda s: A.NASNetMobile(input_shape=s, weights=None, classes=10), 32),
    "ConvNeXtTiny": (lambda s: A.ConvNeXtTiny(input_shape=s, weights=None, classes=10,
                                              classifier_activation=None), 32),
}


def row(name: str) -> dict:
    keras.utils.set_random_seed(0)
    make, side = FAMILIES[name]
    model = make((side, side, 3))
    out = {"family": name, "input": side, "params": model.count_params()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.keras"
        model.save(path)
        try:
            load_model_file(ModelRef.parse(str(path)))
            out["loads"] = "yes"
        except BadInput as exc:
            out["loads"] = f"no: {exc}"
    values = model.get_weights()
    weights = {pw.key: values[pw.index] for pw in find_prunable(model)}
    request = PruneRequest(weights=weights, sparsity={k: 0.5 for k in weights}, scope="layer", model=model)
    masks = METHODS["magnitude"].prune(request).masks
    exact = all(int(m.sum()) == keep_count(weights[k].size, 0.5) for k, m in masks.items())
    out["masks"] = "yes" if exact else "count off"
    start = time.perf_counter()
    try:
        result = METHODS["filters-l1"].prune(request)
    except BadInput as exc:
        out.update(structured=f"no: {exc}", error="", speedup="")
        return out
    out["prune_s"] = time.perf_counter() - start
    new = result.model
    out["structured"] = f"{model.count_params():,} -> {new.count_params():,}"
    graph = ChannelGraph(model)
    keep = {}
    for group in graph.groups():
        mask = result.masks[group.kernels[0]]
        kept = np.flatnonzero(mask.reshape(-1, mask.shape[-1]).any(axis=0))
        if len(kept) < group.size:
            keep[group.producers[0]] = kept
    x = np.random.default_rng(1).normal(size=(32, side, side, 3)).astype(np.float32)
    model.set_weights(graph.zeroed_weights(keep))
    reference = model(x).numpy()
    model.set_weights(values)
    out["error"] = float(np.abs(new(x).numpy() - reference).max() / np.abs(reference).max())
    (pruned_ms, _), (dense_ms, _) = measure_latency_pair(make_forward(new), make_forward(model), x, calls=20)
    out["speedup"] = dense_ms / pruned_ms
    out["kept_notes"] = sum(note.startswith("channels kept") for note in result.notes)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = [f"device: {device_name()}", "",
             "| family | input | loads | masks | filters-l1 at 0.5: params | max surgery error | speedup | prune s |",
             "|---|---|---|---|---|---|---|---|"]
    for name in args.families.split(","):
        r = row(name)
        error = f"{r['error']:.1e}" if isinstance(r["error"], float) else "-"
        speedup = f"{r['speedup']:.2f}x" if isinstance(r["speedup"], float) else "-"
        prune_s = f"{r['prune_s']:.1f}" if "prune_s" in r else "-"
        lines.append(f"| {name} | {r['input']} | {r['loads']} | {r['masks']} | {r['structured']} | {error} | "
                     f"{speedup} | {prune_s} |")
        print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
