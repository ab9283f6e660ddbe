"""Runs specs: one working model per (model, dataset), pruned in place from read-only base weights.

Pruning many sparsities never rebuilds the model: masks are computed in numpy, assigned
to the working copy's prunable variables, and evaluated with one traced function.
"""
from __future__ import annotations

import platform
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd

from .._keras import device_name, keras, tf
from ..model.baselines import home, load_baseline
from ..measure.calibration import recalibrate_batchnorm
from ..measure.training import mixed_precision_supported, train_masked
from ..model.datasets import Dataset, load_dataset
from ..errors import BadInput
from ..methods import PruneRequest, get_method
from ..measure.metrics import (
    accuracy_and_loss, count_flops, file_sizes, layer_macs, make_forward, measure_latency,
    measure_latency_pair, predict, save_model,
)
from ..core.prunable import PrunableWeight, find_prunable, iter_layers, layer_table
from ..specs import BaselineReport, DataRef, ModelRef, ProgressFn, PruneReport, PruneSpec

if TYPE_CHECKING:
    from .sensitivity import SensitivityReport, SensitivitySpec
    from .sweep import SweepReport, SweepSpec

TRAIN_EVAL_LIMIT = 2000  # train accuracy on at most this many training samples
HIST_BINS = 40
MASK_IMAGE_CELLS = 48


def environment() -> dict[str, str]:
    import tensorflow_model_optimization as tfmot

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "tfmot": tfmot.__version__,
        "numpy": np.__version__,
        "device": device_name(),
    }


