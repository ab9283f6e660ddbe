"""A one-file HTML report of a stored run for stakeholders: charts and tables, no network.

plotly.js is inlined once (include_plotlyjs=True), so the file opens offline and can be mailed.
"""
from __future__ import annotations

import html
import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..errors import BadInput
from .figures import (
    METRIC_LABELS,
    PERCENT_KEYS,
    histograms_figure,
    layer_sparsity_figure,
    metrics_figure,
    tradeoff_figure,
    waterfall_figure,
)
from .history import related_sweeps
from .store import Run, RunStore

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.7rem 1rem;min-width:150px}
.card .v{font-size:1.5rem;font-weight:600} .card .l{color:#666;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border-bottom:1px solid #eee;padding:.3rem .7rem;text-align:right} th:first-child,td:first-child{text-align:left}
.note{background:#f6f8fa;border-left:4px solid #1f77b4;padding:.5rem 1rem}
"""


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if key in PERCENT_KEYS:
        return f"{value:.2%}"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    return f"{value:.4g}"


# -- html -----------------------------------------------------------------------------------
class _Page:
    """Sections in order; the first chart carries the plotly.js bundle, the rest reuse it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._bundled = False

    def add(self, text: str) -> None:
        self.parts.append(text)

    def heading(self, text: str) -> None:
        self.add(f"<h2>{html.escape(text)}</h2>")

    def chart(self, fig, div_id: str) -> None:
        self.add(fig.to_html(full_html=False, include_plotlyjs=not self._bundled, div_id=div_id,
                             config={"displaylogo": False, "responsive": True}))
        self._bundled = True

    def table(self, frame: pd.DataFrame, table_id: str) -> None:
        self.add(frame.to_html(index=False, escape=True, table_id=table_id, na_rep="n/a", border=0))

    def render(self, title: str) -> str:
        body = "\n".join(self.parts)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _cards(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f'<div class="card"><div class="v">{html.escape(v)}</div>'
                    f'<div class="l">{html.escape(label)}</div></div>' for label, v in items)
    return f'<div class="cards">{cells}</div>'


def _metric_table(baseline: Mapping[str, Any], pruned: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for key, label in METRIC_LABELS.items():
        b, p = baseline.get(key), pruned.get(key)
        change = "n/a"
        if isinstance(b, (int, float)) and isinstance(p, (int, float)) and math.isfinite(b) and math.isfinite(p):
            change = f"{p - b:+.2%}" if key in PERCENT_KEYS else (f"{p / b - 1:+.1%}" if b else "n/a")
        rows.append({"metric": label, "baseline": _fmt(key, b), "pruned": _fmt(key, p), "change": change})
    return pd.DataFrame(rows)


def _spec_table(run: Run) -> pd.DataFrame:
    spec = run.spec
    rows = [
        ("model", run.model), ("dataset", run.dataset), ("method", run.method),
        ("target sparsity", run.target_sparsity), ("scope", spec.get("scope")),
        ("layers", ", ".join(spec["layers"]) if spec.get("layers") else "all prunable"),
        ("fine-tune epochs", spec.get("finetune_epochs")), ("seed", spec.get("seed")),
    ]
    if spec.get("layer_sparsity"):
        rows.append(("per-layer plan", ", ".join(f"{name} {value:.0%}" for name, value in spec["layer_sparsity"])))
    rows += [(f"environment: {k}", v) for k, v in run.environment.items()]
    return pd.DataFrame([(k, "" if v is None else str(v)) for k, v in rows], columns=["setting", "value"])


def _header(page: _Page, run: Run) -> None:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at))
    title = run.name or f"{run.kind} of {run.model} on {run.dataset}"
    page.add(f"<h1>PruneScope: {html.escape(title)}</h1>")
    page.add(f'<p class="sub">run #{run.id} · {html.escape(run.kind)} · {html.escape(run.status)} · {when}</p>')
    if run.note:
        page.add(f'<p class="note">{html.escape(run.note)}</p>')
    if run.error:
        page.add(f'<p class="note">stopped: {html.escape(run.error)}</p>')


def build_report(run: Run, sweeps: Sequence[tuple[Run, Sequence[Mapping[str, Any]]]] = ()) -> str:
    """The report's HTML. `sweeps`: sweep runs of the same model and data with their points."""
    page = _Page()
    _header(page, run)
    points = [dict(p, run_id=sweep.id) for sweep, rows in sweeps for p in rows]
    if run.kind == "prune":
        if run.status != "completed":
            raise BadInput(f"run {run.id} is {run.status}: a report needs a completed run")
        _prune_sections(page, run, points)
    else:
        own = [dict(p, run_id=run.id) for sweep, rows in sweeps if sweep.id == run.id for p in rows]
        if own:
            page.chart(tradeoff_figure(own), "chart-tradeoff")
            page.heading("Points")
            page.table(pd.DataFrame(own), "points")
        else:
            page.add("<p>This run recorded no points.</p>")
    page.heading("Settings")
    page.table(_spec_table(run), "settings")
    page.add('<p class="sub">Made by PruneScope. Reproduce a prune run with '
             f'<code>python -m pruning export {run.id} --format recipe --out recipe.json</code> and '
             '<code>python -m pruning prune --recipe recipe.json</code>.</p>')
    return page.render(f"PruneScope run #{run.id}")


def _prune_sections(page: _Page, run: Run, points: list[dict[str, Any]]) -> None:
    from .export import size_waterfall

    m = run.metrics
    base, pruned, derived = m["baseline"], m["pruned"], m.get("derived", {})
    task = run.task

    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    page.add(_cards([
        (f"test {task.label} (baseline -> pruned)",
         f"{task.format(base[task.metric])} -> {task.format(pruned[task.metric])}"),
        ("measured sparsity (requested)", f"{m['sparsity']:.1%} ({m['target_sparsity']:.0%})"),
        ("gzip size reduction", pct(derived.get("size_reduction"))),
        ("effective FLOPs reduction", pct(derived.get("flops_reduction"))),
        ("speedup (latency)", "n/a" if derived.get("speedup") is None else f"{derived['speedup']:.2f}x"),
    ]))
    for note in run.details.get("notes", []):
        page.add(f'<p class="note">{html.escape(note)}</p>')
    page.heading("Baseline vs pruned")
    page.chart(metrics_figure(base, pruned, run.method, task), "chart-metrics")
    page.table(_metric_table(base, pruned), "metrics")
    page.heading("Per layer")
    page.chart(layer_sparsity_figure(run.layers, run.method, "report"), "chart-layer-sparsity")
    columns = ["name", "type", "params", "nonzero_params", "sparsity", "shape_before", "shape_after"]
    page.table(pd.DataFrame(run.layers).reindex(columns=columns), "layers")
    if run.details.get("histograms"):
        page.heading("Weight distributions")
        page.chart(histograms_figure(run.details["histograms"], run.method), "chart-histograms")
    page.heading("Size")
    stages = size_waterfall(run)
    page.chart(waterfall_figure(stages), "chart-size")
    deploy = run.details.get("deploy")
    tflite = run.details.get("tflite")
    if deploy:
        from .export import deploy_summary
        from .history import deploy_frame

        summary = deploy_summary(run, deploy)
        int8 = summary["int8"]
        page.add(f"<p>Every TFLite figure is the TFLite interpreter's on the test split. {html.escape(int8['artifact'])} "
                 f"(interface: {html.escape(summary['interface'])}): {html.escape(task.label)} "
                 f"{task.format(int8[task.metric])}, "
                 f"{int8['sparsity']:.1%} zeros read back from its weight tensors, "
                 f"{summary['derived']['int8_gzip_size_ratio']:.1f}x smaller than the dense .keras once gzipped.</p>")
        page.heading("Where it runs")
        frame = deploy_frame(summary)
        page.table(frame.map(lambda v: "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else v)),
                   "deploy")
        page.add(f'<p class="sub">Latency per batch of {summary["latency_batch"]}: Keras (traced function) and '
                 f'TFLite with XNNPACK on 1 and {summary["threads"]} threads. memory_bytes: weights as stored + '
                 'peak live activations of one sample. Per MFLOP: the headline metric per effective '
                 '(nonzero-weight) MMAC.</p>')
    elif tflite:
        page.add(f"<p>TFLite agrees with Keras on {tflite['agreement']:.2%} of {tflite['samples']:,} test "
                 f"predictions (largest output difference {tflite['max_abs_diff']:.2g}).</p>")
    else:
        page.add(f"<p>No TFLite export yet: <code>python -m pruning export {run.id} --format tflite-int8 "
                 "--out model.tflite</code> adds its sizes and accuracies here.</p>")
    if points:
        page.heading("Trade-off")
        page.chart(tradeoff_figure(points, {"sparsity": m["sparsity"], task.metric: pruned[task.metric]},
                                   y=task.metric), "chart-tradeoff")


def write_report(store: RunStore, run_id: int, out: str | Path) -> Path:
    """Build the report of a stored run and write it atomically to `out`."""
    from .export import write_atomic

    run = store.get(run_id)
    text = build_report(run, related_sweeps(store, run))
    return write_atomic(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
