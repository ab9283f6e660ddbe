"""Task heads (DESIGN §5): which task a model's output layer and labels make, and its metrics.

The table TASKS gives each task its headline metric, direction, scoring and training loss;
`detect_head` reads the output layer and the labels and refuses what is none of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..errors import BadInput

EPS = 1e-12  # probabilities are clipped here before a log
BOOTSTRAP_DRAWS = 1000
BOOTSTRAP_SEED = 0


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, np.float64)))  # overflow-free logistic


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half); NaN with one class only.

    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    labels = np.asarray(labels).reshape(-1).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    sorted_scores = np.asarray(scores)[order]
    # tied scores share the mean of their ranks
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts):
        if count > 1:
            ranks[order[start:start + count]] = start + (count + 1) / 2.0
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def binary_cross_entropy(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, EPS, 1.0 - EPS)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def _multiclass(outputs: np.ndarray, labels: np.ndarray, head: "Head") -> dict[str, float]:
    from .metrics import (
        accuracy_and_loss,  # TensorFlow's module: loaded only when a model is scored
    )

    accuracy, loss = accuracy_and_loss(outputs, labels)
    return {"accuracy": accuracy, "loss": loss}


def _binary(outputs: np.ndarray, labels: np.ndarray, head: "Head") -> dict[str, float]:
    p = head.positive_probability(outputs)
    y = labels.astype(np.float64)
    return {"accuracy": float(((p > 0.5) == (y > 0.5)).mean()), "auc": roc_auc(y, p),
            "loss": binary_cross_entropy(p, y)}


def _multilabel(outputs: np.ndarray, labels: np.ndarray, head: "Head") -> dict[str, float]:
    p = sigmoid(outputs) if head.activation == "linear" else outputs.astype(np.float64)
    y = labels.astype(np.float64)
    # every label has the same samples, so the mean over cells is the mean per-label accuracy
    return {"accuracy": float(((p > 0.5) == (y > 0.5)).mean()), "loss": binary_cross_entropy(p, y)}


def _regression(outputs: np.ndarray, labels: np.ndarray, head: "Head") -> dict[str, float]:
    pred = outputs.astype(np.float64).reshape(len(outputs), -1)
    y = labels.astype(np.float64).reshape(len(labels), -1)
    residual = pred - y
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_output = np.where(total > 0, 1.0 - (residual ** 2).sum(axis=0) / total, np.nan)
    return {"mae": float(np.abs(residual).mean()), "r2": float(per_output.mean()),
            "loss": float((residual ** 2).mean())}


@dataclass(frozen=True)
class Task:
    """One row of the task table: its headline metric and how it is scored and trained."""

    name: str
    metric: str  # the headline metric's key, e.g. "accuracy", "mae"
    higher_is_better: bool
    extra: tuple[str, ...]  # other measured keys beside the headline and `loss`
    score: Callable[[np.ndarray, np.ndarray, "Head"], dict[str, float]]
    loss: str  # the training loss, by Keras name
    band: str  # the sweep's confidence band: "wilson" (a proportion) or "bootstrap"
    label: str  # the headline metric as pages show it
    unit: str  # "%" (shown as a percentage) or "" (the targets' units)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Every evaluated key of this task: the headline, extras, loss, train_ and robust_."""
        return (self.metric, *self.extra, "loss", f"train_{self.metric}", f"robust_{self.metric}")

    def show(self, metrics) -> str:
        """The headline metric of `metrics` for progress lines: "accuracy 91.20%", "MAE 0.213"."""
        value = metrics[self.metric]
        return f"{self.metric} {value:.2%}" if self.unit == "%" else f"{self.label} {value:.4g}"

    def format(self, value: float) -> str:
        """A value of the headline metric as shown beside its label: "91.20%", "0.213"."""
        return f"{value:.2%}" if self.unit == "%" else f"{value:.4g}"

    def change(self, baseline: float, pruned: float) -> float:
        """`metric_change`: how much worse the pruned model is, in the metric's units (negative: better)."""
        return baseline - pruned if self.higher_is_better else pruned - baseline


