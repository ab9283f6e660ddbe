"""Cached calls into the backend: the pages' only door to `pruning`.

Specs become JSON strings so the cache key is exactly the spec; reports are plain data.
"""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import asdict
from typing import Any, Callable, Optional

import streamlit as st

from pruning.executors.base import Executor, make_executor
from pruning.reports import BaselineReport, PruneReport
from pruning.specs import DataRef, ModelRef, ProgressFn, PruneSpec, parse_sparsities


@st.cache_resource(show_spinner=False)
def get_executor() -> Executor:
    """One executor per server process: by default a worker process that owns TensorFlow and the
    loaded models, so this process never imports TensorFlow (PRUNESCOPE_EXECUTOR=inline: in here)."""
    return make_executor(os.environ.get("PRUNESCOPE_EXECUTOR", "worker"))


def queue_note() -> str:
    """How busy the executor is now, e.g. "2 jobs running or queued" ("" when idle). While a call
    waits its turn, its on_progress gets "waiting for the worker: N jobs ahead of yours"."""
    count = len(get_executor().pending())
    return f"{count} job{'s' if count != 1 else ''} running or queued" if count else ""


class ReportCache:
    """Reports by (kind, spec JSON), least recently used dropped first; shared by sessions.

    Not `st.cache_data`: backend calls report progress to an element the page made, and
    cache_data records such element calls for replay, which fails on the next run.
    Reports are never mutated after they are made, so sharing them is safe.
    """

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, kind: str, key: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if (kind, key) in self._items:
                self._items.move_to_end((kind, key))
                return self._items[(kind, key)]
        value = compute()
        with self._lock:
            self._items[(kind, key)] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@st.cache_resource(show_spinner=False)
def report_cache() -> ReportCache:
    return ReportCache()


def cached_call(kind: str, key: str, compute: Callable[[], Any]) -> Any:
    """`compute()` once per (kind, key) per server process; `key` is the spec as JSON."""
    return report_cache().get_or_compute(kind, key, compute)


