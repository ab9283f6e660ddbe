"""The inline executor: specs run in this process, on an Engine with an LRU of loaded models.

Used by tests and the CLI (and the app with PRUNESCOPE_EXECUTOR=inline); one job runs at a time.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from ..reports import BaselineReport, PruneReport, SensitivityReport, SweepReport
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
from .errors import Cancelled
from .jobs import Job, JobBook, label, prune_label, sensitivity_label, sweep_label
from .operations import OPERATIONS, convert_args, describe, run_operation

POLL_S = 0.2  # how often a job waiting for the engine checks whether it was cancelled


class InlineExecutor:
    """Runs everything in this process, with an LRU of loaded models.

    One job at a time: a workbench prunes its working model in place, so two sessions
    (Streamlit threads) must never run on it at once; the others wait, listed by `pending()`.
    A cancelled job stops where it next reports progress or a point (TensorFlow cannot be
    interrupted mid-call in this process), or before it starts if it is still waiting.
    """

    name = "inline"

    def __init__(self, capacity: int = 2):
        from ..run.engine import (
            Engine,  # TensorFlow loads only when an executor is made
        )

        self.engine = Engine(capacity)
        self.lock = threading.RLock()  # re-entrant: a callback may call this executor again
        self.jobs = JobBook()

    # -- the queue ---------------------------------------------------------------------------------
    def pending(self) -> list[Job]:
        """The running job (if any) first, then the waiting ones in order."""
        return self.jobs.pending()

    def cancel(self, job_id: Optional[int] = None) -> bool:
        """Cancel job `job_id`, or every pending job when None; False if there was none to cancel."""
        return self.jobs.cancel(job_id)

    @contextmanager
    def _job(self, kind: str, name: str, supersede_key: Optional[str] = None) -> Iterator[Job]:
        with self.jobs.track(kind, name, supersede_key=supersede_key) as job:
            while not self.lock.acquire(timeout=POLL_S):
                if job.cancel_requested:
                    raise Cancelled(job.waiting_error())
            try:
                job.state = "running"
                yield job
            finally:
                self.lock.release()

    @staticmethod
    def _checked(job: Job, callback: Optional[Any]) -> Any:
        """`callback`, first raising Cancelled once `job` is cancelled (also where the caller gave none)."""
        def check(*args: Any) -> None:
            if job.cancel_requested:
                raise Cancelled(f"{job.label} was cancelled")
            if callback is not None:
                callback(*args)

        return check

    # -- the Executor protocol -----------------------------------------------------------------------
    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport:
        with self._job("baseline", label("baseline", model, data)) as job:
            return self.engine.baseline(model, data, on_progress=self._checked(job, on_progress))

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None,
              on_evaluated: Optional[Callable[[dict], None]] = None,
              supersede_key: Optional[str] = None) -> PruneReport:
        with self._job("prune", prune_label(spec), supersede_key) as job:
            return self.engine.prune(spec, self._checked(job, on_progress),
                                     on_evaluated=self._checked(job, on_evaluated) if on_evaluated else None)

    def save(self, spec: PruneSpec, path: str, on_progress: Optional[ProgressFn] = None) -> str:
        with self._job("save", label("save", spec.model, spec.data, spec.method)) as job:
            return self.engine.save(spec, path, self._checked(job, on_progress))

    def convert(self, spec: PruneSpec, source: str, path: str, out_format: Optional[str] = None) -> str:
        with self._job("convert", label("convert", spec.model, spec.data, spec.method)):
            return run_operation(OPERATIONS, self.engine, "convert", convert_args(spec, source, path, out_format))

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport:
        with self._job("sweep", sweep_label(spec)) as job:
            return self.engine.sweep(spec, on_point=self._checked(job, on_point),
                                     on_progress=self._checked(job, on_progress), resume=resume)

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport:
        with self._job("sensitivity", sensitivity_label(spec)) as job:
            return self.engine.sensitivity(spec, self._checked(job, on_progress))

    def deploy(self, spec: PruneSpec, artifact: str, options: DeploySpec,
               on_progress: Optional[ProgressFn] = None) -> dict[str, Any]:
        from ..runs.deployment import deploy_model

        with self._job("deploy", f"deploy {prune_label(spec)}") as job:
            return deploy_model(spec, artifact, options, self._checked(job, on_progress)).to_dict()

    def describe(self) -> dict[str, Any]:
        return describe()
