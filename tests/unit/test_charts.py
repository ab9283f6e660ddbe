"""The figures use the headline metric, its label and its direction (DESIGN §5), on exact data.

Pure: DataFrames in, plotly figures out; a regression front minimises MAE, a classifier's
maximises accuracy, and the sensitivity heatmap speaks points or MAE units.
"""
from __future__ import annotations

import pandas as pd
import pytest

from pruning.measure.tasks import TASKS
from pruning.runs import figures
from ui import charts

REGRESSION, MULTICLASS, MULTILABEL = TASKS["regression"], TASKS["multiclass"], TASKS["multilabel"]

POINTS = pd.DataFrame({
    "method": ["magnitude", "magnitude", "neurons", "neurons"],
    "sparsity": [0.5, 0.9, 0.5, 0.9],
    "latency_ms": [4.0, 4.0, 2.0, 1.0],
    "gzip_bytes": [900, 500, 600, 300],
    "mae": [0.20, 0.35, 0.30, 0.50],
    "accuracy": [0.95, 0.80, 0.85, 0.60],
})


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_a_regression_front_minimises_mae():
    front = charts.pareto_front(POINTS, "gzip_bytes", "mae", higher_is_better=False)
    # by size: 300 (0.50), 500 (0.35), 600 (0.30: better than 0.35), 900 (0.20)
    assert front.index.tolist() == [3, 1, 2, 0]
    front = charts.pareto_front(POINTS, "latency_ms", "mae", higher_is_better=False)
    assert front.index.tolist() == [3, 2, 0]  # 4.0 ms twice: only the lower MAE counts


def test_a_classifier_front_maximises_accuracy():
    front = charts.pareto_front(POINTS, "latency_ms", "accuracy")
    assert front.index.tolist() == [3, 2, 0]
    assert charts.pareto_front(POINTS, "gzip_bytes").index.tolist() == [3, 1, 2, 0]


def test_the_regression_pareto_figure_plots_mae_with_its_label():
    fig = charts.pareto_figure(POINTS, "latency_ms", "latency (ms / batch)", {"latency_ms": 4.5, "mae": 0.18},
                               REGRESSION)
    assert list(trace(fig, "neurons").y) == [0.30, 0.50]
    assert list(trace(fig, "Pareto front").x) == [1.0, 2.0, 4.0]
    assert list(trace(fig, "Pareto front").y) == [0.50, 0.30, 0.20]
    assert list(trace(fig, "dense baseline").y) == [0.18]
    assert fig.layout.yaxis.title.text == "test MAE" and fig.layout.yaxis.tickformat == ""
    assert fig.layout.title.text == "MAE vs latency (ms / batch) (lower is better)"
    assert "MAE %{y:.4g}" in trace(fig, "neurons").hovertemplate


def test_the_classifier_pareto_figure_is_unchanged_and_multilabel_names_its_metric():
    fig = charts.pareto_figure(POINTS, "gzip_bytes", "gzip size (bytes)", {"gzip_bytes": 1000, "accuracy": 0.97})
    assert list(trace(fig, "Pareto front").y) == [0.60, 0.80, 0.85, 0.95]
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.title.text == "Accuracy vs gzip size (bytes)"
    fig = charts.pareto_figure(POINTS, "gzip_bytes", "gzip size (bytes)", {"gzip_bytes": 1000, "accuracy": 0.97},
                               MULTILABEL)
    assert fig.layout.yaxis.title.text == "test mean per-label accuracy"


DROP = pd.DataFrame([[0.0125, 0.25], [-0.005, 0.1]], index=["conv", "dense"], columns=[0.5, 0.9])


def test_the_heatmap_shows_accuracy_drops_in_points():
    fig = charts.sensitivity_heatmap(DROP, MULTICLASS)
    assert fig.data[0].z.tolist() == [[1.25, 25.0], [-0.5, 10.0]]
    assert fig.data[0].zmax == 25.0 and fig.data[0].colorbar.title.text == "drop (pt)"
    assert fig.layout.title.text == "Sensitivity: accuracy drop with one layer pruned"


def test_the_heatmap_shows_mae_rises_in_its_units():
    fig = charts.sensitivity_heatmap(DROP, REGRESSION)
    assert fig.data[0].z.tolist() == [[0.0125, 0.25], [-0.005, 0.1]]  # not x100: MAE is no share
    assert fig.data[0].zmax == 0.25 and fig.data[0].colorbar.title.text == "MAE worse by"
    assert fig.layout.title.text == "Sensitivity: MAE rise (worse) with one layer pruned"
    assert "MAE rise (worse) %{z:.4g}" in fig.data[0].hovertemplate


def test_sensitivity_curves_and_run_comparisons_use_the_metric():
    values = pd.DataFrame([[0.21, 0.40]], index=["dense"], columns=[0.5, 0.9])
    fig = charts.sensitivity_curves_figure(values, 0.2, REGRESSION)
    assert list(fig.data[0].y) == [0.21, 0.40] and fig.layout.yaxis.title.text == "test MAE"
    assert fig.layout.title.text == "MAE with one layer pruned" and fig.layout.yaxis.tickformat == ""
    points = [{"method": "neurons", "sparsity": 0.9, "mae": 0.5}, {"method": "neurons", "sparsity": 0.5, "mae": 0.3}]
    fig = charts.compare_curves_figure([("sweep #1", points)], [("run 2", "magnitude", 0.7, 0.25)], REGRESSION)
    assert list(fig.data[0].y) == [0.3, 0.5] and list(fig.data[1].y) == [0.25]
    assert fig.layout.yaxis.title.text == "test MAE"


def test_the_trade_off_names_the_task_metric():
    visit = {"key": "k", "method": "neurons", "granularity": "structured", "metric": "mae", "task": "regression",
             "higher_is_better": False, "value": 0.4, "baseline": 0.25, "sparsity": 0.6, "scope": "layer",
             "finetune_epochs": 0, "recalibrate_bn": False, "partial": False,
             "restores": ["neurons", 0.6, "layer", 0, False]}
    fig = charts.tradeoff_figure([visit], "k")
    assert fig.layout.yaxis.title.text == "test MAE" and fig.layout.yaxis.tickformat == ""
    fig = charts.tradeoff_figure([dict(visit, metric="accuracy", task="multilabel", value=0.7, baseline=0.8)], "k")
    assert fig.layout.yaxis.title.text == "test mean per-label accuracy"


@pytest.mark.parametrize("task, key, text", [(REGRESSION, "mae", "MAE 0.25"), (MULTICLASS, "accuracy", "91.0%")])
def test_report_figures_show_the_headline_metric(task, key, text):
    m = task.metric
    base = {m: 0.25 if m == "mae" else 0.91, f"train_{m}": 0.2 if m == "mae" else 0.95, "nonzero_params": 10}
    fig = figures.metrics_figure(base, dict(base, nonzero_params=5), "magnitude", task)
    assert list(fig.data[0].y) == [base[m], base[f"train_{m}"]]  # no robust value given: not drawn
    stages = pd.DataFrame({"stage": ["dense .keras", "pruned .keras"], "bytes": [2048, 1024],
                           key: [base[m], base[m]]})
    assert figures.waterfall_figure(stages).data[0].text[0] == f"2.0 KB · {text}"
    points = [{"method": "magnitude", "sparsity": 0.5, key: 0.3}]
    assert figures.tradeoff_figure(points, y=key).layout.yaxis.title.text == f"test {'MAE' if m == 'mae' else 'accuracy'}"
