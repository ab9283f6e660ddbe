"""One loaded baseline and its dataset: a working model masked in place from read-only weights.

Pruning many sparsities never rebuilds the model: masks are computed in numpy, assigned to
the working copy's prunable variables, and evaluated with one traced function.
"""
from __future__ import annotations

import platform
from collections import OrderedDict
from typing import Mapping, Optional

import numpy as np

from .._keras import device_name, keras, tf
from ..core.prunable import PrunableWeight, find_prunable, layer_table
from ..errors import BadInput
from ..measure.metrics import (
    Latency,
    count_flops,
    layer_macs,
    make_forward,
    measure_latency,
    measure_latency_pair,
    memory_sizes,
    model_config_bytes,
    predict,
)
from ..measure.memory import graph_activation_bytes, memory_metrics
from ..measure.tasks import Head, bootstrap_interval, detect_head, prepare_labels
from ..measure.training import train_masked
from ..methods import PruneRequest
from ..model.baselines import load_baseline
from ..model.datasets import Dataset, load_dataset
from ..reports import BaselineReport, efficiency
from ..specs import DataRef, ModelRef, ProgressFn, PruneSpec

TRAIN_EVAL_LIMIT = 2000  # the train metric on at most this many training samples

# What the working model holds: the base weights, masked prunable weights (only those
# differ from base), or anything (after training or BatchNorm re-estimation).
BASE, MASKED, DIRTY = "base", "masked", "dirty"


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
        dataset = load_dataset(data_ref)
        self.model, self.description, self.path = load_baseline(
            model_ref, data_ref, dataset, seed=seed, on_progress=on_progress
        )
        self.head: Head = detect_head(self.model, dataset)
        self.task = self.head.task
        self.dataset: Dataset = prepare_labels(self.head, dataset)
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
        self._state = BASE
        self.forward = make_forward(self.model)
        self.macs = layer_macs(self.model)
        self.activations = graph_activation_bytes(self.model)  # masks never change a tensor's shape
        self._noise: dict[float, np.ndarray] = {}
        self._train_x, self._train_y = self._train_subset(seed)
        self._baseline_metrics: dict[tuple[float, int], dict[str, float]] = {}  # by (noise sigma, batch)
        self._dense_latency: dict[int, Latency] = {}  # by latency batch: the structure timed once
        self._config = model_config_bytes(self.model)  # masks never change the architecture
        self.base_histograms: dict[str, dict] = {}  # layers.base_histogram: the "before" half, once
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
        """Working model back to the base weights (free when it already holds them)."""
        if self._state == DIRTY:
            self.model.set_weights(self.base_weights)
        elif self._state == MASKED:
            self.assign(self.prunable, {})
        self._state = BASE

    def assign(self, parts: list[PrunableWeight], masks: Mapping[str, np.ndarray]) -> None:
        """Each of `parts` set to its base weights times its mask (no mask: the base weights);
        the other variables are left as they are."""
        for pw in parts:
            mask = masks.get(pw.key)
            self._variables[pw.index].assign(self.base_weights[pw.index] if mask is None
                                             else self.base_weights[pw.index] * mask)
        if self._state == BASE:
            self._state = MASKED

    def apply_masks(self, masks: Mapping[str, np.ndarray]) -> None:
        """Base weights with `masks` applied; every other prunable tensor dense."""
        self.reset()
        self.assign([pw for pw in self.prunable if pw.key in masks], masks)

    def mark_dirty(self) -> None:
        """Something beyond the prunable kernels changed (training, BatchNorm statistics)."""
        self._state = DIRTY

    def current_weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self._variables]

    def by_layer(self) -> "OrderedDict[str, list[PrunableWeight]]":
        """Prunable tensors grouped by layer, in network order (an LSTM has two)."""
        grouped: OrderedDict[str, list[PrunableWeight]] = OrderedDict()
        for pw in self.prunable:
            grouped.setdefault(pw.layer, []).append(pw)
        return grouped

    # -- measuring -------------------------------------------------------------------
    def _noisy_test(self, sigma: float) -> np.ndarray:
        if sigma not in self._noise:
            rng = np.random.default_rng(1234)
            x = self.dataset.x_test
            self._noise[sigma] = (x + rng.normal(0.0, sigma, x.shape)).astype(np.float32)
        return self._noise[sigma]

    def test_metric(self, forward=None) -> float:
        """The headline metric on the test split alone: what a sensitivity point costs."""
        return self.head.score(predict(forward or self.forward, self.dataset.x_test), self.dataset.y_test)[self.task.metric]

    def evaluate(self, spec: PruneSpec, forward=None) -> dict[str, float]:
        """The task's metrics (DESIGN §5) of the working model as it is now (or of `forward`'s model).

        Classifiers give `accuracy`, `loss`, `train_accuracy`, `robust_accuracy` (binary also
        `auc`); regression `mae`, `r2`, `loss`, `train_mae`, `robust_mae` and the bootstrap
        band `mae_low` / `mae_high`, which needs the per-sample errors.
        """
        ds, metric = self.dataset, self.task.metric
        forward = forward or self.forward
        outputs = predict(forward, ds.x_test)
        metrics = self.head.score(outputs, ds.y_test)
        train = float("nan")
        if self._train_x is not None:
            train = self.head.score(predict(forward, self._train_x), self._train_y)[metric]
        robust = self.head.score(predict(forward, self._noisy_test(spec.noise_sigma)), ds.y_test)[metric]
        metrics.update({f"train_{metric}": train, f"robust_{metric}": robust})
        if self.task.band != "wilson":
            metrics[f"{metric}_low"], metrics[f"{metric}_high"] = bootstrap_interval(outputs, ds.y_test)
        return metrics

    def base_forward(self):
        """A traced forward of a second model instance that always holds the base weights,
        built once, so pruned and dense latency can be timed alternately in one run."""
        if self._base_forward is None:
            from ..model.op_forms import library_objects  # ConvNeXt's LayerScale & co. by class name

            self._base_model = keras.models.model_from_json(self.model.to_json(), custom_objects=library_objects())
            self._base_model.set_weights(self.base_weights)
            self._base_forward = make_forward(self._base_model)
        return self._base_forward

    def counts(self, weights: list[np.ndarray], model: Optional[keras.Model] = None,
               macs=None) -> dict[str, float]:
        """Parameter and FLOP counts and inference memory (`measure.memory`: weights as held +
        graph-measured peak activations of one sample, no conversion) of the working (or a
        given) model holding `weights` (its own shapes): cheap, so they come with the evaluation."""
        prunable = self.prunable if model is None else find_prunable(model)
        density = {pw.key: float(np.count_nonzero(weights[pw.index])) / weights[pw.index].size for pw in prunable}
        macs = macs or self.macs
        return {
            "params": int(sum(w.size for w in weights)),
            "nonzero_params": int(sum(np.count_nonzero(w) for w in weights)),
            "flops": count_flops(macs),
            "effective_flops": count_flops(macs, density),
            **memory_metrics(weights, self.activations if model is None else graph_activation_bytes(model)),
        }

    def sizes(self, weights: list[np.ndarray], model: Optional[keras.Model] = None) -> dict[str, float]:
        """`size_bytes` and `gzip_bytes` of the working (or a given) model, measured in memory
        (`metrics.memory_sizes`: COMPRESSION, no file written)."""
        size, gz = memory_sizes(weights, self._config if model is None else model_config_bytes(model))
        return {"size_bytes": size, "gzip_bytes": gz}

    def latency_input(self, spec: PruneSpec) -> np.ndarray:
        return np.resize(self.dataset.x_test, (spec.latency_batch,) + self.dataset.input_shape)

    def dense_latency(self, spec: PruneSpec) -> Latency:
        """The dense structure's latency at `spec.latency_batch`, timed once per workbench.

        Masked kernels stay dense, so every masked point has this structure: timing it again
        per point would measure only the noise.
        """
        batch = spec.latency_batch
        if batch not in self._dense_latency:
            forward = self.forward if self._state == BASE else self.base_forward()
            self._dense_latency[batch] = measure_latency(forward, self.latency_input(spec))
        return self._dense_latency[batch]

    def latency_against_dense(self, spec: PruneSpec, forward=None) -> tuple[Latency, Latency]:
        """(pruned, dense) latency, the dense baseline timed alternately in the same run, so
        that their ratio (the speedup) is measured under the same load."""
        return measure_latency_pair(forward or self.forward, self.base_forward(), self.latency_input(spec))

    def baseline_metrics(self, spec: PruneSpec) -> dict[str, float]:
        key = (spec.noise_sigma, spec.latency_batch)
        if key not in self._baseline_metrics:
            self.reset()
            weights = self.current_weights()
            metrics = {**self.evaluate(spec), **self.counts(weights)}
            self._baseline_metrics[key] = {**metrics, **efficiency(metrics, self.task.metric), **self.sizes(weights),
                                           **self.dense_latency(spec).metrics()}
        return self._baseline_metrics[key]

    # -- fine-tuning -----------------------------------------------------------------
    def finetune(self, masks: Mapping[str, np.ndarray], epochs: int, seed: int,
                 on_progress: Optional[ProgressFn] = None, mixed: bool = False) -> None:
        """Train the working model for `epochs`, re-applying the masks after every step."""
        self.mark_dirty()
        by_index = {pw.index: masks[pw.key] for pw in self.prunable if pw.key in masks}
        train_masked(self.model, by_index, self.dataset, epochs, seed, on_progress, mixed=mixed)

    # -- what a prune works on -------------------------------------------------------
    def baseline_report(self, seed: int = 0) -> BaselineReport:
        spec = PruneSpec(model=self.model_ref, data=self.data_ref, target_sparsity=0.0, seed=seed)
        return BaselineReport(
            model=self.model_ref, data=self.data_ref, description=self.description,
            metrics=dict(self.baseline_metrics(spec)), layers=layer_table(self.model), task=self.task.name,
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
        """Target per selected tensor: `spec.target_sparsity`, overridden by `spec.layer_sparsity`
        entries (a layer name applies to all its tensors, a `layer/attr` key to one)."""
        targets = {pw.key: spec.target_sparsity for pw in selected}
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
            targets[pw.key] = plan.get(pw.key, plan.get(pw.layer, spec.target_sparsity))
        return targets

    def request(self, spec: PruneSpec, selected: list[PrunableWeight],
                on_progress: Optional[ProgressFn] = None) -> PruneRequest:
        """What a method sees for `spec`: the selected base weights and their targets."""
        return PruneRequest(
            weights={pw.key: self.base_weights[pw.index] for pw in selected},
            sparsity=self.targets(spec, selected), scope=spec.scope, seed=spec.seed, model=self.model,
            data=self.dataset, finetune_epochs=spec.finetune_epochs, on_progress=on_progress,
        )
