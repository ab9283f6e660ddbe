"""A sweep report assembled from rows that arrive one point at a time, in any order (Ray),
or in point order (one workbench): resumed rows replayed, a failing method skipped on.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Optional

import pandas as pd

from .errors import BadInput
from .measure.tasks import TASKS
from .reports import SweepReport, row_keys
from .specs import PointFn, ProgressFn, SweepSpec

TIMED_STAGES = ("prune", "finetune", "evaluate", "measure")  # each row's `<stage>_s`, summed


class SweepRows:
    """The rows of one sweep so far; `report()` turns them into its SweepReport, with the rows
    in the spec's point order as `run_sweep` gives them.

    `on_point` gets every kept row as it arrives (resumed ones on `replay()`), and
    `on_progress` the fraction of points done with the latest one named.
    """

    def __init__(self, spec: SweepSpec, resume: Iterable[Mapping[str, Any]] = (),
                 on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None):
        self.spec = spec
        self.points = spec.points()
        self.on_point, self.on_progress = on_point, on_progress
        self.start = time.perf_counter()
        self.resumed = {(str(r["method"]), float(r["target_sparsity"])): dict(r) for r in resume}
        self.rows: dict[int, dict[str, Any]] = {}
        self.failed: dict[str, tuple[int, str]] = {}  # method -> (its first failing point, why)

    def todo(self) -> list[tuple[int, str, float]]:
        """(index, method, rate) of every point still to compute: all but the resumed ones."""
        return [(i, m, r) for i, (m, r) in enumerate(self.points) if (m, r) not in self.resumed]

    def replay(self) -> None:
        """Hand the resumed rows on as if they had just been computed, in point order."""
        for i, point in enumerate(self.points):
            if point in self.resumed:
                self._keep(i, self.resumed[point])

    def add(self, i: int, row: Mapping[str, Any]) -> None:
        """Point `i` finished; dropped if its method already failed at an earlier point."""
        if self._counts(i):
            self._keep(i, dict(row))

    def skip(self, i: int, why: str) -> None:
        """Point `i` could not be computed (BadInput): its method is skipped from here on."""
        name = self.points[i][0]
        if self._counts(i):
            self.failed[name] = (i, why)

    def report(self, baseline: Mapping[str, float], n_test: int, environment: Mapping[str, str],
               task: str = "multiclass") -> SweepReport:
        """The SweepReport of every kept row; BadInput when every method was skipped."""
        kept = [self.rows[i] for i in sorted(self.rows) if self._counts(i)]
        if not kept and self.failed:
            raise BadInput("; ".join(why for _, why in self.failed.values()))
        frame = pd.DataFrame(kept, columns=list(row_keys(task)))
        timing = {key: float(frame[f"{key}_s"].sum()) for key in TIMED_STAGES}
        timing.update(total=time.perf_counter() - self.start, points=len(self.points),
                      resumed=sum(1 for point in self.points if point in self.resumed))
        return SweepReport(spec=self.spec, baseline=dict(baseline), rows=frame, timing_s=timing, n_test=n_test,
                           environment=dict(environment),
                           notes=tuple(f"{name} skipped: {why}" for name, (_, why) in self.failed.items()), task=task)

    def _counts(self, i: int) -> bool:
        """Whether point `i` is before its method's first failure (or the method never failed)."""
        name = self.points[i][0]
        return name not in self.failed or i < self.failed[name][0]

    def _keep(self, i: int, row: dict[str, Any]) -> None:
        self.rows[i] = row
        if self.on_point:
            self.on_point(dict(row))
        if self.on_progress:
            name, rate = self.points[i]
            done, total = len(self.rows), len(self.points)
            self.on_progress(done / total, f"{name} at {rate:.0%}: {task_of(row).show(row)} "
                                           f"({done}/{total} points)")


def task_of(row: Mapping[str, Any]):
    """The task whose headline metric a row carries (rows arrive before the report names it)."""
    return next((task for task in TASKS.values() if task.metric in row), TASKS["multiclass"])
