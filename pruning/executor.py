"""Executors run specs and hand back plain-data reports (DESIGN §3).

Pages and the CLI talk to an `Executor`; the inline one runs in this process. A worker
process executor and a distributed one fill the same interface later.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping, Optional, Protocol

from .sensitivity import SensitivityReport, SensitivitySpec
from .specs import BaselineReport, DataRef, ModelRef, ProgressFn, PruneReport, PruneSpec
from .sweep import PointFn, SweepReport, SweepSpec


class Executor(Protocol):
    name: str

    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport: ...

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport: ...

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport: ...

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport: ...


class InlineExecutor:
    """Runs everything in this process, with an LRU of loaded models.

    One job at a time: a workbench prunes its working model in place, so two sessions
    (Streamlit threads) must never run on it at once.
    """

    name = "inline"

    def __init__(self, capacity: int = 2):
        from .engine import Engine  # TensorFlow loads only when an executor is made

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


def make_executor(kind: str = "inline") -> Executor:
    executors = {"inline": InlineExecutor}
    try:
        return executors[kind]()
    except KeyError:
        raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(executors)}") from None
