"""Cached calls into the backend: the pages' only door to `pruning`.

Specs become JSON strings so the cache key is exactly the spec; reports are plain data.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from collections import OrderedDict
from dataclasses import asdict
from typing import Any, Callable, Optional

import pandas as pd
import streamlit as st

from pruning.executors.base import Executor, make_executor
from pruning.errors import BadInput
from pruning.measure.tasks import Task
from pruning.methods import METHODS
from pruning.model.datasets import DATASETS
from pruning.model.safety import MODEL_FORMATS, default_out_format
from pruning.plan import plan_sparsity
from pruning.reports import BaselineReport, PruneReport, SensitivityReport, SweepReport
from pruning.run.sensitivity import sensitivity_outcome
from pruning.runs import history
from pruning.runs.export import deploy_summary, recipe_text, stored_deploy
from pruning.runs.report import build_report
from pruning.runs.resume import run_stored_sweep
from pruning.runs.store import Run, RunStore, open_store
from pruning.specs import (
    DataRef,
    DeploySpec,
    ModelRef,
    ProgressFn,
    PruneSpec,
    SensitivitySpec,
    SweepSpec,
    parse_sparsities,
)

from .prune_jobs import POLL_S, PruneJob, PruneJobs


@st.cache_resource(show_spinner=False)
def get_executor() -> Executor:
    """One executor per server process: by default a worker process that owns TensorFlow and the
    loaded models, so this process never imports TensorFlow (PRUNESCOPE_EXECUTOR=inline: in here)."""
    return make_executor(os.environ.get("PRUNESCOPE_EXECUTOR", "worker"))


def queue_note() -> str:
    """How busy the executor is now, e.g. "2 jobs running or queued" ("" when idle). While a call
    waits its turn, its on_progress gets "queued: N jobs ahead of yours" (ui.progress shows it)."""
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

    def get(self, kind: str, key: str) -> Any:
        """The cached value, or None (nothing computed, nothing moved)."""
        with self._lock:
            return self._items.get((kind, key))

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


def prune(spec: PruneSpec, on_progress: Optional[ProgressFn] = None,
          on_evaluated: Optional[Callable[[dict], None]] = None, supersede_key: Optional[str] = None) -> PruneReport:
    """The pruned report; the first time a spec is pruned in this server process it is also
    stored as a run (running -> completed | failed), its model file written into the run's
    folder by the worker. Repeats come from the cache, stored once. `on_evaluated` and
    `supersede_key`: see `Executor.prune` (the metric cards first; a newer slider value
    replaces a queued older one)."""
    executor, store = get_executor(), run_store()
    return cached_call("prune", spec.to_json(),
                       lambda: _stored_prune(executor, store, spec, on_progress, on_evaluated, supersede_key))


def _stored_prune(executor: Executor, store: RunStore, spec: PruneSpec, on_progress: Optional[ProgressFn],
                  on_evaluated: Optional[Callable[[dict], None]], supersede_key: Optional[str],
                  on_measured: Optional[Callable[[PruneReport], None]] = None) -> PruneReport:
    def measured() -> PruneReport:
        report = executor.prune(spec, on_progress=on_progress, on_evaluated=on_evaluated, supersede_key=supersede_key)
        if on_measured:
            on_measured(report)  # a page draws it now; the run's model file is written next
        return report

    return store.record_prune(spec, measured, source="app", save=lambda path: executor.save(spec, path))[1]


def stored_prune(spec: PruneSpec) -> PruneReport:
    """The stored run's report of `spec`, its model file written: from the report cache, or from
    the running job once it has written the file (the page drew its measured report before)."""
    report = finished_prune(spec)
    if report is not None and report.model_path:
        return report
    job = start_prune(spec)  # joins the running job; ended meanwhile: answered from the cache
    while not job.done:
        job.wait(POLL_S)
    if job.error is not None:
        raise job.error
    return job.report


def finished_prune(spec: PruneSpec) -> Optional[PruneReport]:
    """The cached report of `spec`, or None: never starts anything."""
    return report_cache().get("prune", spec.to_json())


@st.cache_resource(show_spinner=False)
def prune_jobs() -> PruneJobs:
    return PruneJobs()


def start_prune(spec: PruneSpec, supersede_key: Optional[str] = None) -> PruneJob:
    """`prune(spec)` in a thread of this process: the job (shared with any session already
    waiting for the same spec) gets the evaluated view first, then the report, which also
    lands in the report cache. A job with the same `supersede_key` still queued in the
    executor is cancelled (a newer slider value of one session replaces the older)."""
    # resolved here, in the script thread: the job's thread has no Streamlit context
    executor, store, cache, key = get_executor(), run_store(), report_cache(), spec.to_json()

    def run(job: PruneJob) -> PruneReport:
        return cache.get_or_compute("prune", key, lambda: _stored_prune(
            executor, store, spec, job.on_progress, job.on_evaluated, supersede_key, job.on_measured))

    return prune_jobs().start(key, run)


@st.cache_data(show_spinner=False)
def methods() -> list[dict]:
    """name, description, granularity of every registered method, in registry order."""
    return [
        {"name": m.name, "description": m.description, "granularity": m.granularity, "scopes": list(m.scopes)}
        for m in METHODS.values()
    ]


@st.cache_data(show_spinner=False)
def model_names() -> list[str]:
    return list(get_executor().describe()["models"])  # the zoo module imports TensorFlow


@st.cache_data(show_spinner=False)
def dataset_names() -> list[str]:
    return list(DATASETS)


@st.cache_data(show_spinner=False)
def device() -> str:
    return str(get_executor().describe()["device"])


@st.cache_data(show_spinner=False, max_entries=64)
def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


FORMAT_LABELS = {"keras3": "Keras 3 (import keras)", "keras2": "Keras 2 (tf_keras)"}


def download_formats(model: ModelRef) -> list[str]:
    """`keras2` and `keras3`, the format `model` came in first (zoo models: keras2); read off the
    file's metadata here, without TensorFlow."""
    came_in = default_out_format(model)
    return [came_in] + [f for f in MODEL_FORMATS if f != came_in]


