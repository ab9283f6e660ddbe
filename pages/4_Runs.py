"""Runs page: every stored run -> filter, compare side by side, Pareto fronts, manage, export.

Reads the run store through ui.backend, renders tables and charts; the work is in pruning/.
"""
from __future__ import annotations

import streamlit as st

from pruning.errors import BadInput
from ui import backend, cards, charts, state
from ui.sidebar import page_nav, persistent, progress_to, show_error

st.set_page_config(page_title="PruneScope · Runs", page_icon="🗂️", layout="wide")
page_nav()
st.sidebar.caption(f"Device: {backend.device()}")
st.title("Runs")
st.caption("Every prune, sweep and sensitivity run, from the app and the CLI, kept across restarts.")

runs = backend.list_runs()
if not runs:
    st.info("No runs stored yet: prune a model on the **Prune** page (or `python -m pruning prune ...`).", icon="👉")
    st.stop()
by_id = {run.id: run for run in runs}
frame = backend.runs_frame(runs)

# -- the table, filtered -------------------------------------------------------------------
filters = st.columns(3)
chosen = {
    column: persistent(st.multiselect, label, key, [], filters[i], options=sorted(frame[column].unique()),
                       placeholder="all")
    for i, (column, label, key) in enumerate([("model", "Model", state.RUNS_MODELS),
                                              ("dataset", "Dataset", state.RUNS_DATASETS),
                                              ("method", "Method", state.RUNS_METHODS)])
}
shown = frame
for column, values in chosen.items():
    if values:
        shown = shown[shown[column].isin(values)]
st.dataframe(
    shown, hide_index=True, width="stretch", key="runs_table",
    column_config={
        "target_sparsity": st.column_config.NumberColumn("target", format="percent"),
        "sparsity": st.column_config.NumberColumn("sparsity (measured)", format="percent"),
        "baseline_accuracy": st.column_config.NumberColumn("baseline acc.", format="percent"),
        "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
        "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.3f"),
        "gzip_bytes": st.column_config.NumberColumn("gzip bytes", format="localized"),
        "created_at": st.column_config.DatetimeColumn("created"),
    },
)
st.caption(f"{len(shown)} of {len(frame)} runs.")
visible = [by_id[i] for i in shown["id"]]


def label(run_id: int) -> str:
    run = by_id[run_id]
    return f"{run.label} · {run.model} / {run.dataset} · {run.status}"


# -- compare ---------------------------------------------------------------------------------
st.header("Compare")
comparable = [run.id for run in visible if run.status == "completed" and run.kind in ("prune", "sweep")]
picked = persistent(st.multiselect, "Runs to compare (two or more)", state.RUNS_COMPARE, [],
                    options=comparable, format_func=label)
if len(picked) < 2:
    st.info("Pick two or more completed prune or sweep runs to see them side by side.")
else:
    selected = [by_id[i] for i in picked]
    prunes = [run for run in selected if run.kind == "prune"]
    if len(prunes) >= 2:
        table = backend.compare_frame(prunes)
        st.caption(f"Δ columns: change against {prunes[0].label}.")
        st.dataframe(table, hide_index=True, width="stretch", key="compare_table")
        st.plotly_chart(charts.compare_layers_figure([(r.label, r.method, r.layers) for r in prunes]),
                        key="compare_layers")
    sweeps = [run for run in selected if run.kind == "sweep"]
    task = selected[0].task  # the headline metric of the first picked run; runs measured otherwise are left out
    marks = [(r.label, r.method, r.metrics["sparsity"], r.metrics["pruned"].get(task.metric)) for r in prunes
             if r.task.metric == task.metric]
    st.plotly_chart(charts.compare_curves_figure([(r.label, backend.run_points(r.id)) for r in sweeps
                                                  if r.task.metric == task.metric], marks, task),
                    key="compare_curves")

