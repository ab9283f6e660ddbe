"""Prune page: one method, one sparsity -> live metrics, the trade-off so far, per-layer views.

Reads widgets, builds a PruneSpec, calls the cached backend, renders the report; only the
fragment below reruns on a control change, and its figures come from the figure cache.
"""
from __future__ import annotations

import json
import secrets
import time
from typing import Optional

import streamlit as st

from pruning.errors import BadInput
from pruning.executors.errors import Cancelled
from pruning.reports import PruneReport
from pruning.specs import PruneSpec
from ui import backend, cards, charts, figure_cache, prune_jobs, state, visits
from ui.progress import progress_to
from ui.sidebar import (
    chart_height,
    controls_area,
    load_baseline,
    persistent,
    presentation_toggle,
    select_model_and_data,
    show_error,
)

st.set_page_config(page_title="PruneScope · Prune", page_icon="✂️", layout="wide")
model_ref, data_ref = select_model_and_data()
presenting = presentation_toggle()
st.title("Prune")

baseline = load_baseline(model_ref, data_ref)
if baseline is None:
    st.stop()


def read_controls(model_ref, data_ref, baseline, presenting: bool) -> PruneSpec:
    """The page's controls -> the PruneSpec they describe (BadInput where they describe none)."""
    methods = {m["name"]: m for m in backend.methods()}
    area = controls_area(presenting)
    controls = area.columns([2, 3, 1.3, 1.2])
    method_name = persistent(
        st.selectbox, "Method", state.METHOD, state.DEFAULT_METHOD, controls[0], options=list(methods),
        format_func=lambda name: f"{name} ({methods[name]['granularity']})",
    )
    method = methods[method_name]
    sparsity = persistent(
        st.slider, "Target sparsity", state.SPARSITY, state.DEFAULT_SPARSITY, controls[1],
        min_value=0.0, max_value=0.99, step=0.01,
        help="Fraction of the prunable weights to set to zero. The measured value is shown beside it.",
    )
    default_scope = state.DEFAULT_SCOPE if state.DEFAULT_SCOPE in method["scopes"] else method["scopes"][0]
    scope = persistent(
        st.radio, "Scope", state.SCOPE, default_scope, controls[2], options=method["scopes"], horizontal=True,
        format_func=lambda s: {"layer": "each layer", "global": "global threshold"}[s],
        help="Each layer: every layer reaches the target. Global: one threshold over all layers.",
    )
    finetune = persistent(
        st.number_input, "Fine-tune epochs", state.FINETUNE, 0, controls[3], min_value=0, max_value=50, step=1,
        help="Train with the masks fixed after pruning (zeros stay zeros). Needs training data.",
    )
    area.caption(f"**{method_name}** — {method['description']} Granularity: {method['granularity']}.")
    has_bn = bool((baseline.layers["type"] == "BatchNormalization").any())
    recalibrate = persistent(
        st.checkbox, "Re-estimate BatchNorm statistics after pruning", state.RECALIBRATE_BN, state.DEFAULT_RECALIBRATE_BN, area,
        help="Zeroed weights shift what every BatchNorm sees; re-estimating its moving averages on "
             "training data (no weights trained) often recovers much of the one-shot loss.",
    ) if has_bn else False
    mixed = persistent(
        st.checkbox, "Mixed precision fine-tuning (GPU)", state.MIXED_PRECISION, False, area,
        help="Fine-tune in float16 with float32 weights on a GPU with compute capability 7.0+; "
             "elsewhere it falls back to float32 and the report says so.",
    ) if finetune else False

    prunable_layers = baseline.layers.loc[baseline.layers["prunable"], "name"].tolist()
    excluded = persistent(
        st.multiselect, "Exclude layers (keep dense)", state.EXCLUDE, [], area, options=prunable_layers,
    )
    selected = tuple(name for name in prunable_layers if name not in excluded)

    plan = st.session_state.get(state.PLAN)
    if plan:
        info, clear = st.columns([5, 1])
        info.info(f"Applying the per-layer plan from Sensitivity ({len(plan)} layers, each its own sparsity); "
                  "the slider's value is used only for layers the plan does not name.", icon="🗺️")
        if clear.button("Clear plan", key="clear_plan"):
            del st.session_state[state.PLAN]
            st.rerun()  # the whole page: the plan came from another page's state

    return PruneSpec(
        model=model_ref, data=data_ref, method=method_name, target_sparsity=float(sparsity), scope=scope,
        layers=None if not excluded else selected, finetune_epochs=int(finetune),
        layer_sparsity=tuple(plan.items()) if plan else None, mixed_precision=bool(mixed),
        recalibrate_bn=bool(recalibrate),
    )


def show_tradeoff(report, presenting: bool) -> None:
    """Every point this session visited on this model, the current one ringed; a click moves
    the controls to the clicked point (ui.visits.move_to_clicked, before the rerun)."""
    seen = sorted(visits.record(report), key=lambda v: v["key"])  # a move back to a seen value: same figure
    key = json.dumps([[v["key"] for v in seen], report.spec.to_json()])
    fig = figure_cache.figure("tradeoff", key, lambda: charts.tradeoff_figure(seen, report.spec.to_json()),
                              chart_height(presenting))
    st.plotly_chart(fig, key=state.TRADEOFF_CHART, on_select=visits.move_to_clicked, selection_mode="points")
    if len(seen) < 3:
        st.caption("Move the slider (or pick another method): every point you visit is added to this chart, "
                   "and a click on a point brings you back to it.")


