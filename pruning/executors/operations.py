"""The operation table: what a worker process or a Ray actor does for each request it is sent.

A request names an operation and carries JSON-ready arguments; the table maps the name to one
function with one signature, and an unknown name fails with the list of valid ones.
"""
from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

from ..specs import (
    DataRef,
    DeploySpec,
    ModelRef,
    PointFn,
    ProgressFn,
    PruneSpec,
    SensitivitySpec,
    SweepSpec,
)
from .wire import to_wire

# (engine, args, on_progress, on_point) -> a JSON-ready value; the engine is a run.engine.Engine
Operation = Callable[[Any, Mapping[str, Any], ProgressFn, PointFn], Any]
Emit = Callable[[dict], None]


def describe() -> dict[str, Any]:
    """`device` (where models run) and `models` (zoo names), asked where TensorFlow lives."""
    from .._keras import device_name
    from ..model.zoo import ZOO

    return {"device": device_name(), "models": list(ZOO)}


def _describe(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    # the pid tells a caller which process answered (recycling and restarts are visible)
    return {**describe(), "pid": os.getpid()}


def _baseline(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    report = engine.baseline(ModelRef(**args["model"]), DataRef(**args["data"]), on_progress=on_progress)
    return to_wire("baseline", report)


def _prune(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    # the first phase (reports.evaluated_view) streams back as a point, before sizes and latency
    return to_wire("prune", engine.prune(PruneSpec.from_dict(args["spec"]), on_progress, on_evaluated=on_point))


def _save(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> str:
    return engine.save(PruneSpec.from_dict(args["spec"]), args["path"], on_progress)


def convert_args(spec: PruneSpec, source: str, path: str, out_format: Optional[str]) -> dict[str, Any]:
    """The `convert` request's arguments (Executor.convert), the same for every executor."""
    return {"spec": spec.to_dict(), "source": str(source), "path": str(path), "out_format": out_format}


def _convert(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> str:
    from ..model.keras3 import write_pruned  # Keras 3 and TensorFlow: here, where they live

    return str(write_pruned(args["source"], args["path"], PruneSpec.from_dict(args["spec"]), args.get("out_format")))


def _sweep(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    report = engine.sweep(SweepSpec.from_dict(args["spec"]), on_point=on_point, on_progress=on_progress,
                          resume=args.get("resume", ()))
    return to_wire("sweep", report)


def _sensitivity(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    return to_wire("sensitivity", engine.sensitivity(SensitivitySpec.from_dict(args["spec"]), on_progress))


def _deploy(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    from ..runs.deployment import (
        deploy_model,  # converts with TensorFlow: here, where it lives
    )

    return deploy_model(PruneSpec.from_dict(args["spec"]), args["artifact"],
                        DeploySpec.from_dict(args.get("options", {})), on_progress).to_dict()


# What the worker process serves; Ray actors serve these and a few of their own.
OPERATIONS: Mapping[str, Operation] = MappingProxyType({
    "describe": _describe,
    "baseline": _baseline,
    "prune": _prune,
    "save": _save,
    "convert": _convert,
    "sweep": _sweep,
    "sensitivity": _sensitivity,
    "deploy": _deploy,
})


def get_operation(table: Mapping[str, Operation], op: str) -> Operation:
    """The function for `op`; a ValueError naming the valid operations when there is none.

    >>> get_operation(OPERATIONS, "prnue")
    Traceback (most recent call last):
    ...
    ValueError: unknown operation 'prnue': choose one of baseline, convert, deploy, describe, prune, save, sensitivity, sweep
    """
    if op not in table:
        raise ValueError(f"unknown operation {op!r}: choose one of {', '.join(sorted(table))}")
    return table[op]


def run_operation(table: Mapping[str, Operation], engine, op: str, args: Mapping[str, Any],
                  emit: Optional[Emit] = None) -> Any:
    """Run `op` on `engine`; its progress and sweep points go to `emit` as messages (dropped without one)."""
    run = get_operation(table, op)  # before any callback is built: a bad name costs nothing

    def progress(fraction: float, message: str) -> None:
        if emit is not None:
            emit({"type": "progress", "fraction": float(fraction), "message": str(message)})

    def point(row: Mapping[str, Any]) -> None:
        if emit is not None:
            emit({"type": "point", "row": dict(row)})

    return run(engine, args, progress, point)
