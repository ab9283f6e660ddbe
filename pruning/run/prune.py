"""The one prune sequence: prune -> fine-tune -> recalibrate -> evaluate -> measure.

The Prune page, sweeps and reports all run `prune_once`; `prune_report` adds the per-layer
views of the report, a sweep keeps only the measured row. No model file is written here:
`save_pruned` writes one when it is downloaded, exported or stored.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from ..core.prunable import PrunableWeight, find_prunable
from ..errors import BadInput
from ..measure.calibration import recalibrate_batchnorm
from ..measure.metrics import in_background, layer_macs, make_forward, save_model
from ..measure.training import mixed_precision_supported, train_masked
from ..methods import Method, PruneRequest, PruneResult, get_method
from ..reports import PruneReport, efficiency, evaluated_view
from ..specs import COMPRESSION, ProgressFn, PruneSpec
from .layers import (
    histograms,
    in_base_shapes,
    layer_rows,
    mask_images,
    measured_sparsity,
)

if TYPE_CHECKING:
    from .workbench import Workbench


@dataclass(frozen=True)
class Pruned:
    """One pass through the sequence: what a report or a sweep row is made of."""

    spec: PruneSpec
    method: Method
    request: PruneRequest
    result: PruneResult
    selected: list[PrunableWeight]
    baseline: dict[str, float]  # with the dense latency timed in this same run
    metrics: dict[str, float]  # the pruned model's, the keys of DESIGN §5
    weights: list[np.ndarray]  # the pruned weights in the base model's shapes
    sparsity: float  # measured among the selected tensors
    timing_s: dict[str, float]  # prune, finetune, evaluate, measure
    recalibrated: int  # training samples BatchNorm statistics were re-estimated on (0: none)
    notes: tuple[str, ...]
    views: Any = None  # what `views` returned on `weights` (`prune_once`), None without one


# The first phase's results, as soon as evaluation returns (see `reports.evaluated_view`).
EvaluatedFn = Callable[[dict[str, Any]], None]


def prune_once(bench: "Workbench", spec: PruneSpec, method: Optional[Method] = None,
               on_progress: Optional[ProgressFn] = None, on_evaluated: Optional[EvaluatedFn] = None,
               measure: bool = True, views: Optional[Callable[[list[np.ndarray]], Any]] = None) -> Pruned:
    """Prune `bench`'s model as `spec` says, then fine-tune, evaluate and measure the result.

    Two phases: "evaluate" (accuracy metrics, parameter and FLOP counts, measured sparsity),
    handed to `on_evaluated` at once so a page can show its cards, then "measure" (sizes and
    latency). Latency: a structured result is timed alternately with the dense model; a
    mask result keeps the dense structure, so it gets the dense timing of this workbench
    (timed once) unless `spec.retime_latency`. With `measure=False` the second phase is
    skipped (its metrics are absent): what `save_pruned` needs. `views(weights)` (the pruned
    weights in the base shapes), if given, comes back as `Pruned.views`.

    The sizes and `views` run in background threads during the evaluation: they start once the
    weights are final (after fine-tuning and BatchNorm recalibration), on numpy copies of the
    weights evaluated, and are joined before this returns (also when the evaluation fails).

    A masks result is applied to the working model in place (the caller resets it when it
    is done); a new model (structured, or retrained by gradual) is measured with its own
    traced forward and the working model is left untouched.
    """
    method = method or get_method(spec.method)
    if spec.scope not in method.scopes:
        raise BadInput(f"{method.name} supports scope {', '.join(method.scopes)}, not {spec.scope}")
    baseline = bench.baseline_metrics(spec)
    selected = bench.select(spec.layers)
    if not (method.masks_only and not method.reads_model):
        bench.reset()  # it reads the working model: it must see the dense one, not the last masks
    request = bench.request(spec, selected, on_progress)
    t0 = time.perf_counter()
    result = method.prune(request)
    if result.model is None and result.masks is None:
        raise RuntimeError(f"{method.name} returned neither masks nor a model")
    new = result.model
    if new is None:
        bench.apply_masks(result.masks)
    prune_s = time.perf_counter() - t0
    mixed = use_mixed_precision(spec)
    finetune_s = 0.0
    if spec.finetune_epochs and not method.trains:  # methods that train ran the epochs themselves
        t0 = time.perf_counter()
        if new is None:
            bench.finetune(result.masks, spec.finetune_epochs, spec.seed, on_progress, mixed=mixed)
        else:
            # keep the zeros a mask method left; a shrunk model has none to keep
            keep = {} if method.structured else {
                pw.index: new.weights[pw.index].numpy() != 0 for pw in find_prunable(new)}
            train_masked(new, keep, bench.dataset, spec.finetune_epochs, spec.seed, on_progress, mixed=mixed)
        finetune_s = time.perf_counter() - t0
    recalibrated = 0
    if method.structured or spec.recalibrate_bn:
        # removed channels or zeroed weights shift every later layer's input statistics;
        # re-estimating BatchNorm's moving statistics on training data (adaptive BN, Li et
        # al. 2020) recovers most of the one-shot loss without any gradient step
        recalibrated = recalibrate_batchnorm(new if new is not None else bench.model, bench.dataset, spec.seed)
        if new is None and recalibrated:
            bench.mark_dirty()
    t0 = time.perf_counter()
    forward = make_forward(new) if new is not None else None
    # copies (`.numpy()` copies), so no later assignment or reset can change what is measured
    own = new.get_weights() if new is not None else bench.current_weights()  # the model's own shapes
    weights = own if new is None else in_base_shapes(bench, new, result.masks)
    # the evaluation does not saturate the cores on a large model: compress and draw meanwhile
    pending_sizes = in_background(bench.sizes, own, new) if measure else None
    pending_views = in_background(views, weights) if views else None
    try:
        metrics = bench.evaluate(spec, forward=forward)
        metrics.update(bench.counts(own, model=new, macs=layer_macs(new) if new is not None else None))
        metrics.update(efficiency(metrics, bench.task.metric))
        sparsity = measured_sparsity(weights, selected)
        evaluate_s = time.perf_counter() - t0
        timing = {"prune": prune_s, "finetune": finetune_s, "evaluate": evaluate_s}
        if on_evaluated:
            on_evaluated(evaluated_view(method.name, method.granularity, spec.target_sparsity, sparsity,
                                        baseline, metrics, timing))
    except BaseException:
        for pending in (pending_sizes, pending_views):
            if pending is not None:
                pending.cancel() or pending.exception()  # no thread left reading when the caller resets
        raise
    notes = _mask_notes(method) + result.notes + _precision_notes(spec, method)
    t0 = time.perf_counter()  # measure: what is left of the sizes after the evaluation, and latency
    drawn = pending_views.result() if pending_views is not None else None
    if measure:
        metrics.update(pending_sizes.result())
        if method.structured or spec.retime_latency:
            mine, dense = bench.latency_against_dense(spec, forward)
        else:
            mine = dense = bench.dense_latency(spec)
            notes += (DENSE_LATENCY_NOTE,)
        metrics.update(mine.metrics())
        # the dense latency timed in this same run (or the cached dense timing) replaces the one
        # from baseline time
        baseline = dict(baseline, **dense.metrics())
        if method.structured:
            notes += (_speedup_note(baseline, metrics, spec, bench.env["device"]),)
        notes += (_compression_note(),)
    if method.structured:
        notes = _shortfall_notes(method, request, sparsity) + notes
    timing["measure"] = time.perf_counter() - t0
    notes += _recalibration_notes(spec, method, recalibrated)
    if bench.description and "imported from Keras" in bench.description:
        notes += (bench.description,)  # the Keras 3 bridge's equivalence check, with its measured error
    return Pruned(
        spec=spec, method=method, request=request, result=result, selected=selected, baseline=baseline,
        metrics=metrics, weights=weights, sparsity=sparsity, timing_s=timing,
        recalibrated=recalibrated, notes=notes, views=drawn,
    )


def prune_report(bench: "Workbench", spec: PruneSpec, on_progress: Optional[ProgressFn] = None,
                 on_evaluated: Optional[EvaluatedFn] = None) -> tuple[PruneReport, Pruned]:
    """`prune_once` with the per-layer table, histograms and mask images: the Prune page's report
    (its `model_path` empty: no file is written), and the pass itself (`save_pruned` writes it)."""
    start = time.perf_counter()
    try:
        done = prune_once(bench, spec, on_progress=on_progress, on_evaluated=on_evaluated,
                          views=lambda weights: (histograms(bench, weights), mask_images(bench, weights)))
        targets: dict[str, float] = {}
        for key, value in done.request.sparsity.items():
            layer = key.rsplit("/", 1)[0]
            targets[layer] = max(value, targets.get(layer, 0.0))
        report = PruneReport(
            spec=spec, method=done.method.name, granularity=done.method.granularity,
            target_sparsity=spec.target_sparsity, sparsity=done.sparsity, baseline=done.baseline, pruned=done.metrics,
            layers=layer_rows(bench, done.weights, targets, new=done.result.model),
            histograms=done.views[0], mask_images=done.views[1],
            timing_s={**done.timing_s, "total": time.perf_counter() - start},
            model_path="", environment=dict(bench.env), notes=done.notes, task=bench.task.name,
        )
        return report, done
    finally:
        bench.reset()


def save_pruned(bench: "Workbench", done: Pruned, path: str | Path) -> Path:
    """Write the model of `done` (a pass on `bench`) as `.keras` to `path`, atomically.

    A new model is saved as it is; a masks result is put back into the working model for
    the save (its weights, BatchNorm statistics included) and the working model reset after.
    """
    if done.result.model is not None:
        return save_model(done.result.model, path)
    try:
        bench.model.set_weights(done.weights)
        bench.mark_dirty()
        return save_model(bench.model, path)
    finally:
        bench.reset()


def use_mixed_precision(spec: PruneSpec) -> bool:
    """Mixed float16 fine-tuning only when asked for and a GPU can run it fast."""
    return spec.mixed_precision and spec.finetune_epochs > 0 and mixed_precision_supported()


def _shortfall_notes(method: Method, request: PruneRequest, sparsity: float) -> tuple[str, ...]:
    """A structured prune far short of its target says so first: channels that cannot go stay."""
    target = float(np.mean(list(request.sparsity.values()))) if request.sparsity else 0.0
    if target <= 0 or sparsity >= 0.5 * target:
        return ()
    return (f"{method.name} reached {sparsity:.1%} of the requested {target:.0%}: most selected layers' "
            "channels cannot be removed (see the notes below on which layers keep them and why); "
            "a mask method reaches the target on every layer.",)


def _recalibration_notes(spec: PruneSpec, method: Method, recalibrated: int) -> tuple[str, ...]:
    if method.structured:
        if not recalibrated:
            return ()
        return (f"BatchNorm statistics re-estimated on {recalibrated:,} training samples after "
                "surgery (no weights trained).",)
    if not spec.recalibrate_bn:
        return ()
    if recalibrated:
        return (f"BatchNorm statistics re-estimated on {recalibrated:,} training samples after pruning "
                "(no weights trained).",)
    return ("No BatchNorm statistics to re-estimate (no BatchNorm layer, or no training data).",)


def _precision_notes(spec: PruneSpec, method: Method) -> tuple[str, ...]:
    if not spec.mixed_precision or not spec.finetune_epochs or method.trains:
        return ()
    if use_mixed_precision(spec):
        return ("Fine-tuned in mixed precision (float16 compute, float32 weights, loss scaling).",)
    return ("Mixed precision needs a GPU with compute capability 7.0 or newer, and none is visible: "
            "fine-tuned in float32.",)


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


DENSE_LATENCY_NOTE = (
    # no figures in the text: they are the latency metrics beside it, and notes stay comparable
    "Latency: masked kernels stay dense, so this point's latency is the dense model's, timed once for this "
    "model (latency_ms is the median of its timed calls, latency_p10_ms to latency_p90_ms their spread): it "
    "equals dense within that noise. Set retime_latency to time this point itself.")


def _compression_note() -> str:
    return (f"Sizes are measured in memory: gzip_bytes is {COMPRESSION} (each tensor on its own), size_bytes "
            "the weights as stored plus the config; an export reports gzip -9 of the written file.")


def _mask_notes(method: Method) -> tuple[str, ...]:
    if method.structured:
        return ()
    return (
        "Masks set weights to zero but keep every kernel dense, so TensorFlow still multiplies "
        "by the zeros: expect a speedup of about 1.0x. The gain is in the compressed file size; "
        "structured methods remove whole filters/units and make the model really smaller and faster.",
    )


def row_timing(done: Pruned) -> dict[str, Any]:
    """The sweep row's timing columns."""
    return {f"{key}_s": value for key, value in done.timing_s.items()}
