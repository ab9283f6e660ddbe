"""Executors run specs and hand back plain-data reports (DESIGN §3).

Pages and the CLI talk to an `Executor`; the inline one runs in this process. A worker
process executor and a distributed one fill the same interface later.
"""
from __future__ import annotations

from typing import Optional, Protocol

from .specs import BaselineReport, DataRef, ModelRef, ProgressFn, PruneReport, PruneSpec


class Executor(Protocol):
    name: str

    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport: ...

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport: ...


class InlineExecutor:
    """Runs everything in this process, with an LRU of loaded models."""

    name = "inline"

    def __init__(self, capacity: int = 2):
        from .engine import Engine  # TensorFlow loads only when an executor is made

        self.engine = Engine(capacity)

    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport:
        return self.engine.baseline(model, data, on_progress=on_progress)

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport:
        return self.engine.prune(spec, on_progress)


def make_executor(kind: str = "inline") -> Executor:
    executors = {"inline": InlineExecutor}
    try:
        return executors[kind]()
    except KeyError:
        raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(executors)}") from None
