"""A stored run as plain data (`Run`) and what a finished run leaves in its row (`Outcome`).

No SQL here: store.py reads rows into Runs and writes Outcomes; pages and reports read Runs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from ..errors import BadInput
from ..measure.tasks import Task, get_task
from ..reports import PruneReport
from ..specs import PruneSpec


@dataclass(frozen=True)
class Run:
    """One stored run, as plain data."""

    id: int
    kind: str
    status: str
    name: str
    note: str
    model: str
    dataset: str
    method: str
    spec: dict[str, Any]
    environment: dict[str, Any]
    metrics: dict[str, Any]  # prune: method, target_sparsity, sparsity, baseline, pruned, derived
    layers: list[dict[str, Any]]
    details: dict[str, Any]  # prune: histograms, mask_images, timing_s, notes, granularity
    error: Optional[str]
    created_at: float
    finished_at: Optional[float]
    artifact_path: Optional[str]
    source: str
    stored_points: int = 0  # sweep_points rows: what an interrupted sweep or scan finished

    @property
    def label(self) -> str:
        """How the run is named in tables and legends."""
        if self.name:
            return f"#{self.id} {self.name}"
        if self.kind == "prune" and "target_sparsity" in self.metrics:
            return f"#{self.id} {self.method} {self.metrics['target_sparsity']:.0%}"
        return f"#{self.id} {self.kind} {self.method}".rstrip()

    @property
    def task(self) -> Task:
        """The task whose headline metric the run was measured with (older runs: multiclass)."""
        return get_task(self.metrics.get("task"))

    @property
    def target_sparsity(self) -> Optional[float]:
        """The requested sparsity of a prune run (runs stored before the rename say `sparsity`)."""
        return self.metrics.get("target_sparsity", self.spec.get("target_sparsity", self.spec.get("sparsity")))

    def prune_spec(self) -> PruneSpec:
        if self.kind != "prune":
            raise BadInput(f"run {self.id} is a {self.kind} run, not a prune: pick a prune run")
        return PruneSpec.from_dict(self.spec)

    def summary(self) -> dict[str, Any]:
        """Flat: id, spec fields, status and key metrics (the `runs --json` rows)."""
        pruned = self.metrics.get("pruned", {})
        baseline = self.metrics.get("baseline", {})
        out = {
            "id": self.id, "kind": self.kind, "status": self.status, "name": self.name, "note": self.note,
            "model": self.model, "dataset": self.dataset, "method": self.method,
            "scope": self.spec.get("scope"), "target_sparsity": self.target_sparsity,
            "finetune_epochs": self.spec.get("finetune_epochs"), "seed": self.spec.get("seed"),
            "sparsity": self.metrics.get("sparsity"),
            "baseline_accuracy": baseline.get("accuracy"),
            "accuracy": pruned.get("accuracy"), "latency_ms": pruned.get("latency_ms"),
            "size_bytes": pruned.get("size_bytes"), "gzip_bytes": pruned.get("gzip_bytes"),
            "nonzero_params": pruned.get("nonzero_params"),
            "device": self.environment.get("device"),
            "created_at": self.created_at, "finished_at": self.finished_at,
            "error": self.error,
        }
        if self.kind != "prune":
            # counted in the store, so a run whose process died still says what it finished
            out["points"] = self.stored_points
        return out


@dataclass(frozen=True)
class Outcome:
    """What a finished run leaves in its row."""

    metrics: Mapping[str, Any]
    layers: Sequence[Mapping[str, Any]] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    artifact: Optional[str] = None  # a model file to copy into the run's folder


def prune_outcome(report: PruneReport) -> Outcome:
    """A PruneReport as the row stores it (everything the report page and export need)."""
    as_json = report.to_json_dict()
    metrics = {k: as_json[k] for k in ("task", "metric", "higher_is_better", "method", "granularity",
                                         "target_sparsity", "sparsity", "baseline", "pruned", "derived")}
    details = {
        "histograms": report.histograms, "mask_images": report.mask_images,
        "timing_s": report.timing_s, "notes": list(report.notes),
    }
    layers = json.loads(report.layers.to_json(orient="records"))
    return Outcome(metrics=metrics, layers=layers, details=details,
                   environment=report.environment, artifact=report.model_path)


def ended_status(exc: BaseException) -> str:
    """The state a run stopped by `exc` ends in: `failed` for an error, `interrupted` otherwise.

    An Exception is the job's own failure, unless it says otherwise with a `run_status`
    attribute (a worker that died or a cancelled job: executors.worker.JobFailed). Any other
    BaseException is control flow that is no error of the job's: KeyboardInterrupt,
    SystemExit, Streamlit's RerunException and StopException (a user moving a slider on).

    >>> ended_status(ValueError("bad")), ended_status(KeyboardInterrupt())
    ('failed', 'interrupted')
    """
    default = "failed" if isinstance(exc, Exception) else "interrupted"
    return str(getattr(exc, "run_status", default))


def error_text(exc: BaseException) -> str:
    """What a stopped run's row says about why."""
    if isinstance(exc, KeyboardInterrupt):
        return "stopped by the user"
    return f"{type(exc).__name__}: {exc}"


def run_from_row(row: Mapping[str, Any]) -> Run:
    """A `runs` row (with its `stored_points` count) as a Run."""
    def parse(text: Optional[str], empty: Any) -> Any:
        return json.loads(text) if text else empty

    return Run(
        id=row["id"], kind=row["kind"], status=row["status"], name=row["name"], note=row["note"],
        model=row["model"], dataset=row["dataset"], method=row["method"],
        spec=parse(row["spec_json"], {}), environment=parse(row["environment_json"], {}),
        metrics=parse(row["metrics_json"], {}), layers=parse(row["layers_json"], []),
        details=parse(row["details_json"], {}), error=row["error"],
        created_at=row["created_at"], finished_at=row["finished_at"],
        artifact_path=row["artifact_path"], source=row["source"], stored_points=int(row["stored_points"]),
    )
