"""Run history as tables: stored runs in, pandas frames and plain rows out, no Streamlit.

The Runs page, the HTML report and the CLI read the store through these, so they agree.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import pandas as pd

from ..measure.tasks import Task, get_task
from .export import size_waterfall
from .store import Run, RunStore

RUNS_COLUMNS = ("id", "kind", "status", "name", "model", "dataset", "method", "target_sparsity", "sparsity",
                "baseline_accuracy", "accuracy", "latency_ms", "gzip_bytes", "nonzero_params", "finetune_epochs",
                "seed", "device", "note", "error", "created_at")
COMPARE_METRICS = ("accuracy", "robust_accuracy", "train_accuracy", "loss", "nonzero_params", "effective_flops",
                   "size_bytes", "gzip_bytes", "latency_ms")
PARETO_COSTS = ("latency_ms", "gzip_bytes")  # a Pareto point's columns: method, sparsity, source, metric, costs
POINT_STATES = ("completed", "interrupted")  # runs whose measured points count as history


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run, the columns of `python -m pruning runs --json` (RUNS_COLUMNS).

    Args:
        runs: stored runs, in the order the table shows them.

    Returns:
        A frame with RUNS_COLUMNS; `created_at` as a pandas timestamp.
    """
    frame = pd.DataFrame([run.summary() for run in runs], columns=list(RUNS_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s")
    return frame


def compare_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """Metrics side by side (one column per run) and each run's change against the first one.

    Args:
        runs: two or more prune runs; the first is the reference of the `Δ` columns.

    Returns:
        One row per metric (`sparsity`, then COMPARE_METRICS): `metric`, a column per run
        label, and `Δ <label>` for every run after the first (None where either is missing).
    """
    rows = []
    first = runs[0]
    for key in ("sparsity",) + COMPARE_METRICS:
        row: dict[str, Any] = {"metric": key}
        for run in runs:
            value = run.metrics.get(key) if key == "sparsity" else run.metrics.get("pruned", {}).get(key)
            row[run.label] = value
            if run is not first:
                base = row[first.label]
                row[f"Δ {run.label}"] = None if value is None or base is None else value - base
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_rows(store: RunStore, runs: Sequence[Run], model: str,
                dataset: str) -> tuple[pd.DataFrame, dict, Task]:
    """Pareto points of one model on one dataset, its dense baseline and its task.

    Args:
        store: where the sweeps' points are read from.
        runs: stored runs, newest first (the baseline comes from the first that has one).
        model: the model name the runs are filtered by.
        dataset: the dataset name the runs are filtered by.

    Returns:
        (points, baseline, task): completed prune runs and the points of completed or
        interrupted sweeps, with the columns method, sparsity, source, the task's headline
        metric (`accuracy`, `mae`) and PARETO_COSTS, and no missing value; the baseline
        metrics; the task of the newest run (runs measured with another task are left out).
    """
    rows, baseline = [], {}
    mine = [run for run in runs if run.model == model and run.dataset == dataset and run.status in POINT_STATES]
    task = mine[0].task if mine else get_task(None)
    keys = (task.metric, *PARETO_COSTS)
    for run in mine:
        if run.task.metric != task.metric:
            continue
        if run.kind == "prune" and run.status == "completed":
            rows.append({"method": run.method, "sparsity": run.metrics["sparsity"], "source": run.label,
                         **{k: run.metrics["pruned"].get(k) for k in keys}})
            baseline = baseline or run.metrics["baseline"]
        elif run.kind == "sweep":
            for point in store.points(run.id):
                rows.append({"method": point["method"], "sparsity": point["sparsity"],
                             "source": f"sweep #{run.id}", **{k: point.get(k) for k in keys}})
            baseline = baseline or run.metrics.get("baseline", {})
    frame = pd.DataFrame(rows, columns=["method", "sparsity", "source", *keys])
    return frame.dropna(subset=list(keys)), baseline, task


def related_sweeps(store: RunStore, run: Run) -> list[tuple[Run, list[dict[str, Any]]]]:
    """Sweeps to draw beside a run, each with its stored points.

    Args:
        store: the run store.
        run: a prune run (its sweeps: same model and data, with points, interrupted ones
            too) or a sweep/sensitivity run (itself).

    Returns:
        (sweep run, its points) pairs, newest sweep first.
    """
    if run.kind != "prune":
        return [(run, store.points(run.id))]
    found = []
    for sweep in store.list(kind="sweep", model=run.model, dataset=run.dataset):
        if sweep.spec.get("model") == run.spec.get("model") and sweep.spec.get("data") == run.spec.get("data"):
            rows = store.points(sweep.id)
            if rows:
                found.append((sweep, rows))
    return found


def size_stages(store: RunStore, run_id: int, tflite: Optional[dict[str, Any]] = None,
                deploy: Optional[dict[str, Any]] = None) -> pd.DataFrame:
    """A completed prune run's bytes and accuracy from dense .keras to gzipped int8 TFLite
    (export.size_waterfall; the run's stored deploy report unless one is given)."""
    return size_waterfall(store.get(run_id), tflite, deploy)


def deploy_columns(metric: str = "accuracy") -> tuple[str, ...]:
    """deploy_frame's columns, the headline metric's named by its key (`accuracy`, `mae`)."""
    return ("model", "runs on", metric, "bytes", "gzip_bytes", "sparsity", "memory_bytes", "latency_ms",
            "latency_all_ms", f"{metric}_per_mflop", f"{metric}_per_mb")


def deploy_frame(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Where a pruned model runs, one row per model: Keras dense and pruned, then every TFLite file.

    Args:
        summary: export.deploy_summary of a run (the CLI's `export --json`).

    Returns:
        deploy_columns(metric): `latency_ms` is Keras' (traced function) or TFLite's on 1 thread,
        `latency_all_ms` TFLite's on every thread (None for Keras); per MFLOP counts the
        effective (nonzero-weight) MACs of the model a file came from; per MB of `memory_bytes`.
    """
    metric = summary["metric"]
    keras_rows = {row["model"]: row for row in summary["keras"]}
    mflops = {"dense": summary["baseline"]["effective_flops"], "pruned": summary["pruned"]["effective_flops"]}

    def per(value: Optional[float], amount: Optional[float]) -> Optional[float]:
        return None if value is None or not amount else value / (amount / 1e6)

    rows = [{"model": f"{name} .keras", "runs on": "Keras", metric: row[metric], "bytes": None,
             "gzip_bytes": None, "sparsity": 1 - (row["weights"] - row["zeros"]) / row["weights"],
             "memory_bytes": row["memory_bytes"], "latency_ms": row["latency_ms"], "latency_all_ms": None,
             f"{metric}_per_mflop": per(row[metric], mflops[name]), f"{metric}_per_mb": per(row[metric], row["memory_bytes"])}
            for name, row in keras_rows.items()]
    for row in summary["artifacts"]:
        source = row["artifact"].split()[0]
        rows.append({"model": row["artifact"], "runs on": "TFLite interpreter", metric: row[metric],
                     "bytes": row["bytes"], "gzip_bytes": row["gzip_bytes"], "sparsity": row["sparsity"],
                     "memory_bytes": row["memory_bytes"], "latency_ms": row["latency_1t_ms"],
                     "latency_all_ms": row["latency_all_ms"], f"{metric}_per_mflop": per(row[metric], mflops[source]),
                     f"{metric}_per_mb": per(row[metric], row["memory_bytes"])})
    return pd.DataFrame(rows, columns=list(deploy_columns(metric)))
