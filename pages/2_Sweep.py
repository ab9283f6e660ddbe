"""Sweep page: several methods over a grid of sparsities -> trade-off curves and the seed's table.

Reads widgets, builds a SweepSpec, calls the cached backend (points stream in), renders.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pruning.errors import BadInput
from pruning.measure.tasks import get_task
from pruning.specs import SweepSpec
from pruning.tables import reference_table, to_markdown
from ui import backend, charts, state
from ui.sidebar import (
    load_baseline,
    persistent,
    progress_to,
    run_gate,
    select_model_and_data,
    show_error,
)

st.set_page_config(page_title="PruneScope · Sweep", page_icon="📈", layout="wide")
model_ref, data_ref = select_model_and_data()
st.title("Sweep")
st.caption("Accuracy, latency and size against sparsity for several methods at once. "
           "Each finished point is stored: a closed tab loses nothing, and the same sweep again is instant.")

baseline = load_baseline(model_ref, data_ref)
if baseline is None:
    st.stop()
TASK = get_task(baseline.task)  # the headline metric and its direction (DESIGN §5)
METRIC, Y_FORMAT = TASK.metric, ".0%" if TASK.unit == "%" else ".4g"

methods = {m["name"]: m for m in backend.methods()}
controls = st.columns([3, 3, 1.2])
chosen = persistent(st.multiselect, "Methods", state.SWEEP_METHODS, ["magnitude", "random"], controls[0],
                    options=list(methods), format_func=lambda n: f"{n} ({methods[n]['granularity']})")
if controls[1].button("Finer grid (every 5%)", key="sweep_fine_grid"):
    st.session_state[state.SWEEP_RATES] = state.FINE_GRID
rates_text = persistent(st.text_input, "Sparsities (%)", state.SWEEP_RATES, state.REFERENCE_GRID, controls[1],
                        help="Comma-separated, in percent. The seed's grid is 0, 20, 40, 60, 80, 90, 95.")
finetune = persistent(st.number_input, "Fine-tune epochs per point", state.SWEEP_FINETUNE, 0, controls[2],
                      min_value=0, max_value=20, step=1,
                      help="0 = one-shot. Otherwise every point is fine-tuned with its mask fixed.")

try:
    spec = SweepSpec(model=model_ref, data=data_ref, methods=tuple(chosen),
                     sparsities=backend.rates_from_text(rates_text), finetune_epochs=int(finetune))
except BadInput as exc:
    show_error(exc)
    st.stop()
st.caption(f"{len(spec.points())} points: {len(spec.methods)} method(s) x {len(spec.sparsities)} sparsities.")
run_gate(spec.to_json(), state.SWEEP_SPEC, "sweep")
bar, live = st.empty(), st.empty()
streamed: list[dict] = []


def on_point(row: dict) -> None:
    # the chart grows while the sweep runs: redraw it with every finished point
    streamed.append(row)
    live.plotly_chart(charts.sweep_metric_figure(
        pd.DataFrame(streamed), METRIC, f"Test {TASK.label} (running)", f"test {TASK.label}",
        baseline.metrics[METRIC], band=True, y_format=Y_FORMAT), key=f"sweep_live_{len(streamed)}")


try:
    report = backend.sweep(spec, on_point=on_point,
                           on_progress=progress_to(bar))
except BadInput as exc:
    bar.empty()
    show_error(exc)
    st.stop()
bar.empty()
live.empty()

for note in report.notes:
    st.warning(note)
rows, base = report.rows, report.baseline
t = report.timing_s
st.caption(f"{int(t.get('points', len(rows)))} points; pruning {t.get('prune', 0):.1f} s, evaluation "
           f"{t.get('evaluate', 0):.1f} s, size and latency {t.get('measure', 0):.1f} s. " + (
               f"Accuracy bands: 95% Wilson interval on {report.n_test:,} test samples "
               f"(±{rows['accuracy_ci95'].max():.1%} at most)." if TASK.band == "wilson" else
               f"{TASK.label} bands: 95% bootstrap interval (1,000 seeded resamples of {report.n_test:,} test "
               f"samples, ±{rows[METRIC + '_ci95'].max():.3g} at most; lower is better)."))

left, right = st.columns(2)
left.plotly_chart(charts.sweep_metric_figure(rows, METRIC, f"Test {TASK.label}", f"test {TASK.label}",
                                             base[METRIC], band=True, y_format=Y_FORMAT), key="sweep_accuracy")
right.plotly_chart(charts.sweep_metric_figure(rows, f"robust_{METRIC}", f"Robust {TASK.label} (noisy inputs)",
                                              f"robust {TASK.label}", base[f"robust_{METRIC}"], y_format=Y_FORMAT),
                   key="sweep_robust")
# speedup, not raw latency: a structured point and its dense model are timed alternately in the
# same run, so load on a shared machine cancels out of the ratio; a mask point keeps dense
# kernels and takes the dense timing itself (1.0x by construction, said in the title)
left.plotly_chart(charts.sweep_metric_figure(rows, "speedup",
                                             "Speedup vs dense (structured: timed alongside; masks: dense kernels, 1x)",
                                             "x faster", 1.0), key="sweep_latency")
right.plotly_chart(charts.sweep_metric_figure(rows, "gzip_bytes", "gzip size", "bytes", base["gzip_bytes"]),
                   key="sweep_gzip")
left.plotly_chart(charts.sweep_metric_figure(rows, "nonzero_params", "Nonzero parameters", "weights",
                                             base["nonzero_params"]), key="sweep_nonzero")
st.subheader("Pareto view")
left, right = st.columns(2)
left.plotly_chart(charts.pareto_figure(rows, "latency_ms", "latency (ms / batch)", base, TASK), key="pareto_latency")
right.plotly_chart(charts.pareto_figure(rows, "gzip_bytes", "gzip size (bytes)", base, TASK), key="pareto_size")

st.subheader("Table")
table = reference_table(rows, report.task)
st.dataframe(table, hide_index=True, width="stretch", key="sweep_table")
name = f"sweep-{model_ref.name.rsplit('.', 1)[0]}-{data_ref.name.rsplit('.', 1)[0]}"
down = st.columns(2)
down[0].download_button("Download CSV (every column)", data=rows.to_csv(index=False), file_name=f"{name}.csv",
                        mime="text/csv", key="download_sweep_csv")
down[1].download_button("Download Markdown (this table)", data=to_markdown(table) + "\n",
                        file_name=f"{name}.md", mime="text/markdown", key="download_sweep_md")
