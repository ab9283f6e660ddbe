"""Sensitivity page: each layer pruned alone -> heatmap of headline-metric drops -> a per-layer plan.

Reads widgets, builds specs, calls the cached backend, renders; the plan goes to the Prune page.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pruning.errors import BadInput
from pruning.measure.tasks import get_task
from pruning.plan import plan_spec
from pruning.specs import PruneSpec, SensitivitySpec
from ui import backend, cards, charts, state
from ui.sidebar import (
    load_baseline,
    persistent,
    progress_to,
    run_gate,
    select_model_and_data,
    show_error,
)

st.set_page_config(page_title="PruneScope · Sensitivity", page_icon="🌡️", layout="wide")
model_ref, data_ref = select_model_and_data()
st.title("Sensitivity")
st.caption("Each prunable layer is pruned alone at each sparsity, the rest kept dense, and the headline "
           "metric measured on the test split: layers that lose little can take more sparsity.")

baseline = load_baseline(model_ref, data_ref)
if baseline is None:
    st.stop()

mask_methods = backend.scan_methods()
controls = st.columns([3, 2])
rates_text = persistent(st.text_input, "Sparsities (%)", state.SENS_RATES, "20, 40, 60, 80, 90", controls[0])
method = persistent(st.selectbox, "Method", state.SENS_METHOD, "magnitude", controls[1], options=mask_methods)
try:
    spec = SensitivitySpec(model=model_ref, data=data_ref, sparsities=backend.rates_from_text(rates_text), method=method)
except BadInput as exc:
    show_error(exc)
    st.stop()
run_gate(spec.to_json(), state.SENS_SPEC, "scan")
bar = st.empty()
try:
    report = backend.sensitivity(spec, on_progress=progress_to(bar))
    TASK = get_task(report.task)  # the headline metric: drops are in its units, positive is worse
except BadInput as exc:
    bar.empty()
    show_error(exc)
    st.stop()
bar.empty()
t = report.timing_s
st.caption(f"{int(t['evaluations'])} test-split evaluations on {report.n_test:,} samples in {t['evaluate']:.1f} s; "
           f"{t['total']:.1f} s in all. Dense test {TASK.label} {cards.shown(TASK, report.baseline_accuracy)}"
           + ("." if TASK.higher_is_better else "; drops are rises in MAE (worse), in its units."))

left, right = st.columns(2)
left.plotly_chart(charts.sensitivity_heatmap(report.drop, TASK), key="sens_heatmap")
right.plotly_chart(charts.sensitivity_curves_figure(report.accuracy, report.baseline_accuracy, TASK), key="sens_curves")

st.subheader("Per-layer sparsity plan")
cols = st.columns([2, 3])
PERCENT = TASK.unit == "%"  # a share: the budget is in points; MAE: in the targets' units
mode = persistent(st.radio, "Plan for", state.PLAN_MODE, "target", cols[0], options=["target", "budget"],
                  format_func=lambda m: {"target": "an overall sparsity", "budget": f"a {TASK.label}-drop budget"}[m],
                  horizontal=True)
top = max(float(r) for r in spec.sparsities)
try:
    if mode == "target":
        target = persistent(st.slider, "Overall sparsity", state.PLAN_TARGET, min(0.7, top), cols[1],
                            min_value=0.0, max_value=top, step=0.01,
                            help="Counted in weights over all scanned layers; at most the largest scanned sparsity.")
        plan = backend.plan(report, target=float(target))
    else:
        if PERCENT:
            budget = persistent(st.slider, f"{charts.upper_first(TASK.label)}-drop budget (points)", state.PLAN_BUDGET, 1.0,
                                cols[1], min_value=0.0, max_value=20.0, step=0.25,
                                help="Estimated total drop, assuming the single-layer drops add up: evaluate to check.")
        else:
            budget = persistent(st.number_input, f"{TASK.label} rise budget (its units; lower is better)",
                                state.PLAN_BUDGET_UNITS, 0.05, cols[1], min_value=0.0, step=0.01, format="%.4g",
                                help="Estimated total rise, assuming the single-layer rises add up: evaluate to check.")
        plan = backend.plan(report, budget=float(budget) / 100 if PERCENT else float(budget))
except BadInput as exc:
    show_error(exc)
    st.stop()

sizes = report.layer_params()
overall = sum(plan[k] * sizes[k] for k in plan) / sum(sizes.values())
st.plotly_chart(charts.plan_figure(plan, overall, method), key="plan_chart")

# evaluate the plan beside uniform pruning at the same overall sparsity
uniform_spec = PruneSpec(model=model_ref, data=data_ref, method=method, target_sparsity=round(overall, 6),
                         layers=tuple(plan))
planned_spec = plan_spec(uniform_spec, plan)
try:
    with st.spinner("Evaluating the plan and uniform pruning..."):
        uniform, planned = backend.prune(uniform_spec), backend.prune(planned_spec)
except BadInput as exc:
    show_error(exc)
    st.stop()
HEADLINE = f"test {TASK.label}"
compare = pd.DataFrame([
    {"pruning": "dense", "sparsity": 0.0, HEADLINE: uniform.baseline[TASK.metric],
     "nonzero params": uniform.baseline["nonzero_params"], "gzip size": cards.human_bytes(uniform.baseline["gzip_bytes"])},
    {"pruning": f"uniform {overall:.1%}", "sparsity": uniform.sparsity, HEADLINE: uniform.pruned[TASK.metric],
     "nonzero params": uniform.pruned["nonzero_params"], "gzip size": cards.human_bytes(uniform.pruned["gzip_bytes"])},
    {"pruning": "plan", "sparsity": planned.sparsity, HEADLINE: planned.pruned[TASK.metric],
     "nonzero params": planned.pruned["nonzero_params"], "gzip size": cards.human_bytes(planned.pruned["gzip_bytes"])},
])
st.dataframe(compare, hide_index=True, width="stretch", key="plan_compare",
             column_config={"sparsity": st.column_config.NumberColumn(format="percent"),
                            HEADLINE: st.column_config.NumberColumn(format="percent" if TASK.unit == "%" else "%.4g")})
st.dataframe(pd.DataFrame({"layer": list(plan), "weights": [sizes[k] for k in plan],
                           "planned sparsity": list(plan.values())}),
             hide_index=True, width="stretch", key="plan_table",
             column_config={"planned sparsity": st.column_config.NumberColumn(format="percent")})

if st.button("Apply this plan on the Prune page", key="apply_plan"):
    st.session_state[state.PLAN] = dict(plan)
    st.session_state[state.SPARSITY] = round(overall, 2)
    st.session_state[state.METHOD] = method
    st.switch_page("pages/1_Prune.py")
