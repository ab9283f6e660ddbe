"""Gradual magnitude pruning while fine-tuning a copy of the model, on tfmot's schedules.

tfmot's PolynomialDecay (Zhu & Gupta) or ConstantSparsity decides at which steps masks are
updated and to what sparsity; the masks themselves (each tensor's smallest magnitudes, tfmot's
keep count) are set between steps of the same masked train step fine-tuning uses
(`measure.training.train_masked`), not by tfmot's wrapper layers: tracing the wrapped model's
step cost more than an epoch of training on small models (BENCHMARKS.md), the wrapper shares
variables with the model it wraps, and it cannot wrap layers inside nested models.
"""
from __future__ import annotations

import math
from typing import Callable

from ..errors import BadInput
from .base import Method, PruneRequest, PruneResult
from .data import loss_for, training_sample

DEFAULT_EPOCHS = 2  # when the spec asks for no fine-tuning epochs: pruning needs some training
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


def gradual(schedule: Schedule) -> Callable[[PruneRequest], PruneResult]:
    def prune(request: PruneRequest) -> PruneResult:
        import numpy as np

        from .._keras import keras, tf
        from ..core.masks import keep_count, top_k_mask
        from ..core.prunable import find_prunable
        from ..measure.training import FINETUNE_BATCH, train_masked

        x, _ = training_sample(request.data, "gradual", None, request.seed)
        epochs = request.finetune_epochs or DEFAULT_EPOCHS
        total = epochs * math.ceil(len(x) / FINETUNE_BATCH)
        end, frequency = schedule_steps(total)
        keras.utils.set_random_seed(request.seed)
        # a copy with its own variables: the caller's model (the working model) stays dense
        model = keras.models.clone_model(request.model)
        model.set_weights(request.model.get_weights())
        loss, _ = loss_for(request.model, x, request.data)
        chosen = [pw for pw in find_prunable(model) if pw.key in request.sparsity]
        variables = model.weights  # once: the property walks every layer
        # tfmot's schedule per target (its own rule for when to prune and how much); our own masks
        schedules = {target: schedule(target, end, frequency) for target in set(request.sparsity.values())}
        reached: list[tuple[int, float]] = []

        def update(step: int):
            if step % frequency or step > end:
                return None
            now = {target: sched(tf.constant(step, tf.int64)) for target, sched in schedules.items()}
            fresh = {}
            for pw in chosen:
                due, sparsity = now[request.sparsity[pw.key]]
                if bool(due):
                    w = variables[pw.index].numpy()
                    fresh[pw.index] = top_k_mask(np.abs(w), keep_count(w.size, float(sparsity)))
            if fresh:
                reached.append((step, 1 - sum(int(m.sum()) for m in fresh.values())
                                / sum(m.size for m in fresh.values())))
            return fresh

        train_masked(model, {pw.index: np.ones(pw.shape, bool) for pw in chosen}, request.data, epochs,
                     request.seed, request.on_progress, loss=loss, update_masks=update, label="gradual pruning")
        weights = {pw.key: variables[pw.index].numpy() for pw in chosen}
        path = ", ".join(f"{s:.0%}" for _, s in reached)
        notes = (f"{epochs} epochs of {total // epochs} steps: masks updated every {frequency} steps "
                 f"until step {end} (target reached there), then {total - end - 1} steps at the final mask. "
                 f"Sparsity of the pruned tensors at the {len(reached)} updates: {path}.",)
        return PruneResult(model=model, masks={key: w != 0 for key, w in weights.items()}, notes=notes)

    return prune


METHODS = (
    Method(
        name="gradual",
        description="Gradual magnitude pruning while fine-tuning (tfmot's PolynomialDecay schedule from 0 to "
                    "the target, Zhu & Gupta 2017); uses the fine-tune epochs (2 if none).",
        granularity="unstructured",
        needs=("weights", "data", "training"),
        prune=gradual(polynomial),
        scopes=("layer",),
    ),
    Method(
        name="gradual-constant",
        description="Magnitude pruning at the target from the first step, masks refreshed while "
                    "fine-tuning (tfmot's ConstantSparsity schedule); uses the fine-tune epochs (2 if none).",
        granularity="unstructured",
        needs=("weights", "data", "training"),
        prune=gradual(constant),
        scopes=("layer",),
    ),
)