TASKS: dict[str, Task] = {
    "multiclass": Task("multiclass", "accuracy", True, (), _multiclass, "sparse_categorical_crossentropy",
                       "wilson", "accuracy", "%"),
    "binary": Task("binary", "accuracy", True, ("auc",), _binary, "binary_crossentropy", "wilson", "accuracy", "%"),
    "multilabel": Task("multilabel", "accuracy", True, (), _multilabel, "binary_crossentropy", "wilson",
                       "mean per-label accuracy", "%"),
    "regression": Task("regression", "mae", False, ("r2",), _regression, "mse", "bootstrap", "MAE", ""),
}


def get_task(name: Optional[str]) -> Task:
    """The task of that name; reports stored before tasks existed are multiclass."""
    return TASKS[name or "multiclass"]


@dataclass(frozen=True)
class Head:
    """A model's output layer as detected: its task, units and activation."""

    task: Task
    layer: str
    units: int
    activation: str  # softmax, sigmoid or linear

    def describe(self) -> str:
        return f"{self.task.name} ({self.units} {self.activation} unit{'s' if self.units != 1 else ''} in {self.layer})"

    def positive_probability(self, outputs: np.ndarray) -> np.ndarray:
        """Binary heads: the probability of label 1 (sigmoid unit, logit, or 2-way softmax)."""
        if self.units == 2:
            z = outputs.astype(np.float64)
            if self.activation == "softmax":
                return z[:, 1]
            return sigmoid(z[:, 1] - z[:, 0])  # two logits
        return sigmoid(outputs[:, 0]) if self.activation == "linear" else outputs[:, 0].astype(np.float64)

    def score(self, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """The task's metrics of `outputs` against `labels`, `loss` included."""
        return self.task.score(outputs, labels, self)

    def keras_loss(self, outputs: Optional[np.ndarray] = None) -> Any:
        """The training loss as a Keras object, from logits where the head outputs logits."""
        from .._keras import keras

        if self.task.name == "regression":
            return keras.losses.MeanSquaredError()
        if self.task.name == "multiclass" or (self.task.name == "binary" and self.units == 2):
            probabilities = self.activation == "softmax"
            if outputs is not None:  # a softmax applied by a layer detect_head does not see
                probabilities = bool((outputs >= 0).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))
            return keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)
        return keras.losses.BinaryCrossentropy(from_logits=self.activation == "linear")

    def training_labels(self, y: np.ndarray) -> np.ndarray:
        """Labels in the shape the training loss takes."""
        if self.task.name in ("multiclass",) or (self.task.name == "binary" and self.units == 2):
            return y.astype(np.int64)
        return y.astype(np.float32).reshape(len(y), -1)


def output_activation(model) -> tuple[str, int, str]:
    """(layer name, units, activation) of the model's single output layer."""
    layer = model.layers[-1]
    if getattr(model, "output_names", None) and len(model.output_names) == 1:
        try:
            layer = model.get_layer(model.output_names[0])
        except ValueError:
            pass
    while hasattr(layer, "layers") and layer.layers:  # a nested model as the last layer
        layer = layer.layers[-1]
    config = layer.get_config()
    kind = type(layer).__name__
    if kind == "Softmax":
        activation = "softmax"
    else:
        activation = config.get("activation", "linear")
        if isinstance(activation, dict):  # a serialized activation object
            activation = activation.get("config", {}).get("name") or activation.get("class_name", "?")
    units = model.output_shape[-1]
    return layer.name, int(units) if units is not None else 0, str(activation).lower()


def _kind(y: np.ndarray) -> str:
    """classes (integers >= 0, one column), matrix (several 0/1 columns) or values."""
    flat = y.reshape(len(y), -1)
    binary_cells = bool(np.isin(flat, (0, 1)).all())
    if flat.shape[1] > 1:
        return "matrix" if binary_cells else "values"
    integral = bool(np.all(np.equal(np.mod(flat, 1), 0)) and (flat >= 0).all())
    return "classes" if integral else "values"


def _labels(dataset) -> list[np.ndarray]:
    return [y for y in (dataset.y_test, dataset.y_train) if y is not None]