def await_report(spec: PruneSpec, bar, slot, task: str) -> Optional[PruneReport]:
    """Start (or join) the prune of `spec` in the background and wait for it in this run: its
    metric cards into `slot` as soon as its evaluation returns (sizes and latency "measuring…"),
    its report once measured; None if it still runs after prune_jobs.STREAM_WAIT_S.

    Every look at the job redraws `bar`, and each redraw is where Streamlit lets a newer slider
    value interrupt this run: the job goes on, and its report lands in the cache.
    """
    if state.PRUNE_JOBS_KEY not in st.session_state:
        st.session_state[state.PRUNE_JOBS_KEY] = secrets.token_hex(8)
    job = backend.start_prune(spec, supersede_key=st.session_state[state.PRUNE_JOBS_KEY])
    shown, draw = False, progress_to(bar)  # the queue position while the job waits, then a bar
    while not job.ready:  # the report is drawn once measured; its file is stored meanwhile
        if job.view is not None and not shown:
            with slot.container():
                cards.evaluated_cards(job.view, task)
                cards.resource_cards(job.view["baseline"], job.view["pruned"], task)
            shown = True
        waited = time.monotonic() - job.started
        if waited > prune_jobs.STREAM_WAIT_S:
            bar.info(f"Still measuring sizes and latency after {waited:.0f} s: move the slider, or come back, "
                     "to see the full report once it is in.")
            return None
        if shown:
            bar.caption(f"Evaluated in {job.view['timing_s']['evaluate'] * 1000:.0f} ms; measuring sizes and "
                        f"latency… {waited:.1f} s")
        else:
            draw(*job.progress)
        job.wait(prune_jobs.POLL_S)
    if isinstance(job.error, Cancelled):  # another session's job for this spec, superseded there
        return await_report(spec, bar, slot, task)
    if job.error is not None:
        raise job.error
    return job.shown()


@st.fragment
def prune_view(model_ref, data_ref, baseline, presenting: bool) -> None:
    """Controls -> spec -> report -> render: the part a slider move reruns (not the sidebar)."""
    try:
        spec = read_controls(model_ref, data_ref, baseline, presenting)
        bar, slot = st.empty(), st.empty()  # progress, then the cards (first from the evaluated phase)
        report = backend.finished_prune(spec) or await_report(spec, bar, slot, baseline.task)
    except BadInput as exc:
        show_error(exc)
        return
    if report is None:
        return  # still measuring: the evaluated cards stay, the bar says so
    bar.empty()
    method_name, height, key = report.method, chart_height(presenting), spec.to_json()

    with slot.container():
        cards.pruned_cards(report)
        cards.resource_cards(report.baseline, report.pruned, report.task)
    st.caption(cards.dense_latency_note(report, baseline.metrics["latency_ms"]))
    show_tradeoff(report, presenting)
    for note in report.notes:
        st.caption(f"ℹ️ {note}")
    if report.sparsity == 0 and report.target_sparsity > 0:
        st.warning("Nothing was pruned: the measured sparsity is 0%.")
    if report.granularity == "structured":
        st.subheader("Layer shapes: the model really shrank")
        changed = report.layers[report.layers["shape_before"] != report.layers["shape_after"]]
        st.caption(
            f"{len(changed)} of {len(report.layers)} layers changed shape. For structured methods the target is the "
            "fraction of filters or units removed per layer; the measured sparsity counts every weight that went, "
            "including the inputs of the next layer."
            + ("" if spec.finetune_epochs else " One-shot removal costs accuracy: try 2 or more fine-tune epochs.")
        )
        st.dataframe(changed[["name", "type", "shape_before", "shape_after", "params"]], hide_index=True,
                     width="stretch", key="shape_diff")
    t = report.timing_s
    st.caption(
        f"Pruned in {t['prune'] * 1000:.0f} ms"
        + (f", fine-tuned in {t['finetune']:.1f} s" if t.get("finetune") else "")
        + f", evaluated in {t['evaluate'] * 1000:.0f} ms; {t['total']:.2f} s in all (cached on repeat)."
    )

    st.plotly_chart(figure_cache.figure(
        "layers", key, lambda: charts.layer_sparsity_figure(report.layers, method_name), height),
        key="layer_sparsity_chart")

    hist_layers = list(report.histograms)
    left, right = st.columns(2)
    with left:
        layer = persistent(st.selectbox, "Layer", state.HIST_LAYER, hist_layers[0], options=hist_layers)
        st.plotly_chart(figure_cache.figure(
            "histogram", f"{key}|{layer}",
            lambda: charts.weight_histogram_figure(report.histograms[layer], layer, method_name), height),
            key="weight_histogram")
    with right:
        st.plotly_chart(figure_cache.figure(
            "mask", f"{key}|{layer}", lambda: charts.mask_image_figure(report.mask_images[layer], layer), height),
            key="mask_image")

    if not presenting:
        st.subheader("Per layer")
        st.dataframe(report.layers, hide_index=True, width="stretch", key="pruned_layers")
    out_format = st.radio("Download as", backend.download_formats(model_ref), horizontal=True,
                          format_func=backend.FORMAT_LABELS.get, key="download_format",
                          help="The format the model came in is first. Either loads without PruneScope: "
                               "keras.saving.load_model(path) in Keras 3, tf_keras.models.load_model in Keras 2.")
    st.download_button(
        # read (and, for Keras 3, converted in the worker) on click only: not on every move
        "Download pruned model (.keras)", data=lambda: backend.pruned_model_bytes(report, out_format),
        on_click="ignore",
        file_name=f"{model_ref.name.rsplit('.', 1)[0]}-{method_name}-{report.target_sparsity:.2f}.keras",
        mime="application/octet-stream", key="download_model",
    )


prune_view(model_ref, data_ref, baseline, presenting)