def pruned_model_bytes(report: PruneReport, out_format: str) -> bytes:
    """The report's pruned model file as `keras2` (the run's own file) or `keras3`: converted once
    by the executor (the worker process: Keras 3 and TensorFlow live there), kept beside the run's
    file, and proven there to load in Keras 3 with safe mode and give the same outputs."""
    if out_format not in MODEL_FORMATS:
        raise BadInput(f"unknown model format {out_format!r}: choose {' or '.join(MODEL_FORMATS)}")
    source = Path(report.model_path or stored_prune(report.spec).model_path)
    if out_format == "keras2":
        return read_bytes(str(source))
    target = source.with_name(f"{source.stem}-{out_format}.keras")
    if not target.is_file():
        get_executor().convert(report.spec, str(source), str(target), out_format)
    return read_bytes(str(target))


# -- sweeps and sensitivity -----------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def run_store() -> RunStore:
    """The process-wide run store ($PRUNESCOPE_HOME/runs.db)."""
    return open_store()


def rates_from_text(text: str) -> tuple[float, ...]:
    """"0, 20, 90" (percent) -> (0.0, 0.2, 0.9), sorted; bad entries are BadInput with the reason."""
    return tuple(sorted(set(parse_sparsities(text, percent=True))))


def sweep(spec: SweepSpec, on_point=None, on_progress: Optional[ProgressFn] = None) -> SweepReport:
    """A sweep, cached per spec. Each finished point is stored as it lands; a completed stored
    sweep of the same spec is reused, and an interrupted one resumes from its stored points
    (pruning.runs.resume, the policy the CLI shares)."""

    def compute() -> SweepReport:
        def runner(point, resume):
            return get_executor().sweep(spec, on_point=point, on_progress=on_progress, resume=resume)

        return run_stored_sweep(run_store(), spec, runner, on_point=on_point, source="app").report

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
    return [m.name for m in METHODS.values() if m.masks_only]


# -- run history, export and reports (pruning.runs.history, export, report) ------------------
def rerun(run_id: int, on_progress: Optional[ProgressFn] = None) -> int:
    """Prune a stored run's spec again, uncached, as a new run; returns the new run's id."""
    spec = run_store().get(run_id).prune_spec()
    executor = get_executor()
    return run_store().record_prune(spec, lambda: executor.prune(spec, on_progress=on_progress), source="app",
                                    save=lambda path: executor.save(spec, path))[0]


def list_runs() -> list[Run]:
    """Every stored run, newest first (read fresh: other sessions and the CLI add runs)."""
    return run_store().list()


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    return history.runs_frame(runs)


def compare_frame(runs: list[Run]) -> pd.DataFrame:
    return history.compare_frame(runs)


def pareto_rows(runs: list[Run], model: str, dataset: str) -> tuple[pd.DataFrame, dict, Task]:
    return history.pareto_rows(run_store(), runs, model, dataset)


def size_stages(run_id: int) -> pd.DataFrame:
    return history.size_stages(run_store(), run_id)


def deploy(run_id: int, on_progress: Optional[ProgressFn] = None, options: DeploySpec = DeploySpec()) -> dict:
    """The run's TFLite float32 and int8 files, converted and measured by the executor (the worker
    process: this one never imports TensorFlow), once per options; kept in the run's details.
    A Streamlit rerun raised from `on_progress` (Cancel) stops the worker's job."""
    def compute(spec: PruneSpec, path: str, opts: DeploySpec) -> dict:
        return get_executor().deploy(spec, path, opts, on_progress=on_progress)

    return stored_deploy(run_store(), run_id, options, compute)


def deploy_frame(summary: dict) -> pd.DataFrame:
    return history.deploy_frame(summary)


def deploy_figures(run_id: int) -> Optional[dict]:
    """What the stored deploy report says (export.deploy_summary), None before any deploy."""
    run = run_store().get(run_id)
    stored = run.details.get("deploy")
    return deploy_summary(run, stored) if stored else None


def recipe_bytes(run_id: int) -> bytes:
    return recipe_text(run_store().get(run_id)).encode()


def report_html(run_id: int) -> bytes:
    """The one-file HTML report (about 5 MB: plotly.js is inside, so it opens offline);
    rebuilt only when what it shows changed (name, note, TFLite figures, sweeps)."""
    run = run_store().get(run_id)
    sweeps = history.related_sweeps(run_store(), run)
    key = json.dumps([run.id, run.name, run.note, run.details.get("tflite"), run.details.get("deploy"),
                      [(sweep.id, len(points)) for sweep, points in sweeps]], sort_keys=True)
    return cached_call("report_html", key, lambda: build_report(run, sweeps).encode("utf-8"))


def run_points(run_id: int) -> list[dict]:
    return run_store().points(run_id)


def rename_run(run_id: int, name: str, note: str) -> None:
    run_store().rename(run_id, name)
    run_store().set_note(run_id, note)


def delete_run(run_id: int) -> None:
    run_store().delete(run_id)
