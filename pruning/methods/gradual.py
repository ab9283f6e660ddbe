"""Gradual magnitude pruning while fine-tuning a copy of the model, through tfmot.

PolynomialDecay (Zhu & Gupta) or ConstantSparsity; `strip_pruning` leaves a plain model.
"""
from __future__ import annotations

import math
from typing import Callable

from ..errors import BadInput
from .base import Method, PruneRequest, PruneResult
from .data import loss_for, training_sample

DEFAULT_EPOCHS = 2  # when the spec asks for no fine-tuning epochs: pruning needs some training
BATCH = 64
LEARNING_RATE = 1e-3
PRUNE_FRACTION = 0.75  # sparsity reaches its target here; the rest trains at the final mask
UPDATES = 8  # mask updates over the schedule

Schedule = Callable[[float, int, int], object]  # (final sparsity, end step, frequency) -> tfmot schedule


def schedule_steps(total_steps: int) -> tuple[int, int]:
    """(end_step, frequency) for `total_steps` of training.

    tfmot updates masks at steps where `step % frequency == 0` and `step <= end_step`, so
    end_step is made a multiple of frequency: the final sparsity is always reached, with
    `1 - PRUNE_FRACTION` of training left to recover at the final mask.

    >>> schedule_steps(46)  # 2 epochs of 23 batches: updates every 4 steps up to step 32
    (32, 4)
    """
    if total_steps < 2:
        raise BadInput("gradual pruning needs at least 2 training steps: add epochs or training data")
    end = max(1, int(total_steps * PRUNE_FRACTION))
    frequency = max(1, end // UPDATES)
    return frequency * (end // frequency), frequency


def polynomial(sparsity: float, end: int, frequency: int):
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=end, frequency=frequency)


def constant(sparsity: float, end: int, frequency: int):
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, end_step=end, frequency=frequency)


def _progress_callback(request: PruneRequest, epochs: int):
    from .._keras import keras

    def report(epoch, logs):
        if request.on_progress:
            metric = "mae" if request.data.task == "regression" else "accuracy"
            value = (logs or {}).get(metric, float("nan"))
            request.on_progress((epoch + 1) / epochs,
                                f"gradual pruning epoch {epoch + 1}/{epochs}: train {metric} {value:.3f}")

    return keras.callbacks.LambdaCallback(on_epoch_end=report)


def _wrapped_copy(model, targets: dict[str, float], schedule: Schedule, end: int, frequency: int):
    """A copy of `model` with fresh variables (tfmot would otherwise share the caller's),
    the layers in `targets` wrapped for pruning, and the caller's weights copied in."""
    import tensorflow_model_optimization as tfmot

    from .._keras import keras

    def clone_layer(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if layer.name in targets:
            return tfmot.sparsity.keras.prune_low_magnitude(
                fresh, pruning_schedule=schedule(targets[layer.name], end, frequency))
        return fresh

    copy = keras.models.clone_model(model, clone_function=clone_layer)
    by_name = {getattr(layer, "layer", layer).name: layer for layer in copy.layers}
    for layer in model.layers:
        target = by_name[layer.name]
        (target.layer if hasattr(target, "pruning_obj") else target).set_weights(layer.get_weights())
    return copy


def _trace_once(model, x, y) -> None:
    """Make `model.fit` trace its train step once, and without AutoGraph.

    Tracing the wrapped train step (tfmot's mask-update graph in every wrapped layer) is
    most of a short gradual run (bench/gradual_epoch.py). Variables created inside the first
    trace (the optimizer's, the compiled loss's and metrics') make tf.function trace it
    twice; AutoGraph's conversion of tfmot's Python about doubles each trace, and neither
    tfmot nor tf_keras needs it (their control flow is tf.cond / smart_cond / while_loop).
    `fit` uses a train function set after compile (see Model.make_train_function).
    """
    from .._keras import tf

    model.optimizer.build(model.trainable_variables)
    outputs = model(x[:1], training=False)  # the output structure; masks are all ones yet
    model.compiled_loss.build(outputs)
    model.compiled_metrics.build(outputs, tf.constant(y[:1]))
    step = model.make_train_function()
    model.train_function = tf.function(step.python_function, autograph=False, reduce_retracing=True)


def gradual(schedule: Schedule) -> Callable[[PruneRequest], PruneResult]:
    def prune(request: PruneRequest) -> PruneResult:
        import tensorflow_model_optimization as tfmot

        from .._keras import keras

        x, y = training_sample(request.data, "gradual", None, request.seed)
        epochs = request.finetune_epochs or DEFAULT_EPOCHS
        total = epochs * math.ceil(len(x) / BATCH)
        end, frequency = schedule_steps(total)
        # one schedule per layer: tfmot prunes all of a layer's tensors (LSTM: both kernels) alike
        targets: dict[str, float] = {}
        for key, value in request.sparsity.items():
            targets[key.rsplit("/", 1)[0]] = max(value, targets.get(key.rsplit("/", 1)[0], 0.0))
        nested = [layer.name for layer in request.model.layers if isinstance(layer, keras.Model)]
        if nested:
            raise BadInput(f"gradual cannot wrap layers inside nested models ({', '.join(nested)}): "
                           "use a one-shot method, or flatten the model")
        keras.utils.set_random_seed(request.seed)
        model = _wrapped_copy(request.model, targets, schedule, end, frequency)
        loss, as_labels = loss_for(request.model, x, request.data)
        y = as_labels(y)
        metric = "mae" if request.data.task == "regression" else "accuracy"
        model.compile(keras.optimizers.Adam(LEARNING_RATE), loss, metrics=[metric])
        _trace_once(model, x, y)
        model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=True,
                  callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), _progress_callback(request, epochs)])
        stripped = tfmot.sparsity.keras.strip_pruning(model)
        weights = {f"{layer.name}/{attr}": getattr(getattr(layer, "cell", layer), attr).numpy()
                   for layer in stripped.layers for attr in ("kernel", "recurrent_kernel")
                   if f"{layer.name}/{attr}" in request.weights}
        notes = (f"{epochs} epochs of {total // epochs} steps: masks updated every {frequency} steps "
                 f"until step {end} (target reached there), then {total - end - 1} steps at the final mask.",)
        return PruneResult(model=stripped, masks={key: w != 0 for key, w in weights.items()}, notes=notes)

    return prune


METHODS = (
    Method(
        name="gradual",
        description="Gradual magnitude pruning while fine-tuning (tfmot, PolynomialDecay from 0 to the "
                    "target, Zhu & Gupta 2017); uses the fine-tune epochs (2 if none).",
        granularity="unstructured",
        needs=("weights", "data", "training"),
        prune=gradual(polynomial),
        scopes=("layer",),
    ),
    Method(
        name="gradual-constant",
        description="Magnitude pruning at the target from the first step, masks refreshed while "
                    "fine-tuning (tfmot ConstantSparsity); uses the fine-tune epochs (2 if none).",
        granularity="unstructured",
        needs=("weights", "data", "training"),
        prune=gradual(constant),
        scopes=("layer",),
    ),
)
