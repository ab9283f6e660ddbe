"""The keras.applications family table: loads / masks / structured / max surgery error / speedup.

    python bench/families.py [--families MobileNetV2,Xception] [--out table.md]
    python bench/families.py --keras3 [--families MobileNetV3Small,ConvNeXtTiny] [--out table.md]

weights=None, 32x32x3 inputs (75 for InceptionV3 and InceptionResNetV2, 71 for Xception), 10 classes,
logits out. Default mode: tf_keras builds the family, saved as .keras and read back through PruneScope's
file check. `--keras3`: Keras 3 (`import keras`) builds it, BatchNorm statistics and biases randomized
(seeded), saved as .keras and .h5, and each file read through the Keras 3 bridge (check, rebuild in
tf_keras, outputs compared on 32 inputs: "import error"); the pruned model goes back out as Keras 3
(save_keras3: loaded with keras.saving.load_model in safe mode, outputs compared: "export error").
"masks": magnitude at 0.5 reaches its exact keep count; "structured": filters-l1 at 0.5, measured
sparsity and parameters before -> after; "surgery error": pruned outputs against the original with the
removed channels zeroed; errors are relative to the largest output (at least 1); "speedup": dense /
pruned median latency, batch 32, timed alternately.
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

SIDES = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
OPTIONS = {"MobileNet": {"alpha": 0.25}, "MobileNetV2": {"alpha": 0.35}}
FAMILIES = ("MobileNetV2", "MobileNetV3Small", "RegNetX002", "EfficientNetB0", "ResNet50", "DenseNet121",
            "InceptionV3", "Xception", "NASNetMobile", "ConvNeXtTiny")
# Keras 3 has no RegNet; it has these beside the tf_keras table's
KERAS3_FAMILIES = ("MobileNet", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0", "ResNet50",
                   "ResNet50V2", "VGG16", "DenseNet121", "InceptionV3", "InceptionResNetV2", "Xception",
                   "NASNetMobile", "ConvNeXtTiny")


def build(applications, name: str):
    """One family with weights=None and logits out (NASNet has no classifier_activation)."""
    side = SIDES.get(name, 32)
    options = dict(OPTIONS.get(name, {}))
    if name != "NASNetMobile":
        options["classifier_activation"] = None
    return getattr(applications, name)(input_shape=(side, side, 3), weights=None, classes=10, **options), side


def randomize(model, layers) -> None:
    """Random BatchNorm statistics and biases (seeded): with the defaults a removed channel or a
    mistranslated layer could read as near zero and hide."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization) and layer.scale and layer.center:
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, 0.1, n), rng.uniform(0.5, 2.0, n)])
        elif type(layer).__name__ == "LayerScale":  # its 1e-6 start would hide every residual branch
            layer.set_weights([np.ones(layer.gamma.shape)])
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.05, layer.bias.shape))


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))


def prune_columns(model, side: int) -> tuple[dict, object]:
    """masks / filters-l1 at 0.5 (measured sparsity, params, surgery error, speedup) of a tf_keras model."""
    out = {}
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
        out["structured"] = f"no: {exc}"
        return out, None
    out["prune_s"] = time.perf_counter() - start
    new = result.model
    kept = sum(int(m.sum()) for m in result.masks.values())
    out["sparsity"] = 1.0 - kept / sum(m.size for m in result.masks.values())
    out["structured"] = f"{model.count_params():,} -> {new.count_params():,}"
    graph = ChannelGraph(model)
    keep = graph.keep_from_masks(result.masks)
    x = np.random.default_rng(1).normal(size=(32, side, side, 3)).astype(np.float32)
    model.set_weights(graph.zeroed_weights(keep))
    reference = model(x).numpy()
    model.set_weights(values)
    out["error"] = relative(new(x).numpy(), reference)
    pruned, dense = measure_latency_pair(make_forward(new), make_forward(model), x)
    out["speedup"] = dense.median_ms / pruned.median_ms
    return out, new


