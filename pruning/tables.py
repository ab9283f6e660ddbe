"""The reference table: sweep rows shown like the article's table, in Markdown, with the
Wilson confidence band its accuracy column carries. Plain data, no TensorFlow.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import pandas as pd

from .measure.tasks import get_task

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


# The reference table (the article's): (column title, row key, how to show it).
TABLE_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("method", "method", str),
    ("sparsity", "sparsity", lambda v: f"{v:.1%}"),
    ("test accuracy", "accuracy", lambda v: f"{v:.2%}"),
    ("accuracy loss", "accuracy_loss", lambda v: f"{v * 100:+.2f} pt"),
    ("latency (ms)", "latency_ms", lambda v: f"{v:.2f}"),
    ("speedup", "speedup", lambda v: f"{v:.2f}x"),
    ("nonzero params (M)", "nonzero_params", lambda v: f"{v / 1e6:.4f}"),
    ("gzip size (MB)", "gzip_bytes", lambda v: f"{v / 1e6:.3f}"),
    ("FLOPs reduction", "flops_reduction", lambda v: f"{v:.1%}"),
    # measure.memory: weights as held + graph-measured peak activations of one sample
    ("memory (MB)", "memory_bytes", lambda v: f"{v / 1e6:.3f}"),
    ("accuracy per MFLOP", "accuracy_per_mflop", lambda v: f"{v:.4g}"),
    ("accuracy per MB", "accuracy_per_mb", lambda v: f"{v:.4g}"),
    ("robust accuracy", "robust_accuracy", lambda v: f"{v:.2%}"),
    ("train accuracy", "train_accuracy", lambda v: f"{v:.2%}"),
)


def wilson_interval(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion measured on `n` samples.

    Unlike the normal approximation it stays inside [0, 1] and does not collapse to zero
    width at 0 % or 100 %, which pruned models on small test sets often hit.

    >>> low, high = wilson_interval(0.9, 100)
    >>> round(low, 4), round(high, 4), round((high - low) / 2, 4)
    (0.8256, 0.9448, 0.0596)
    """
    if n <= 0:
        return float("nan"), float("nan")
    denom = 1.0 + z * z / n
    centre = (accuracy + z * z / (2 * n)) / denom
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def table_columns(task: str = "multiclass") -> tuple[tuple[str, str, Callable[[Any], str]], ...]:
    """TABLE_COLUMNS, with the headline metric's columns for a task not measured in accuracy."""
    row = get_task(task)
    if row.metric == "accuracy":
        return TABLE_COLUMNS
    m, name = row.metric, row.label

    def number(v: Any) -> str:
        return f"{v:.4g}"

    swap = {"accuracy": (f"test {name}", m, number), "accuracy_loss": (f"{name} change (+ worse)", "metric_change",
                                                                        lambda v: f"{v:+.4g}"),
            "robust_accuracy": (f"robust {name}", f"robust_{m}", number),
            "accuracy_per_mflop": (f"{name} per MFLOP", f"{m}_per_mflop", number),
            "accuracy_per_mb": (f"{name} per MB", f"{m}_per_mb", number),
            "train_accuracy": (f"train {name}", f"train_{m}", number)}
    return tuple(swap.get(key, (title, key, fmt)) for title, key, fmt in TABLE_COLUMNS)


def reference_table(rows: pd.DataFrame, task: str = "multiclass") -> pd.DataFrame:
    """Rows (as from a SweepReport) shown like the reference table: strings, one column each."""
    columns = table_columns(task)
    return pd.DataFrame(
        [{title: _show(fmt, row[key]) for title, key, fmt in columns} for _, row in rows.iterrows()],
        columns=[title for title, _, _ in columns],
    )


def _show(fmt: Callable[[Any], str], value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return fmt(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A DataFrame of strings as a GitHub Markdown table (no `tabulate` dependency)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])
