"""Executors run specs and hand back plain-data reports (DESIGN §3): the protocol and `make_executor`.

Pages and the CLI talk to an `Executor`: inline (executors/inline.py, this process), worker
(executors/worker.py, the app's default: a spawned process) or Ray (executors/ray_actors.py, optional).
"""
from __future__ import annotations

from typing import (
    Any,
    Callable,
    Iterable,
    Mapping,
    Optional,
    Protocol,
    runtime_checkable,
)

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
from .jobs import Job


@runtime_checkable
class Executor(Protocol):
    """What every executor offers; calls block, and callbacks run in the calling thread."""

    name: str

    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport: ...

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None,
              on_evaluated: Optional[Callable[[dict], None]] = None,
              supersede_key: Optional[str] = None) -> PruneReport:
        """The report of `spec`, its `model_path` empty (no file written: see `save`).

        `on_evaluated` gets the first phase (`reports.evaluated_view`: accuracy metrics,
        counts, sparsity) as soon as evaluation returns, before sizes and latency are
        measured. A job given a `supersede_key` cancels the still-queued jobs with the same
        key (they raise `Cancelled`): a newer slider value of one session replaces older ones.
        """
        ...

    def save(self, spec: PruneSpec, path: str, on_progress: Optional[ProgressFn] = None) -> str:
        """Write the pruned model of `spec` as `.keras` to `path` (one of the last prunes as it
        is, any other pruned again); the path written."""
        ...

    def convert(self, spec: PruneSpec, source: str, path: str, out_format: Optional[str] = None) -> str:
        """Write the pruned model file `source` (PruneScope's tf_keras `.keras`, e.g. a run's) to
        `path` as `keras2` or `keras3` (None: the format `spec`'s model came in), where TensorFlow
        lives (model.keras3.write_pruned: a Keras 3 file is proven on the test split); the path."""
        ...

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport: ...

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport: ...

    def deploy(self, spec: PruneSpec, artifact: str, options: DeploySpec,
               on_progress: Optional[ProgressFn] = None) -> dict[str, Any]:
        """The pruned model at `artifact` converted to TFLite float32 and int8 and measured
        (runs.deployment.deploy_model); a DeployReport.to_dict()."""
        ...

    def describe(self) -> dict[str, Any]:
        """`device` (where models run) and `models` (zoo names), from wherever TensorFlow lives."""
        ...

    def pending(self) -> list[Job]:
        """The jobs running or waiting now, running ones first."""
        ...

    def cancel(self, job_id: Optional[int] = None) -> bool:
        """Cancel job `job_id` (a `Job.id` from `pending()`), or every pending job when None.

        Returns whether there was a job to cancel; its caller then gets `Cancelled`.
        """
        ...


# Each imports its module only when chosen: the worker keeps TensorFlow out of this process,
# and Ray is optional (requirements-ray.txt).
def _inline() -> Executor:
    from .inline import InlineExecutor

    return InlineExecutor()


def _worker() -> Executor:
    from .worker import WorkerExecutor

    return WorkerExecutor()


def _ray() -> Executor:
    from .ray_actors import RayExecutor

    return RayExecutor()


EXECUTORS: Mapping[str, Callable[[], Executor]] = {"inline": _inline, "worker": _worker, "ray": _ray}


def make_executor(kind: str = "inline") -> Executor:
    """`inline` (this process), `worker` (a spawned process that owns TensorFlow) or `ray`
    (actors on the cluster at RAY_ADDRESS, or on a local Ray instance)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[kind]()