def row(name: str) -> dict:
    """The tf_keras table's row: built by tf_keras, saved, read back through the file check."""
    keras.utils.set_random_seed(0)
    model, side = build(keras.applications, name)
    out = {"family": name, "input": side}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.keras"
        model.save(path)
        try:
            load_model_file(ModelRef.parse(str(path)))
            out["loads"] = "yes"
        except BadInput as exc:
            out["loads"] = f"no: {exc}"
    out.update(prune_columns(model, side)[0])
    return out


def keras3_row(name: str) -> dict:
    """The Keras 3 table's row: built by Keras 3, in through the bridge (.keras and .h5), pruned, out as Keras 3."""
    from pruning.model.keras3 import import_keras3, keras3, save_keras3
    from pruning.model.safety import inspect_model_file

    k3 = keras3()
    k3.utils.set_random_seed(0)
    source, side = build(k3.applications, name)
    randomize(source, k3.layers)
    x = np.random.default_rng(2).normal(size=(32, side, side, 3)).astype(np.float32)
    out = {"family": name, "input": side}
    with tempfile.TemporaryDirectory() as folder:
        model = None
        for suffix in (".keras", ".h5"):
            path = Path(folder) / f"{name}{suffix}"
            start = time.perf_counter()
            try:
                source.save(path)
                inspect_model_file(path)
                imported, report = import_keras3(path, path.name, x)
                out[suffix] = f"yes ({time.perf_counter() - start:.0f} s)"
                out["import_error"] = report.max_abs_diff if model is None else out["import_error"]
                model = model or imported
            except BadInput as exc:
                out[suffix] = f"no: {exc}"
            except Exception as exc:  # Keras 3 itself failing to write or read its own file
                out[suffix] = f"no (Keras 3: {type(exc).__name__}: {str(exc).splitlines()[0][:90]})"
        if model is None:
            return out
        columns, new = prune_columns(model, side)
        out.update(columns)
        if new is not None:
            target = Path(folder) / "pruned.keras"
            try:
                written = save_keras3(new, target, x)
                k3.saving.load_model(target, compile=False, safe_mode=True)
                out["export"] = f"yes ({written.max_abs_diff:.1e})"
            except BadInput as exc:
                out["export"] = f"no: {exc}"
    return out


def _number(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, float) else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras3", action="store_true", help="build each family with Keras 3 and import it")
    parser.add_argument("--families", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    names = args.families.split(",") if args.families else (KERAS3_FAMILIES if args.keras3 else FAMILIES)
    lines = [f"device: {device_name()}", ""]
    if args.keras3:
        lines += ["| family | input | .keras loads | .h5 loads | import error | masks | filters-l1 0.5: sparsity "
                  "| params | surgery error | speedup | Keras 3 export (error) |", "|" + "---|" * 11]
    else:
        lines += ["| family | input | loads | masks | filters-l1 at 0.5: params | max surgery error | speedup | prune s |",
                  "|---|---|---|---|---|---|---|---|"]
    for name in names:
        r = keras3_row(name) if args.keras3 else row(name)
        speedup = _number(r.get("speedup"), ".2f") + ("x" if "speedup" in r else "")
        if args.keras3:
            lines.append(f"| {name} | {r['input']} | {r.get('.keras', '-')} | {r.get('.h5', '-')} | "
                         f"{_number(r.get('import_error'), '.1e')} | {r.get('masks', '-')} | "
                         f"{_number(r.get('sparsity'), '.3f')} | {r.get('structured', '-')} | "
                         f"{_number(r.get('error'), '.1e')} | {speedup} | {r.get('export', '-')} |")
        else:
            lines.append(f"| {name} | {r['input']} | {r['loads']} | {r['masks']} | {r['structured']} | "
                         f"{_number(r.get('error'), '.1e')} | {speedup} | {_number(r.get('prune_s'), '.1f')} |")
        print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