class Workbench:
    """A loaded baseline and its dataset: one working model, base weights kept read-only."""

    def __init__(self, model_ref: ModelRef, data_ref: DataRef, seed: int = 0,
                 on_progress: Optional[ProgressFn] = None):
        self.model_ref, self.data_ref = model_ref, data_ref
        self.dataset: Dataset = load_dataset(data_ref)
        self.model, self.description, self.path = load_baseline(
            model_ref, data_ref, self.dataset, seed=seed, on_progress=on_progress
        )
        self.base_weights = [w.copy() for w in self.model.get_weights()]
        for w in self.base_weights:
            w.setflags(write=False)
        self.prunable: list[PrunableWeight] = find_prunable(self.model)
        if not self.prunable:
            raise BadInput(
                f"{model_ref.label} has no prunable weights (Dense, Conv1D/2D/3D or LSTM kernels): "
                "pick a model with such layers"
            )
        self._variables = self.model.weights
        self._dirty_all = False
        self.forward = make_forward(self.model)
        self.macs = layer_macs(self.model)
        self._noise: dict[float, np.ndarray] = {}
        self._train_x, self._train_y = self._train_subset(seed)
        self._baseline_metrics: dict[float, dict[str, float]] = {}  # by noise sigma
        self._base_model: Optional[keras.Model] = None
        self._base_forward = None
        self.env = environment()

    # -- weights ---------------------------------------------------------------------
    def _train_subset(self, seed: int):
        ds = self.dataset
        if not ds.has_train:
            return None, None
        if len(ds.x_train) <= TRAIN_EVAL_LIMIT:
            return ds.x_train, ds.y_train
        pick = np.random.default_rng(seed).choice(len(ds.x_train), TRAIN_EVAL_LIMIT, replace=False)
        return ds.x_train[pick], ds.y_train[pick]

    def reset(self) -> None:
        """Working model back to the base weights."""
        if self._dirty_all:
            self.model.set_weights(self.base_weights)
            self._dirty_all = False
        else:
            for pw in self.prunable:
                self._variables[pw.index].assign(self.base_weights[pw.index])

    def apply_masks(self, masks: dict[str, np.ndarray]) -> None:
        self.reset()
        for pw in self.prunable:
            if pw.key in masks:
                self._variables[pw.index].assign(self.base_weights[pw.index] * masks[pw.key])

    def current_weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self._variables]

    # -- measuring -------------------------------------------------------------------
    def _noisy_test(self, sigma: float) -> np.ndarray:
        if sigma not in self._noise:
            rng = np.random.default_rng(1234)
            x = self.dataset.x_test
            self._noise[sigma] = (x + rng.normal(0.0, sigma, x.shape)).astype(np.float32)
        return self._noise[sigma]

    def evaluate(self, spec: PruneSpec, forward=None) -> dict[str, float]:
        """Accuracy metrics of the working model as it is now (or of `forward`'s model)."""
        ds = self.dataset
        forward = forward or self.forward
        accuracy, loss = accuracy_and_loss(predict(forward, ds.x_test), ds.y_test)
        train_accuracy = float("nan")
        if self._train_x is not None:
            train_accuracy, _ = accuracy_and_loss(predict(forward, self._train_x), self._train_y)
        robust, _ = accuracy_and_loss(predict(forward, self._noisy_test(spec.noise_sigma)), ds.y_test)
        return {"accuracy": accuracy, "loss": loss, "train_accuracy": train_accuracy, "robust_accuracy": robust}

    def base_forward(self):
        """A traced forward of a second model instance that always holds the base weights,
        built once, so pruned and dense latency can be timed alternately in one run."""
        if self._base_forward is None:
            self._base_model = keras.models.model_from_json(self.model.to_json())
            self._base_model.set_weights(self.base_weights)
            self._base_forward = make_forward(self._base_model)
        return self._base_forward

    def measure(self, spec: PruneSpec, model_path: Path, model: Optional[keras.Model] = None,
                forward=None, macs=None, against_base: bool = False) -> dict[str, float]:
        """Size, parameter, FLOP and latency metrics of the working (or a given) model.

        With `against_base`, the dense baseline is timed alternately in the same run and
        returned as `base_latency_ms` / `base_latency_p90_ms`, so the speedup is a ratio
        measured under the same load.
        """
        model = model or self.model
        forward = forward or self.forward
        macs = macs or self.macs
        weights = model.get_weights()
        density = {}
        for pw in find_prunable(model):
            w = weights[pw.index]
            density[pw.key] = float(np.count_nonzero(w)) / w.size
        save_model(model, model_path)
        size, gz = file_sizes(model_path)
        batch = np.resize(self.dataset.x_test, (spec.latency_batch,) + self.dataset.input_shape)
        extra = {}
        if against_base:
            (median, p90), (base_median, base_p90) = measure_latency_pair(forward, self.base_forward(), batch)
            extra = {"base_latency_ms": base_median, "base_latency_p90_ms": base_p90}
        else:
            median, p90 = measure_latency(forward, batch)
        return extra | {
            "params": int(sum(w.size for w in weights)),
            "nonzero_params": int(sum(np.count_nonzero(w) for w in weights)),
            "flops": count_flops(macs),
            "effective_flops": count_flops(macs, density),
            "size_bytes": size,
            "gzip_bytes": gz,
            "latency_ms": median,
            "latency_p90_ms": p90,
        }

    def baseline_metrics(self, spec: PruneSpec) -> dict[str, float]:
        if spec.noise_sigma not in self._baseline_metrics:
            self.reset()
            path = home() / "artifacts" / f"baseline-{Path(self.path).stem}.keras"
            self._baseline_metrics[spec.noise_sigma] = {**self.evaluate(spec), **self.measure(spec, path)}
        return self._baseline_metrics[spec.noise_sigma]

    # -- fine-tuning -----------------------------------------------------------------
    def finetune(self, masks: dict[str, np.ndarray], epochs: int, seed: int,
                 on_progress: Optional[ProgressFn] = None, mixed: bool = False) -> None:
        """Train the working model for `epochs`, re-applying the masks after every step."""
        self._dirty_all = True
        by_index = {pw.index: masks[pw.key] for pw in self.prunable if pw.key in masks}
        train_masked(self.model, by_index, self.dataset, epochs, seed, on_progress, mixed=mixed)

    # -- reports ---------------------------------------------------------------------
    def baseline_report(self, seed: int = 0) -> BaselineReport:
        spec = PruneSpec(model=self.model_ref, data=self.data_ref, sparsity=0.0, seed=seed)
        return BaselineReport(
            model=self.model_ref, data=self.data_ref, description=self.description,
            metrics=dict(self.baseline_metrics(spec)), layers=layer_table(self.model),
            dataset=self.dataset.summary(), environment=dict(self.env), model_path=self.path,
        )

    def select(self, layers: Optional[tuple[str, ...]]) -> list[PrunableWeight]:
        if layers is None:
            return list(self.prunable)
        names = {pw.layer for pw in self.prunable}
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise BadInput(
                f"layer(s) {', '.join(unknown)} cannot be pruned: choose among {', '.join(sorted(names))}"
            )
        return [pw for pw in self.prunable if pw.layer in layers]

    def targets(self, spec: PruneSpec, selected: list[PrunableWeight]) -> dict[str, float]:
        """Target per selected tensor: `spec.sparsity`, overridden by `spec.layer_sparsity`
        entries (a layer name applies to all its tensors, a `layer/attr` key to one)."""
        targets = {pw.key: spec.sparsity for pw in selected}
        if spec.layer_sparsity is None:
            return targets
        by_layer = {pw.layer for pw in selected}
        unknown = [name for name, _ in spec.layer_sparsity if name not in by_layer and name not in targets]
        if unknown:
            raise BadInput(
                f"the per-layer plan names {', '.join(unknown)}, which are not selected prunable layers: "
                f"choose among {', '.join(sorted(by_layer))}"
            )
        plan = dict(spec.layer_sparsity)
        for pw in selected:
            # a `layer/attr` entry is more specific than its layer's entry
            targets[pw.key] = plan.get(pw.key, plan.get(pw.layer, spec.sparsity))
        return targets

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport:
        start = time.perf_counter()
        method = get_method(spec.method)
        if spec.scope not in method.scopes:
            raise BadInput(f"{method.name} supports scope {', '.join(method.scopes)}, not {spec.scope}")
        baseline = self.baseline_metrics(spec)
        selected = self.select(spec.layers)
        request = PruneRequest(
            weights={pw.key: self.base_weights[pw.index] for pw in selected},
            sparsity=self.targets(spec, selected),
            scope=spec.scope, seed=spec.seed, model=self.model, data=self.dataset,
            finetune_epochs=spec.finetune_epochs, on_progress=on_progress,
        )
        t0 = time.perf_counter()
        result = method.prune(request)
        if result.model is not None:
            return self._model_report(spec, method, request, result, baseline, start,
                                      time.perf_counter() - t0, on_progress)
        if result.masks is None:
            raise RuntimeError(f"{method.name} returned neither masks nor a model")
        self.apply_masks(result.masks)
        prune_s = time.perf_counter() - t0
        finetune_s = 0.0
        mixed = use_mixed_precision(spec)
        # methods that need training ran the fine-tune epochs themselves
        if spec.finetune_epochs and "training" not in method.needs:
            t0 = time.perf_counter()
            self.finetune(result.masks, spec.finetune_epochs, spec.seed, on_progress, mixed=mixed)
            finetune_s = time.perf_counter() - t0
        recalibrated = 0
        if spec.recalibrate_bn:
            # zeroed weights shift every BatchNorm's input statistics as surgery does;
            # only the moving averages change, and reset() restores them afterwards
            recalibrated = recalibrate_batchnorm(self.model, self.dataset, spec.seed)
            self._dirty_all = self._dirty_all or bool(recalibrated)
        t0 = time.perf_counter()
        pruned = self.evaluate(spec)
        evaluate_s = time.perf_counter() - t0
        model_path = home() / "artifacts" / f"{spec.key()}.keras"
        pruned.update(self.measure(spec, model_path, against_base=True))
        # the dense latency timed in this same run replaces the one from baseline time
        baseline = dict(baseline, latency_ms=pruned.pop("base_latency_ms"),
                        latency_p90_ms=pruned.pop("base_latency_p90_ms"))
        weights = self.current_weights()
        report = PruneReport(
            spec=spec, method=method.name, granularity=method.granularity,
            target_sparsity=spec.sparsity, sparsity=_measured_sparsity(weights, selected),
            baseline=baseline, pruned=pruned,
            layers=self._layer_rows(weights, {pw.layer: request.sparsity[pw.key] for pw in selected}),
            histograms=self._histograms(weights), mask_images=self._mask_images(weights),
            timing_s={"prune": prune_s, "finetune": finetune_s, "evaluate": evaluate_s,
                      "total": time.perf_counter() - start},
            model_path=str(model_path), environment=dict(self.env),
            notes=_notes(method.granularity) + result.notes + _precision_notes(spec, method)
            + _recalibration_notes(spec, recalibrated),
        )
        self.reset()
        return report

    def _model_report(self, spec: PruneSpec, method, request: PruneRequest, result, baseline: dict,
                      start: float, prune_s: float, on_progress: Optional[ProgressFn]) -> PruneReport:
        """Report on a method's new model (physically smaller, or retrained by gradual): it
        is fine-tuned, evaluated and timed with its own traced forward; the working model
        is never touched, so the workbench stays reusable."""
        new = result.model
        finetune_s = 0.0
        if spec.finetune_epochs and "training" not in method.needs:
            t0 = time.perf_counter()
            # keep the zeros a mask method left; a shrunk model has none to keep
            keep = {} if method.granularity == "structured" else {
                pw.index: new.weights[pw.index].numpy() != 0 for pw in find_prunable(new)}
            train_masked(new, keep, self.dataset, spec.finetune_epochs, spec.seed, on_progress,
                         mixed=use_mixed_precision(spec))
            finetune_s = time.perf_counter() - t0
        recalibrated = 0
        if method.granularity == "structured" or spec.recalibrate_bn:
            # removed channels shift every later layer's input statistics; re-estimating
            # BatchNorm's moving statistics on training data (adaptive BN, Li et al. 2020)
            # recovers most of the one-shot loss without any gradient step
            recalibrated = recalibrate_batchnorm(new, self.dataset, spec.seed)
        t0 = time.perf_counter()
        forward = make_forward(new)
        pruned = self.evaluate(spec, forward=forward)
        evaluate_s = time.perf_counter() - t0
        model_path = home() / "artifacts" / f"{spec.key()}.keras"
        pruned.update(self.measure(spec, model_path, model=new, forward=forward, macs=layer_macs(new),
                                   against_base=True))
        baseline = dict(baseline, latency_ms=pruned.pop("base_latency_ms"),
                        latency_p90_ms=pruned.pop("base_latency_p90_ms"))
        selected = [pw for pw in self.prunable if pw.key in request.weights]
        weights = self._in_base_shapes(new, result.masks)
        targets: dict[str, float] = {}
        for key, value in request.sparsity.items():
            layer = key.split("/")[0]
            targets[layer] = max(value, targets.get(layer, 0.0))
        notes = _notes(method.granularity) + result.notes + _precision_notes(spec, method)
        if method.granularity == "structured":
            notes += (_speedup_note(baseline, pruned, spec, self.env["device"]),)
        if recalibrated:
            notes += (f"BatchNorm statistics re-estimated on {recalibrated:,} training samples after "
                      "surgery (no weights trained).",)
        report = PruneReport(
            spec=spec, method=method.name, granularity=method.granularity,
            target_sparsity=spec.sparsity, sparsity=_measured_sparsity(weights, selected),
            baseline=baseline, pruned=pruned, layers=self._model_rows(new, weights, targets),
            histograms=self._histograms(weights), mask_images=self._mask_images(weights),
            timing_s={"prune": prune_s, "finetune": finetune_s, "evaluate": evaluate_s,
                      "total": time.perf_counter() - start},
            model_path=str(model_path), environment=dict(self.env), notes=notes,
        )
        self.reset()
        return report

    def _in_base_shapes(self, new: keras.Model, masks: Optional[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """The base weight list with each prunable tensor replaced by its value in `new`,
        scattered back into the original shape (removed filters/units read as zeros).

        Surgery slices with sorted indices, so a kept weight's row-major order is unchanged:
        the new tensor fills the mask's True positions in order.
        """
        found = {pw.key: new.weights[pw.index].numpy() for pw in find_prunable(new)}
        weights = list(self.base_weights)
        for pw in self.prunable:
            value = found.get(pw.key)
            if value is None:
                raise RuntimeError(f"the pruned model lost layer {pw.layer}")
            if value.shape != pw.shape:
                if masks is None or pw.key not in masks:
                    raise RuntimeError(f"{pw.key} changed shape but the method gave no mask to place it")
                expanded = np.zeros(pw.shape, dtype=value.dtype)
                expanded[masks[pw.key]] = value.reshape(-1)
                value = expanded
            weights[pw.index] = value
        return weights

    def _model_rows(self, new: keras.Model, weights: list[np.ndarray], targets: dict[str, float]) -> pd.DataFrame:
        """Per layer of the original model: the new layer's params and shape beside the old."""
        grouped = self._by_layer()
        index = {id(v): i for i, v in enumerate(self._variables)}
        new_layers = {layer.name: layer for layer in iter_layers(new)}
        rows = []
        for layer in iter_layers(self.model):
            idx = [index[id(v)] for v in layer.weights]
            if not idx:
                continue
            parts = grouped.get(layer.name, [])
            # the kernel (or first weight) stands for the layer's shape, before and after
            position = [id(v) for v in layer.weights].index(id(self._variables[parts[0].index])) if parts else 0
            after = [w.numpy() for w in new_layers[layer.name].weights]
            prunable_n = sum(pw.size for pw in parts)
            zeros = sum(pw.size - int(np.count_nonzero(weights[pw.index])) for pw in parts)
            rows.append({
                "name": layer.name,
                "type": type(layer).__name__,
                "params": int(sum(w.size for w in after)),
                "nonzero_params": int(sum(np.count_nonzero(w) for w in after)),
                "prunable_params": prunable_n,
                "sparsity": zeros / prunable_n if prunable_n else None,
                "target_sparsity": targets.get(layer.name),
                "shape_before": str(tuple(self.base_weights[idx[position]].shape)),
                "shape_after": str(tuple(after[position].shape)),
            })
        return pd.DataFrame(rows)

    def _by_layer(self) -> "OrderedDict[str, list[PrunableWeight]]":
        grouped: OrderedDict[str, list[PrunableWeight]] = OrderedDict()
        for pw in self.prunable:
            grouped.setdefault(pw.layer, []).append(pw)
        return grouped

    def _layer_rows(self, weights: list[np.ndarray], targets: dict[str, float]) -> pd.DataFrame:
        """One row per layer with weights; `targets` holds the requested sparsity of pruned layers."""
        grouped = self._by_layer()
        index = {id(v): i for i, v in enumerate(self._variables)}
        rows = []
        for layer in iter_layers(self.model):
            idx = [index[id(v)] for v in layer.weights]
            if not idx:
                continue
            parts = grouped.get(layer.name, [])
            kernel = self.base_weights[parts[0].index] if parts else self.base_weights[idx[0]]
            prunable_n = sum(pw.size for pw in parts)
            zeros = sum(pw.size - int(np.count_nonzero(weights[pw.index])) for pw in parts)
            shape = str(tuple(kernel.shape))
            rows.append({
                "name": layer.name,
                "type": type(layer).__name__,
                "params": int(sum(weights[i].size for i in idx)),
                "nonzero_params": int(sum(np.count_nonzero(weights[i]) for i in idx)),
                "prunable_params": prunable_n,
                "sparsity": zeros / prunable_n if prunable_n else None,
                "target_sparsity": targets.get(layer.name),
                "shape_before": shape,
                "shape_after": shape,
            })
        return pd.DataFrame(rows)

    def _histograms(self, weights: list[np.ndarray]) -> dict[str, dict]:
        out = {}
        for layer, parts in self._by_layer().items():
            before = np.concatenate([self.base_weights[pw.index].reshape(-1) for pw in parts])
            after = np.concatenate([weights[pw.index].reshape(-1) for pw in parts])
            edges = np.linspace(before.min(), before.max(), HIST_BINS + 1)
            out[layer] = {
                "edges": edges.tolist(),
                "before": np.histogram(before[before != 0], edges)[0].tolist(),
                "after": np.histogram(after[after != 0], edges)[0].tolist(),
                "zeros_before": int((before == 0).sum()),
                "zeros_after": int((after == 0).sum()),
            }
        return out

    def _mask_images(self, weights: list[np.ndarray]) -> dict[str, list[list[float]]]:
        out = {}
        for layer, parts in self._by_layer().items():
            kept = np.concatenate(
                [(weights[pw.index] != 0).reshape(-1, pw.shape[-1]) for pw in parts], axis=0
            ).astype(np.float32)
            # whole percents: small ints are shared objects in Python, so a cached report
            # costs pointers, not a float object per cell
            out[layer] = np.rint(_downsample(kept, MASK_IMAGE_CELLS) * 100).astype(int).tolist()
        return out


def use_mixed_precision(spec: PruneSpec) -> bool:
    """Mixed float16 fine-tuning only when asked for and a GPU can run it fast."""
    return spec.mixed_precision and spec.finetune_epochs > 0 and mixed_precision_supported()


def _recalibration_notes(spec: PruneSpec, recalibrated: int) -> tuple[str, ...]:
    if not spec.recalibrate_bn:
        return ()
    if recalibrated:
        return (f"BatchNorm statistics re-estimated on {recalibrated:,} training samples after pruning "
                "(no weights trained).",)
    return ("No BatchNorm statistics to re-estimate (no BatchNorm layer, or no training data).",)


def _precision_notes(spec: PruneSpec, method) -> tuple[str, ...]:
    if not spec.mixed_precision or not spec.finetune_epochs or "training" in method.needs:
        return ()
    if use_mixed_precision(spec):
        return ("Fine-tuned in mixed precision (float16 compute, float32 weights, loss scaling).",)
    return ("Mixed precision needs a GPU with compute capability 7.0 or newer, and none is visible: "
            "fine-tuned in float32.",)


def _downsample(image: np.ndarray, cells: int) -> np.ndarray:
    """Mean over blocks so that neither side exceeds `cells`."""
    rows = np.array_split(np.arange(image.shape[0]), min(cells, image.shape[0]))
    cols = np.array_split(np.arange(image.shape[1]), min(cells, image.shape[1]))
    return np.array([[image[np.ix_(r, c)].mean() for c in cols] for r in rows])


def _measured_sparsity(weights: list[np.ndarray], selected: list[PrunableWeight]) -> float:
    total = sum(pw.size for pw in selected)
    zeros = sum(pw.size - int(np.count_nonzero(weights[pw.index])) for pw in selected)
    return zeros / total


def _speedup_note(baseline: dict[str, float], pruned: dict[str, float], spec: PruneSpec, device: str) -> str:
    flops = baseline["flops"] / pruned["flops"] if pruned["flops"] else float("nan")
    speedup = baseline["latency_ms"] / pruned["latency_ms"] if pruned["latency_ms"] else float("nan")
    note = (
        f"The pruned model is a plain, smaller Keras model ({baseline['params']:,} -> {pruned['params']:,} "
        f"parameters, {flops:.2f}x fewer FLOPs). Measured latency speedup against the dense model: "
        f"{speedup:.2f}x ({baseline['latency_ms']:.3f} -> {pruned['latency_ms']:.3f} ms per batch of "
        f"{spec.latency_batch} on {device}, both timed alternately in this run)."
    )
    if speedup < 0.8 * flops:
        # the usual case for small models on CPU: say why the FLOP saving did not all arrive
        note += (" It trails the FLOP ratio because at this size fixed per-layer costs (op dispatch, "
                 "memory traffic, pooling/activation layers) weigh as much as the multiply-adds, and they "
                 "do not shrink with the channel count.")
    return note


def _notes(granularity: str) -> tuple[str, ...]:
    if granularity == "structured":
        return ()
    return (
        "Masks set weights to zero but keep every kernel dense, so TensorFlow still multiplies "
        "by the zeros: expect a speedup of about 1.0x. The gain is in the compressed file size; "
        "structured methods remove whole filters/units and make the model really smaller and faster.",
    )


class Engine:
    """Workbenches by (model, dataset, seed), least recently used dropped first."""

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self._benches: OrderedDict[tuple, Workbench] = OrderedDict()

    def workbench(self, model: ModelRef, data: DataRef, seed: int = 0,
                  on_progress: Optional[ProgressFn] = None) -> Workbench:
        key = (model, data, seed)
        if key in self._benches:
            self._benches.move_to_end(key)
            return self._benches[key]
        bench = Workbench(model, data, seed=seed, on_progress=on_progress)
        self._benches[key] = bench
        while len(self._benches) > self.capacity:
            self._benches.popitem(last=False)
        return bench

    def baseline(self, model: ModelRef, data: DataRef, seed: int = 0,
                 on_progress: Optional[ProgressFn] = None) -> BaselineReport:
        return self.workbench(model, data, seed, on_progress).baseline_report(seed)

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport:
        get_method(spec.method)  # an unknown name fails before any model is trained
        # baselines are seeded by 0 so that every prune seed compares against one model
        return self.workbench(spec.model, spec.data, 0, on_progress).prune(spec, on_progress)

    def sweep(self, spec: "SweepSpec", on_point=None, on_progress: Optional[ProgressFn] = None,
              resume=()) -> "SweepReport":
        """Every (method, rate) of `spec` on one workbench; see `sweep.run_sweep`."""
        from .sweep import check_methods, run_sweep

        check_methods(spec)  # a bad method name fails before a baseline is trained
        bench = self.workbench(spec.model, spec.data, 0, on_progress)
        return run_sweep(bench, spec, on_point=on_point, on_progress=on_progress, resume=resume)

    def sensitivity(self, spec: "SensitivitySpec", on_progress: Optional[ProgressFn] = None) -> "SensitivityReport":
        """Each prunable layer pruned alone at each rate; see `sensitivity.run_sensitivity`."""
        from .sensitivity import check_method, run_sensitivity

        check_method(spec.method)
        bench = self.workbench(spec.model, spec.data, 0, on_progress)
        return run_sensitivity(bench, spec, on_progress=on_progress)