def baseline(model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport:
    key = json.dumps([asdict(model), asdict(data)], sort_keys=True)
    return cached_call("baseline", key, lambda: get_executor().baseline(model, data, on_progress=on_progress))


def prune(spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport:
    """The pruned report; the first time a spec is pruned in this server process it is also
    stored as a run (running -> completed | failed). Repeats come from the cache, stored once."""

    def compute() -> PruneReport:
        return run_store().record_prune(
            spec, lambda: get_executor().prune(spec, on_progress=on_progress), source="app")[1]

    return cached_call("prune", spec.to_json(), compute)


@st.cache_data(show_spinner=False)
def methods() -> list[dict]:
    """name, description, granularity of every registered method, in registry order."""
    from pruning.methods import METHODS

    return [
        {"name": m.name, "description": m.description, "granularity": m.granularity, "scopes": list(m.scopes)}
        for m in METHODS.values()
    ]


@st.cache_data(show_spinner=False)
def model_names() -> list[str]:
    return list(get_executor().describe()["models"])  # the zoo module imports TensorFlow


@st.cache_data(show_spinner=False)
def dataset_names() -> list[str]:
    from pruning.model.datasets import DATASETS

    return list(DATASETS)


@st.cache_data(show_spinner=False)
def device() -> str:
    return str(get_executor().describe()["device"])


@st.cache_data(show_spinner=False, max_entries=64)
def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


# -- sweeps and sensitivity (issue 4) -------------------------------------------------------
from pruning.errors import BadInput  # noqa: E402
from pruning.plan import plan_sparsity  # noqa: E402
from pruning.reports import (  # noqa: E402
    SensitivityReport,  # noqa: E402
    SweepReport,
    report_from_rows,
)
from pruning.run.sensitivity import sensitivity_outcome  # noqa: E402
from pruning.specs import (
    SensitivitySpec,  # noqa: E402
    SweepSpec,  # noqa: E402
)


@st.cache_resource(show_spinner=False)
def run_store():
    """The process-wide run store ($PRUNESCOPE_HOME/runs.db)."""
    from pruning.runs.store import open_store

    return open_store()


def rates_from_text(text: str) -> tuple[float, ...]:
    """"0, 20, 90" (percent) -> (0.0, 0.2, 0.9), sorted; bad entries are BadInput with the reason."""
    return tuple(sorted(set(parse_sparsities(text, percent=True))))


def _same_spec_runs(kind: str, spec, parse) -> list:
    runs = run_store().list(kind=kind, model=spec.model.name, dataset=spec.data.name)
    same = []
    for run in runs:
        try:
            if parse(run.spec) == spec:
                same.append(run)
        except (BadInput, TypeError, ValueError):
            continue  # a row from another version of the spec: not ours to reuse
    return same


def sweep(spec: SweepSpec, on_point=None, on_progress: Optional[ProgressFn] = None) -> SweepReport:
    """A sweep, cached per spec. Each finished point is stored as it lands; a completed stored
    sweep of the same spec is reused, and an interrupted one resumes from its stored points."""

    def compute() -> SweepReport:
        store = run_store()
        runs = _same_spec_runs("sweep", spec, SweepSpec.from_dict)
        for run in runs:
            if run.status == "completed" and run.metrics.get("baseline"):
                return report_from_rows(spec, run.metrics["baseline"], store.points(run.id),
                                        run.metrics.get("timing_s", {}), run.environment)
        resume = next((store.points(run.id) for run in runs if run.status in ("interrupted", "failed")), [])

        def work(store_point):
            def both(row):
                store_point(row)
                if on_point:
                    on_point(row)

            return get_executor().sweep(spec, on_point=both, on_progress=on_progress, resume=resume)

        return store.record_points("sweep", spec, work, source="app")[1]

    return cached_call("sweep", spec.to_json(), compute)


def sensitivity(spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport:
    """A sensitivity scan, cached per spec and stored as a run."""

    def compute() -> SensitivityReport:
        return run_store().record("sensitivity", spec, lambda: get_executor().sensitivity(spec, on_progress),
                                  sensitivity_outcome, source="app")[1]

    return cached_call("sensitivity", spec.to_json(), compute)


def plan(report: SensitivityReport, target: Optional[float] = None, budget: Optional[float] = None) -> dict[str, float]:
    """A per-layer sparsity plan from a scan (pure and fast: not cached)."""
    return plan_sparsity(report, target_overall_sparsity=target, accuracy_drop_budget=budget)


@st.cache_data(show_spinner=False)
def scan_methods() -> list[str]:
    """Methods a sensitivity scan can use: masks, one layer at a time, nothing trained."""
    from pruning.methods import METHODS

    return [m.name for m in METHODS.values() if m.granularity != "structured" and "training" not in m.needs]


# -- run history, export and reports (issue 5) ----------------------------------------------
import pandas as pd  # noqa: E402


def rerun(run_id: int, on_progress: Optional[ProgressFn] = None) -> int:
    """Prune a stored run's spec again, uncached, as a new run; returns the new run's id."""
    spec = run_store().get(run_id).prune_spec()
    return run_store().record_prune(spec, lambda: get_executor().prune(spec, on_progress=on_progress),
                                    source="app")[0]


def list_runs() -> list:
    """Every stored run, newest first (read fresh: other sessions and the CLI add runs)."""
    return run_store().list()


def runs_frame(runs: list) -> pd.DataFrame:
    """One row per run, the columns of `python -m pruning runs --json`."""
    columns = ["id", "kind", "status", "name", "model", "dataset", "method", "target_sparsity", "sparsity",
               "baseline_accuracy", "accuracy", "latency_ms", "gzip_bytes", "nonzero_params", "finetune_epochs",
               "seed", "device", "note", "error", "created_at"]
    frame = pd.DataFrame([run.summary() for run in runs], columns=columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s")
    return frame


COMPARE_METRICS = ("accuracy", "robust_accuracy", "train_accuracy", "loss", "nonzero_params", "effective_flops",
                   "size_bytes", "gzip_bytes", "latency_ms")


def compare_frame(runs: list) -> pd.DataFrame:
    """Metrics side by side (one column per run) and each run's change against the first one."""
    rows = []
    first = runs[0]
    for key in ("sparsity",) + COMPARE_METRICS:
        row: dict = {"metric": key}
        for run in runs:
            value = run.metrics.get(key) if key == "sparsity" else run.metrics.get("pruned", {}).get(key)
            row[run.label] = value
            if run is not first:
                base = row[first.label]
                row[f"Δ {run.label}"] = None if value is None or base is None else value - base
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_rows(runs: list, model: str, dataset: str) -> tuple[pd.DataFrame, dict]:
    """Completed prune runs and stored sweep points of one model on one dataset, as Pareto points,
    and the dense baseline (from the newest of them)."""
    store = run_store()
    rows, baseline = [], {}
    for run in runs:
        if run.model != model or run.dataset != dataset or run.status not in ("completed", "interrupted"):
            continue
        if run.kind == "prune" and run.status == "completed":
            rows.append({"method": run.method, "sparsity": run.metrics["sparsity"], "source": run.label,
                         **{k: run.metrics["pruned"][k] for k in ("accuracy", "latency_ms", "gzip_bytes")}})
            baseline = baseline or run.metrics["baseline"]
        elif run.kind == "sweep":
            for point in store.points(run.id):
                rows.append({"method": point["method"], "sparsity": point["sparsity"],
                             "source": f"sweep #{run.id}",
                             **{k: point.get(k) for k in ("accuracy", "latency_ms", "gzip_bytes")}})
            baseline = baseline or run.metrics.get("baseline", {})
    frame = pd.DataFrame(rows, columns=["method", "sparsity", "source", "accuracy", "latency_ms", "gzip_bytes"])
    return frame.dropna(subset=["accuracy", "latency_ms", "gzip_bytes"]), baseline


def tflite_export(run_id: int) -> dict:
    """Convert a run's model to TFLite once (kept beside it, figures in the run's details) and
    check it against Keras; returns TFLiteExport.to_dict() plus the file path."""
    from pathlib import Path

    from pruning.runs.export import ExportError, export_tflite

    run = run_store().get(run_id)
    stored = run.details.get("tflite")
    out = Path(run.artifact_path or "").with_name("model.tflite")
    if stored and stored.get("ok") and out.is_file():
        return dict(stored, path=str(out))
    try:
        return dict(export_tflite(run, out, run_store()).to_dict(), path=str(out))
    except ExportError:
        return dict(run_store().get(run_id).details["tflite"], path=None)  # below the bar: shown, not offered


def recipe_bytes(run_id: int) -> bytes:
    from pruning.runs.export import make_recipe

    return (json.dumps(make_recipe(run_store().get(run_id)), indent=2, sort_keys=True) + "\n").encode()


def report_html(run_id: int) -> bytes:
    """The one-file HTML report (about 5 MB: plotly.js is inside, so it opens offline);
    rebuilt only when what it shows changed (name, note, TFLite figures, sweeps)."""
    from pruning.runs.report import build_report, related_sweeps

    run = run_store().get(run_id)
    sweeps = related_sweeps(run_store(), run)
    key = json.dumps([run.id, run.name, run.note, run.details.get("tflite"),
                      [(sweep.id, len(points)) for sweep, points in sweeps]], sort_keys=True)
    return cached_call("report_html", key, lambda: build_report(run, sweeps).encode("utf-8"))


def run_points(run_id: int) -> list[dict]:
    return run_store().points(run_id)


def rename_run(run_id: int, name: str, note: str) -> None:
    run_store().rename(run_id, name)
    run_store().set_note(run_id, note)


def delete_run(run_id: int) -> None:
    run_store().delete(run_id)


def size_stages(run_id: int) -> pd.DataFrame:
    from pruning.runs.export import size_waterfall

    return size_waterfall(run_store().get(run_id))