# -- Pareto ------------------------------------------------------------------------------------
st.header("Pareto front")
pairs = sorted({f"{r.model} · {r.dataset}" for r in runs if r.status == "completed" and r.kind in ("prune", "sweep")})
if pairs:
    pair = persistent(st.selectbox, "Model and dataset", state.RUNS_PARETO, pairs[0], options=pairs)
    model_name, dataset_name = pair.split(" · ", 1)
    points, dense, task = backend.pareto_rows(runs, model_name, dataset_name)
    if points.empty or not dense:
        st.info("No measured runs of this model yet.")
    else:
        left, right = st.columns(2)
        left.plotly_chart(charts.pareto_figure(points, "latency_ms", "latency (ms / batch)", dense, task),
                          key="pareto_latency")
        right.plotly_chart(charts.pareto_figure(points, "gzip_bytes", "gzip size (bytes)", dense, task),
                           key="pareto_size")
        st.caption(f"{len(points)} points: single prune runs and every stored sweep point of {pair}.")

# -- one run: manage and export ----------------------------------------------------------------
st.header("Run")
options = [run.id for run in visible] or [run.id for run in runs]
focus = persistent(st.selectbox, "Run", state.RUNS_FOCUS, options[0], options=options, format_func=label)
run = by_id[focus]
st.caption(f"{run.kind} · {run.status} · from {run.source or 'unknown'} · "
           f"device {run.environment.get('device', 'n/a')}")
if run.error:
    st.warning(f"{run.status}: {run.error}")
if run.kind == "prune" and run.status == "completed":
    derived = run.metrics.get("derived", {})
    cols = st.columns(4)
    task = run.task
    change = derived.get("metric_change", derived.get("accuracy_loss", 0.0))
    cols[0].metric(f"Test {task.label}", task.format(run.metrics["pruned"][task.metric]),
                   delta=f"{-change * 100:+.2f} pt vs dense" if task.unit == "%" else f"{change:+.4g} worse vs dense",
                   delta_color="normal" if task.unit == "%" else "inverse")
    cols[1].metric("Sparsity (measured)", f"{run.metrics['sparsity']:.2%}",
                   delta=f"requested {run.metrics['target_sparsity']:.0%}", delta_color="off")
    cols[2].metric("gzip size", cards.human_bytes(run.metrics["pruned"]["gzip_bytes"]),
                   delta=f"{-derived.get('size_reduction', 0):+.1%}", delta_color="inverse")
    cols[3].metric("Latency (batch)", f"{run.metrics['pruned']['latency_ms']:.2f} ms")
with st.expander("Spec and environment"):
    st.json({"spec": run.spec, "environment": run.environment})

edit = st.columns([2, 3, 1])
name = edit[0].text_input("Name", value=run.name, key=f"run_name_{run.id}")
note = edit[1].text_area("Note", value=run.note, key=f"run_note_{run.id}", height=68)
if edit[2].button("Save", key="run_save"):
    backend.rename_run(run.id, name, note)
    st.rerun()

actions = st.columns([1, 1, 2])
if run.kind == "prune" and actions[0].button("Re-run", key="run_rerun",
                                             help="Prune the same spec again and store it as a new run."):
    bar = st.empty()
    try:
        new_id = backend.rerun(run.id, progress_to(bar))
    except BadInput as exc:
        show_error(exc)
    else:
        st.session_state[state.RUNS_FOCUS] = new_id
        st.rerun()
confirm = actions[2].checkbox("Yes, delete this run and its files", key="run_delete_confirm")
if actions[1].button("Delete", key="run_delete", disabled=not confirm):
    backend.delete_run(run.id)
    st.session_state[state.RUNS_COMPARE] = [i for i in st.session_state.get(state.RUNS_COMPARE, []) if i != run.id]
    st.session_state.pop(state.RUNS_FOCUS, None)
    st.rerun()

