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

import pandas as pd
import streamlit as st

from pruning.executors.base import Executor, make_executor
from pruning.methods import METHODS
from pruning.model.datasets import DATASETS
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

    def compute() -> PruneReport:
        executor = get_executor()
        return run_store().record_prune(
            spec, lambda: executor.prune(spec, on_progress=on_progress, on_evaluated=on_evaluated,
                                         supersede_key=supersede_key),
            source="app", save=lambda path: executor.save(spec, path))[1]

    return cached_call("prune", spec.to_json(), compute)


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


def pareto_rows(runs: list[Run], model: str, dataset: str) -> tuple[pd.DataFrame, dict]:
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
