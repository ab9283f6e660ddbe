"""What every executor says about the work it holds: a job's record and its one-line label.

`pending()` lists `Job`s; labels name a job in progress lines, queue notes and error messages.
"""
from __future__ import annotations

import itertools
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

from ..specs import DataRef, ModelRef, PruneSpec

if TYPE_CHECKING:  # annotations only: the runners' modules need not load for a label
    from ..specs import SensitivitySpec, SweepSpec


@dataclass
class Job:
    """A queued or running job, as `Executor.pending()` lists it.

    Mutable on purpose: the executor moves `state` along and a `cancel()` from another
    thread sets `cancel_requested`, which the job's own thread acts on. A queued job with a
    `supersede_key` is cancelled when a newer job with the same key is queued (a newer
    slider value of the same session): `superseded_by` names that job.
    """

    id: int
    kind: str
    label: str
    state: str = "queued"  # queued -> running -> done | failed | cancelled
    cancel_requested: bool = False
    supersede_key: Optional[str] = None
    superseded_by: Optional[int] = None

    def waiting_error(self) -> str:
        """Why a job cancelled in the queue never ran (the message of its `Cancelled`)."""
        if self.superseded_by is not None:
            return f"{self.label} was superseded by a newer job (#{self.superseded_by}) before it ran"
        return f"{self.label} was cancelled while it waited in the queue"


def supersede(queued: "list[Job]", newer: Job) -> list[Job]:
    """Mark the jobs of `queued` that `newer` supersedes (same `supersede_key`) as cancelled.

    >>> old, other, new = Job(1, "prune", "a", supersede_key="s"), Job(2, "prune", "b"), Job(3, "prune", "c", supersede_key="s")
    >>> [j.id for j in supersede([old, other], new)], old.cancel_requested, other.cancel_requested
    ([1], True, False)
    """
    if newer.supersede_key is None:
        return []
    dropped = [j for j in queued if j is not newer and j.state == "queued" and j.supersede_key == newer.supersede_key]
    for job in dropped:
        job.cancel_requested, job.superseded_by = True, newer.id
    return dropped


class JobBook:
    """The jobs one executor holds now, safe across threads: what `pending()` lists and
    `cancel()` flags (the job's own thread acts on the flag)."""

    def __init__(self) -> None:
        self._jobs: list[Job] = []  # in arrival order
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def pending(self) -> list[Job]:
        """The running jobs first, then the waiting ones, each in arrival order."""
        with self._lock:
            return sorted(self._jobs, key=lambda job: job.state != "running")  # stable: order kept

    def cancel(self, job_id: Optional[int] = None) -> bool:
        """Flag job `job_id`, or every job when None; False if there was none to cancel."""
        with self._lock:
            jobs = [job for job in self._jobs if job_id is None or job.id == job_id]
            for job in jobs:
                job.cancel_requested = True
        return bool(jobs)

    @contextmanager
    def track(self, kind: str, name: str, state: str = "queued",
              supersede_key: Optional[str] = None) -> Iterator[Job]:
        """A new job, listed until the block ends: `done`, or `cancelled`/`failed` on an error.
        Queued jobs with the same `supersede_key` are cancelled: the newer one replaces them."""
        job = Job(id=next(self._ids), kind=kind, label=name, state=state, supersede_key=supersede_key)
        with self._lock:
            supersede(self._jobs, job)
            self._jobs.append(job)
        try:
            yield job
            job.state = "done"
        except BaseException:
            job.state = "cancelled" if job.cancel_requested else "failed"
            raise
        finally:
            with self._lock:
                self._jobs.remove(job)


_QUEUED = re.compile(r"queued: (\d+) jobs? ahead of yours")


def queued_message(ahead: int) -> str:
    """What a job's `on_progress` is told while it waits: how many jobs run or wait before it.

    >>> queued_message(3), queued_message(1)
    ('queued: 3 jobs ahead of yours', 'queued: 1 job ahead of yours')
    """
    return f"queued: {ahead} job{'s' if ahead != 1 else ''} ahead of yours"


def queued_ahead(message: str) -> Optional[int]:
    """The count a `queued_message` holds; None for any other progress message.

    >>> queued_ahead(queued_message(3)), queued_ahead("pruning dense_1")
    (3, None)
    """
    match = _QUEUED.fullmatch(message)
    return int(match.group(1)) if match else None


def label(kind: str, model: ModelRef, data: DataRef, detail: str = "") -> str:
    """How a job is named to a person.

    >>> label("prune", ModelRef(name="cnn"), DataRef(name="digits"), "magnitude at 50%")
    'prune of cnn on digits (magnitude at 50%)'
    """
    return f"{kind} of {model.name} on {data.name}" + (f" ({detail})" if detail else "")


def prune_label(spec: PruneSpec) -> str:
    return label("prune", spec.model, spec.data, f"{spec.method} at {spec.target_sparsity:.0%}")


def sweep_label(spec: "SweepSpec") -> str:
    return label("sweep", spec.model, spec.data, ", ".join(spec.methods))


def sensitivity_label(spec: "SensitivitySpec") -> str:
    return label("sensitivity scan", spec.model, spec.data, spec.method)