def detect_head(model, dataset) -> Head:
    """The task of `model` on `dataset`, or a one-line BadInput naming what was found."""
    layer, units, activation = output_activation(model)
    ys = _labels(dataset)
    kinds = {_kind(y) for y in ys}
    kind = "values" if "values" in kinds else ("matrix" if "matrix" in kinds else "classes")
    width = max(int(np.prod(y.shape[1:])) for y in ys) if ys else 1
    top = max(int(y.max()) for y in ys) if kind == "classes" else -1
    found = f"the output layer {layer} has {units} {activation} unit{'s' if units != 1 else ''}"
    zero_one = kind == "classes" and top <= 1

    def refuse(why: str) -> BadInput:
        return BadInput(f"{found} and {why}: PruneScope measures softmax or logit classifiers, one sigmoid "
                        "unit (binary), k sigmoid units (multi-label) and linear regression heads")

    if activation == "softmax":
        if units < 2:
            raise refuse("a softmax over one unit always outputs 1")
        if kind == "values":
            raise refuse("the labels are not integer class labels (float targets)")
        if kind == "matrix":
            if width != units or not all((y.reshape(len(y), -1).sum(axis=1) == 1).all() for y in ys):
                raise refuse(f"the labels are a 0/1 matrix of {width} columns, not one-hot rows of {units}")
        elif top >= units:
            # labels index the model's outputs: a label >= units has no output to score it
            raise BadInput(f"the dataset's labels go up to {top} but the model has {units} outputs "
                           f"(classes 0-{units - 1}): pick a matching dataset or model")
        return Head(TASKS["binary" if units == 2 else "multiclass"], layer, units, activation)
    if activation == "sigmoid":
        if units == 1:
            if not zero_one:
                raise refuse("the labels are not all 0 or 1")
            return Head(TASKS["binary"], layer, units, activation)
        if kind != "matrix" or width != units:
            shown = f"a 0/1 matrix of {width} columns" if kind == "matrix" else (
                "integer class labels" if kind == "classes" else "float targets")
            raise refuse(f"the labels are {shown}, not a 0/1 matrix of {units} columns (multi-label)")
        return Head(TASKS["multilabel"], layer, units, activation)
    if activation == "linear":
        if units == 1:
            # one logit with 0/1 labels is a binary classifier; any other numbers are targets
            task = "binary" if zero_one else "regression"
            if kind == "matrix" or (width != 1):
                raise refuse(f"the targets have {width} columns")
            return Head(TASKS[task], layer, units, activation)
        if kind == "classes" and width == 1:
            if top >= units:
                raise BadInput(f"the dataset's labels go up to {top} but the model has {units} outputs "
                               f"(classes 0-{units - 1}): pick a matching dataset or model")
            return Head(TASKS["multiclass"], layer, units, activation)  # logits
        if width != units:
            raise refuse(f"the targets have {width} columns")
        if kind == "matrix":
            return Head(TASKS["multilabel"], layer, units, activation)  # logits
        return Head(TASKS["regression"], layer, units, activation)
    raise refuse(f"a {activation} output is none of softmax, sigmoid or linear")


def prepare_labels(head: Head, dataset):
    """`dataset` with its labels in the head's form: class indices, 0/1 or float matrices."""
    import dataclasses

    def convert(y: Optional[np.ndarray]) -> Optional[np.ndarray]:
        if y is None:
            return None
        if head.task.name in ("multiclass", "binary"):
            flat = y.reshape(len(y), -1)
            return (flat.argmax(axis=1) if flat.shape[1] > 1 else flat[:, 0]).astype(np.int64)
        return y.astype(np.float32).reshape(len(y), -1)

    return dataclasses.replace(dataset, y_test=convert(dataset.y_test), y_train=convert(dataset.y_train),
                               task=head.task.name)


def bootstrap_interval(outputs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The 95 % band of the MAE: a seeded bootstrap (proportions get Wilson's, tables.wilson_interval).

    The test samples' mean absolute errors are resampled BOOTSTRAP_DRAWS times (generator
    seeded with BOOTSTRAP_SEED); the band is the 2.5 and 97.5 percentiles of their mean.
    """
    errors = np.abs(outputs.astype(np.float64).reshape(len(outputs), -1)
                    - labels.astype(np.float64).reshape(len(labels), -1)).mean(axis=1)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    # 100 resamples at a time: a (draws x samples) index array for 10,000 samples would be 80 MB
    means = np.concatenate([errors[rng.integers(0, len(errors), (100, len(errors)))].mean(axis=1)
                            for _ in range(BOOTSTRAP_DRAWS // 100)])
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
