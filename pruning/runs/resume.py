"""Sweep reuse and resume: what an identical earlier sweep in the store saves a new one.

One policy for the Sweep page and `python -m pruning sweep`, so both reuse the same points.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from ..errors import BadInput
from ..reports import SweepReport, report_from_rows
from ..specs import SweepSpec
from .store import Run, RunStore

PointFn = Callable[[dict[str, Any]], None]
# runner(on_point, resume) -> report: an executor's sweep of one spec, progress already bound
SweepRunner = Callable[[PointFn, Sequence[Mapping[str, Any]]], SweepReport]
RESUMABLE = ("interrupted", "failed")  # their finished points were measured like any other


@dataclass(frozen=True)
class PriorSweep:
    """What the store holds for one sweep spec.

    Attributes:
        completed: the newest completed identical run that stored its baseline (its report
            can be rebuilt without pruning anything), or None.
        resume_from: the newest interrupted or failed identical run, or None.
        resume: that run's finished points, in the order they were stored.
    """

    completed: Optional[Run] = None
    resume_from: Optional[Run] = None
    resume: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class StoredSweep:
    """A sweep's report and how the store came into it.

    Attributes:
        run_id: the run that holds the points (the reused one when `reused`).
        report: the sweep report.
        reused: whether the report was rebuilt from a completed run, nothing computed.
        resumed_points: points taken from an interrupted identical run, not recomputed.
        resumed_from: that run's id, or None.
    """

    run_id: int
    report: SweepReport
    reused: bool = False
    resumed_points: int = 0
    resumed_from: Optional[int] = field(default=None)


def same_spec_runs(store: RunStore, kind: str, spec: Any, parse: Callable[[Mapping[str, Any]], Any]) -> list[Run]:
    """Stored runs of `kind` whose spec parses to one equal to `spec`, newest first.

    Args:
        store: the run store.
        kind: `sweep` or `sensitivity`.
        spec: a spec with `model` and `data` refs (their names narrow the query).
        parse: the spec's `from_dict`.

    Returns:
        The matching runs; rows from another version of the spec are skipped, not reused.
    """
    same = []
    for run in store.list(kind=kind, model=spec.model.name, dataset=spec.data.name):
        try:
            if parse(run.spec) == spec:
                same.append(run)
        except (BadInput, TypeError, ValueError):
            continue
    return same


def find_prior_sweep(store: RunStore, spec: SweepSpec) -> PriorSweep:
    """The completed run to reuse and the interrupted points to resume for `spec` (PriorSweep)."""
    runs = same_spec_runs(store, "sweep", spec, SweepSpec.from_dict)
    completed = next((run for run in runs if run.status == "completed" and run.metrics.get("baseline")), None)
    resume_from = next((run for run in runs if run.status in RESUMABLE), None)
    resume = tuple(store.points(resume_from.id)) if resume_from is not None else ()
    return PriorSweep(completed=completed, resume_from=resume_from, resume=resume)


def stored_report(store: RunStore, spec: SweepSpec, run: Run) -> SweepReport:
    """A completed sweep run's report, rebuilt from its row and points."""
    return report_from_rows(spec, run.metrics["baseline"], store.points(run.id),
                            run.metrics.get("timing_s", {}), run.environment)


def run_stored_sweep(store: RunStore, spec: SweepSpec, runner: SweepRunner, on_point: Optional[PointFn] = None,
                     source: str = "app", reuse_completed: bool = True) -> StoredSweep:
    """Run a sweep through the store: reuse a completed identical one, or resume an interrupted one.

    Each finished point is stored as it lands (and passed to `on_point`), so a sweep stopped
    half-way leaves its points for the next identical one to resume from.

    Args:
        store: the run store.
        spec: the sweep.
        runner: `runner(on_point, resume)` runs the sweep, e.g.
            `lambda on_point, resume: executor.sweep(spec, on_point=on_point, resume=resume)`.
        on_point: also called with each point, stored or resumed (a live chart).
        source: who ran it (`app`, `cli`), kept in the row.
        reuse_completed: whether a completed identical run answers without computing (the
            page); the CLI measures again, but still resumes.

    Returns:
        A StoredSweep.
    """
    prior = find_prior_sweep(store, spec)
    if reuse_completed and prior.completed is not None:
        return StoredSweep(run_id=prior.completed.id, report=stored_report(store, spec, prior.completed), reused=True)

    def work(store_point: PointFn) -> SweepReport:
        def both(row: dict[str, Any]) -> None:
            store_point(row)
            if on_point:
                on_point(row)

        return runner(both, prior.resume)

    run_id, report = store.record_points("sweep", spec, work, source=source)
    resumed = int(report.timing_s.get("resumed", 0)) if prior.resume else 0
    return StoredSweep(run_id=run_id, report=report, resumed_points=resumed,
                       resumed_from=prior.resume_from.id if resumed else None)
