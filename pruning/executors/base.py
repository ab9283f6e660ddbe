"""Executors run specs and hand back plain-data reports (DESIGN §3).

Pages and the CLI talk to an `Executor`; the inline one runs in this process, the worker one
(pruning/worker.py, the app's default) in a spawned process, the Ray one (pruning/ray_executor.py,
optional) on actors of a Ray cluster.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping, Optional, Protocol

from ..reports import BaselineReport, PruneReport, SensitivityReport, SweepReport
from ..specs import (
    DataRef,
    ModelRef,
    PointFn,
    ProgressFn,
    PruneSpec,
    SensitivitySpec,
    SweepSpec,
)


class Executor(Protocol):
    name: str

    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport: ...

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport: ...

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport: ...

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport: ...

    def describe(self) -> dict[str, Any]:
        """`device` (where models run) and `models` (zoo names), from wherever TensorFlow lives."""
        ...


class InlineExecutor:
    """Runs everything in this process, with an LRU of loaded models.

    One job at a time: a workbench prunes its working model in place, so two sessions
    (Streamlit threads) must never run on it at once.
    """

    name = "inline"

    def __init__(self, capacity: int = 2):
        from ..run.engine import (
            Engine,  # TensorFlow loads only when an executor is made
        )

        self.engine = Engine(capacity)
        self.lock = threading.RLock()

    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport:
        with self.lock:
            return self.engine.baseline(model, data, on_progress=on_progress)

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport:
        with self.lock:
            return self.engine.prune(spec, on_progress)

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport:
        with self.lock:
            return self.engine.sweep(spec, on_point=on_point, on_progress=on_progress, resume=resume)

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport:
        with self.lock:
            return self.engine.sensitivity(spec, on_progress)

    def describe(self) -> dict[str, Any]:
        from .._keras import device_name
        from ..model.zoo import ZOO

        return {"device": device_name(), "models": list(ZOO)}


def _worker() -> Executor:
    from .worker import WorkerExecutor

    return WorkerExecutor()


def _ray() -> Executor:
    from .ray_actors import (
        RayExecutor,  # Ray is optional (requirements-ray.txt): imported only when chosen
    )

    return RayExecutor()


EXECUTORS = {"inline": InlineExecutor, "worker": _worker, "ray": _ray}


def make_executor(kind: str = "inline") -> Executor:
    """`inline` (this process), `worker` (a spawned process that owns TensorFlow) or `ray`
    (actors on the cluster at RAY_ADDRESS, or on a local Ray instance)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[kind]()
