"""What every executor says about the work it holds: a job's record and its one-line label.

`pending()` lists `Job`s; labels name a job in progress lines, queue notes and error messages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..specs import DataRef, ModelRef, PruneSpec

if TYPE_CHECKING:  # annotations only: the runners' modules need not load for a label
    from ..specs import SensitivitySpec, SweepSpec


@dataclass
class Job:
    """A queued or running job, as `Executor.pending()` lists it.

    Mutable on purpose: the executor moves `state` along and a `cancel()` from another
    thread sets `cancel_requested`, which the job's own thread acts on.
    """

    id: int
    kind: str
    label: str
    state: str = "queued"  # queued -> running -> done | failed | cancelled
    cancel_requested: bool = False


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
