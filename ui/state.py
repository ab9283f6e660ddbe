"""Session-state keys, in one place: pages use these constants, never string literals.

Keys starting with `ps_` persist across pages; widget keys are derived from them.
"""
from __future__ import annotations

DATASET = "ps_dataset"  # a dataset name, or UPLOADED_DATA
MODEL = "ps_model"  # a zoo name, or UPLOADED_MODEL
MODEL_FILE = "ps_model_file"  # dict(ModelRef) of this session's uploaded model
DATA_FILE = "ps_data_file"  # dict(DataRef) of this session's uploaded dataset
UPLOAD_TOKEN = "ps_upload_token"  # random; names this session's private upload folder
METHOD = "ps_method"
SPARSITY = "ps_sparsity"
SCOPE = "ps_scope"
EXCLUDE = "ps_exclude"
FINETUNE = "ps_finetune"
HIST_LAYER = "ps_hist_layer"

UPLOADED_MODEL = "uploaded model"
UPLOADED_DATA = "uploaded dataset"

DEFAULT_DATASET = "digits"
DEFAULT_MODEL = "mlp"  # the first screen's model: its curve is flat to ~70% and bends at ~80% (below)


def widget_key(key: str) -> str:
    """The widget's own key: Streamlit drops widget state on pages that don't render it,
    so the value lives under `key` and is copied into the widget on every run."""
    return f"_w_{key}"

# Sweep and Sensitivity pages (issue 4)
SWEEP_METHODS = "ps_sweep_methods"
SWEEP_RATES = "ps_sweep_rates"  # the grid as text, in percent: "0, 20, 40"
SWEEP_FINETUNE = "ps_sweep_finetune"
SWEEP_SPEC = "ps_sweep_spec"  # JSON of the last sweep started, so reruns redraw it (cached)
SENS_RATES = "ps_sens_rates"
SENS_METHOD = "ps_sens_method"
SENS_SPEC = "ps_sens_spec"  # JSON of the last scan started
PLAN_MODE = "ps_plan_mode"  # "target" or "budget"
PLAN_TARGET = "ps_plan_target"
PLAN_BUDGET = "ps_plan_budget"
PLAN_BUDGET_UNITS = "ps_plan_budget_units"  # the same budget in the metric's own units (regression: MAE)
PLAN = "ps_plan"  # dict layer -> sparsity applied on the Prune page (PruneSpec.layer_sparsity)

REFERENCE_GRID = "0, 20, 40, 60, 80, 90, 95"
FINE_GRID = ", ".join(str(5 * i) for i in range(20))

# Runs page (issue 5)
RUNS_MODELS = "ps_runs_models"  # filters: model, dataset, method names
RUNS_DATASETS = "ps_runs_datasets"
RUNS_METHODS = "ps_runs_methods"
RUNS_COMPARE = "ps_runs_compare"  # run ids picked for side-by-side comparison
RUNS_FOCUS = "ps_runs_focus"  # the one run to rename, note, delete, re-run, export
RUNS_PARETO = "ps_runs_pareto"  # "model · dataset" whose runs the Pareto charts show
RUNS_REPORT = "ps_runs_report"  # run id whose HTML report was built (shown as a download)
RUNS_DEPLOY = "ps_runs_deploy"  # run id whose TFLite float32 + int8 conversion was asked for (Cancel clears it)
PRESENTATION = "ps_presentation"
MIXED_PRECISION = "ps_mixed_precision"
RECALIBRATE_BN = "ps_recalibrate_bn"

# Prune page (issue 11): the session's visited points and the trade-off chart
VISITS = "ps_visits"  # list of plain dicts, one per distinct prune seen (ui.visits), oldest first
VISITS_LIMIT = 200  # the oldest visit is dropped beyond this: the chart stays readable and small
TRADEOFF_CHART = "tradeoff_chart"  # the chart's widget key: a clicked point moves the controls there
PRUNE_JOBS_KEY = "ps_prune_jobs_key"  # random: this session's prunes supersede its own queued ones only

# What the first screen shows (measured, BENCHMARKS.md "First screen: the default trade-off"):
# mlp on digits, magnitude with one global threshold keeps 95.8% of the dense 97.5% at 70%
# sparsity and bends after (91.4% at 80%, 73.6% at 90%); per layer it bends 10 points
# earlier, and the cnn (flat only to 40%) and resnet20 (gone by 60%, 10x slower per move)
# tell the story worse. The mlp has no BatchNorm, so there is nothing to re-estimate.
DEFAULT_METHOD = "magnitude"
DEFAULT_SPARSITY = 0.7
DEFAULT_SCOPE = "global"
DEFAULT_RECALIBRATE_BN = False