st.subheader("Export")
stem = f"run{run.id}-{run.model.rsplit('.', 1)[0]}-{run.method.replace(',', '+')}"
if run.kind == "prune" and run.status == "completed":
    ex = st.columns(4)
    ex[0].download_button("Pruned model (.keras)", data=backend.read_bytes(run.artifact_path),
                          file_name=f"{stem}.keras", mime="application/octet-stream", key="download_keras")
    ex[1].download_button("Recipe (.json)", data=backend.recipe_bytes(run.id), file_name=f"{stem}-recipe.json",
                          mime="application/json", key="download_recipe",
                          help="`python -m pruning prune --recipe FILE` reproduces this run (same seed, CPU).")
    summary = backend.deploy_figures(run.id)
    if summary is None and st.session_state.get(state.RUNS_DEPLOY) != run.id:
        if ex[2].button("Convert to TFLite (float32 + int8)", key="run_tflite",
                        help="In the worker process: float32 and full-integer int8 TFLite (sparsity kept), "
                             "each measured by the TFLite interpreter on the test split."):
            st.session_state[state.RUNS_DEPLOY] = run.id
            st.rerun()
    elif summary is None:
        st.button("Cancel conversion", key="run_tflite_cancel", on_click=st.session_state.pop,
                  args=(state.RUNS_DEPLOY, None), help="Stops the conversion in the worker process.")
        bar = st.empty()
        try:
            backend.deploy(run.id, progress_to(bar))
        except BadInput as exc:
            show_error(exc)
        finally:
            st.session_state.pop(state.RUNS_DEPLOY, None)
        st.rerun()
    if summary:
        rows = {row["artifact"]: row for row in summary["artifacts"]}
        int8 = summary["int8"]
        ex[2].download_button("TFLite float32 (.tflite)", data=backend.read_bytes(rows["pruned float32"]["path"]),
                              file_name=f"{stem}-float32.tflite", mime="application/octet-stream",
                              key="download_tflite")
        ex[3].download_button("TFLite int8 (.tflite)", data=backend.read_bytes(rows[int8["artifact"]]["path"]),
                              file_name=f"{stem}-int8.tflite", mime="application/octet-stream",
                              key="download_tflite_int8")
        lite, task = rows["pruned float32"], run.task
        close = (f"agrees with Keras on {lite['agreement']:.2%} of the test decisions" if lite["agreement"] is not None
                 else f"is within {lite['max_abs_diff']:.2g} of Keras' outputs")
        st.success(f"TFLite float32 {close}; int8 (interface: {summary['interface']}) scores {task.label} "
                   f"{task.format(int8[task.metric])} under the TFLite interpreter (Keras "
                   f"{task.format(summary['pruned'][task.metric])}), keeps {int8['sparsity']:.1%} zeros "
                   f"in its weight tensors, and is {summary['derived']['int8_gzip_size_ratio']:.1f}x smaller "
                   "than the dense .keras once gzipped.")
        other = summary.get("int8_other_encoding")
        if other:  # the same int8 model in the other encoding: which is smaller depends on the model
            pick = min((int8, other), key=lambda r: r["gzip_bytes"])
            st.caption(f"Both int8 encodings, gzipped: {int8['artifact']} {int8['gzip_bytes']:,} bytes, "
                       f"{other['artifact']} {other['gzip_bytes']:,} bytes: the smaller download is "
                       f"**{pick['artifact']}**. In memory: {int8['memory_bytes']:,} vs {other['memory_bytes']:,} bytes.")
            st.download_button(f"TFLite int8, {other['artifact'][12:]} (.tflite)",
                               data=backend.read_bytes(rows[other["artifact"]]["path"]),
                               file_name=f"{stem}-int8-{other['artifact'][12:].replace(' ', '-')}.tflite",
                               mime="application/octet-stream", key="download_tflite_int8_other")
        percent = {task.metric: st.column_config.NumberColumn(format="percent")} if task.unit == "%" else {}
        st.dataframe(backend.deploy_frame(summary), hide_index=True, width="stretch", key="deploy_table",
                     column_config={**percent, "sparsity": st.column_config.NumberColumn(format="percent")})
        st.caption(f"Latency per batch of {summary['latency_batch']} (TFLite: XNNPACK, 1 and {summary['threads']} "
                   "threads). Memory: weights as stored + peak live activations of one sample. Efficiency: "
                   f"{task.label} per effective MFLOP and per MB of memory.")
    st.plotly_chart(charts.size_waterfall_figure(backend.size_stages(run.id)), key="size_waterfall")
if run.status == "completed":
    if st.button("Build HTML report", key="run_report",
                 help="One file with charts and tables that opens without a network."):
        st.session_state[state.RUNS_REPORT] = run.id
    if st.session_state.get(state.RUNS_REPORT) == run.id:
        st.download_button("HTML report", data=backend.report_html(run.id), file_name=f"{stem}-report.html",
                           mime="text/html", key="download_report")
else:
    st.caption(f"A {run.status} run has nothing to export; re-run it.")
