"""A one-file HTML report of a stored run for stakeholders: charts and tables, no network.

plotly.js is inlined once (include_plotlyjs=True), so the file opens offline and can be mailed.
"""
from __future__ import annotations

import html
import math
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pandas as pd

from ..errors import BadInput
from .palette import BASELINE_COLOR, method_color
from .store import Run, RunStore

HIST_COLUMNS = 3
PERCENT_KEYS = ("accuracy", "train_accuracy", "robust_accuracy")
METRIC_LABELS = {
    "accuracy": "test accuracy",
    "robust_accuracy": "robust accuracy (noisy inputs)",
    "train_accuracy": "train accuracy",
    "loss": "test loss",
    "params": "parameters",
    "nonzero_params": "nonzero parameters",
    "flops": "FLOPs (MACs / sample)",
    "effective_flops": "effective FLOPs (nonzero weights)",
    "size_bytes": ".keras size (bytes)",
    "gzip_bytes": ".keras gzip size (bytes)",
    "latency_ms": "latency (ms / batch)",
    "latency_p90_ms": "latency p90 (ms / batch)",
}

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


def _layout(fig, title: str, x: str, y: str):
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      margin=dict(l=50, r=20, t=60, b=50), legend=dict(orientation="h", y=-0.2))
    return fig


# -- figures (plain lists in, so the numbers sit readable in the file) ----------------------
def metrics_figure(baseline: Mapping[str, Any], pruned: Mapping[str, Any], method: str):
    """Left: accuracies side by side. Right: the pruned model as a share of the baseline."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Accuracy", "Pruned as a share of baseline"))
    acc = [k for k in PERCENT_KEYS if baseline.get(k) is not None and pruned.get(k) is not None]
    labels = [METRIC_LABELS[k] for k in acc]
    fig.add_bar(x=labels, y=[baseline[k] for k in acc], name="baseline", marker_color=BASELINE_COLOR, row=1, col=1)
    fig.add_bar(x=labels, y=[pruned[k] for k in acc], name="pruned", marker_color=method_color(method), row=1, col=1)
    shares = [k for k in ("nonzero_params", "effective_flops", "size_bytes", "gzip_bytes", "latency_ms")
              if baseline.get(k) and pruned.get(k) is not None]
    fig.add_bar(x=[METRIC_LABELS[k] for k in shares], y=[pruned[k] / baseline[k] for k in shares],
                name="pruned / baseline", marker_color=method_color(method), showlegend=False, row=1, col=2)
    fig.update_yaxes(tickformat=".0%", row=1, col=1, range=[0, 1])
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(barmode="group", template="plotly_white", title="Baseline vs pruned", height=420,
                      legend=dict(orientation="h", y=-0.35))
    return fig


def layer_sparsity_figure(layers: Sequence[Mapping[str, Any]], method: str):
    import plotly.graph_objects as go

    rows = [r for r in layers if r.get("sparsity") is not None]
    names = [r["name"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["sparsity"] for r in rows], name="measured", marker_color=method_color(method),
                customdata=[[r["nonzero_params"], r["params"]] for r in rows],
                hovertemplate="%{x}<br>measured %{y:.1%}<br>%{customdata[0]:,} of %{customdata[1]:,} weights left<extra></extra>")
    targets = [r.get("target_sparsity") for r in rows]
    if any(t is not None for t in targets):
        fig.add_scatter(x=names, y=targets, mode="markers", name="requested",
                        marker=dict(symbol="line-ew-open", size=28, color="black", line=dict(width=2)))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, "Sparsity per layer (measured)", "layer (network order)", "zeros among prunable weights")


def histograms_figure(histograms: Mapping[str, Mapping[str, Any]], method: str):
    """Nonzero weights before (grey) and after, one panel per layer; zeros counted in the title."""
    from plotly.subplots import make_subplots

    layers = list(histograms)
    rows = max(1, math.ceil(len(layers) / HIST_COLUMNS))
    titles = [f"{name} (zeros {h['zeros_before']:,} -> {h['zeros_after']:,})" for name, h in histograms.items()]
    fig = make_subplots(rows=rows, cols=HIST_COLUMNS, subplot_titles=titles)
    for i, (name, hist) in enumerate(histograms.items()):
        edges = list(hist["edges"])
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        row, col = divmod(i, HIST_COLUMNS)
        fig.add_bar(x=centers, y=list(hist["before"]), name="before (dense)", legendgroup="before",
                    showlegend=i == 0, marker_color=BASELINE_COLOR, opacity=0.55, row=row + 1, col=col + 1)
        fig.add_bar(x=centers, y=list(hist["after"]), name="after (nonzero)", legendgroup="after",
                    showlegend=i == 0, marker_color=method_color(method), opacity=0.8, row=row + 1, col=col + 1)
    fig.update_layout(barmode="overlay", bargap=0, template="plotly_white", height=260 * rows + 80,
                      title="Weight distributions per layer (pruned zeros are counted, not drawn)",
                      legend=dict(orientation="h", y=-0.08))
    return fig


def waterfall_figure(stages: pd.DataFrame):
    """Bytes from the dense .keras file to a compressed TFLite file (from export.size_waterfall)."""
    import plotly.graph_objects as go

    values = [int(v) for v in stages["bytes"]]
    changes = [values[0]] + [b - a for a, b in zip(values[:-1], values[1:])]
    fig = go.Figure(go.Waterfall(
        x=list(stages["stage"]), y=changes, measure=["absolute"] + ["relative"] * (len(values) - 1),
        text=[f"{v / 1024:,.1f} KB" for v in values], textposition="outside",
        decreasing=dict(marker=dict(color="#2ca02c")), increasing=dict(marker=dict(color="#d62728")),
        totals=dict(marker=dict(color=BASELINE_COLOR)),
    ))
    return _layout(fig, "Model size, step by step", "", "bytes")


def tradeoff_figure(points: Sequence[Mapping[str, Any]], highlight: Optional[Mapping[str, Any]] = None,
                    x: str = "sparsity", y: str = "accuracy"):
    """Accuracy against measured sparsity, one line per (sweep, method); this run as a star."""
    import plotly.graph_objects as go

    fig = go.Figure()
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for p in points:
        if p.get(x) is not None and p.get(y) is not None:
            groups.setdefault((p.get("run_id"), p.get("method", "?")), []).append(p)
    for (run_id, method), rows in groups.items():
        rows = sorted(rows, key=lambda r: r[x])
        label = method if run_id is None else f"{method} (sweep #{run_id})"
        fig.add_scatter(x=[r[x] for r in rows], y=[r[y] for r in rows], mode="lines+markers", name=label,
                        line=dict(color=method_color(method)))
    if highlight is not None:
        fig.add_scatter(x=[highlight[x]], y=[highlight[y]], mode="markers", name="this run",
                        marker=dict(symbol="star", size=16, color="black"))
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, "Trade-off: accuracy vs measured sparsity", "measured sparsity", "test accuracy")


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
        ("target sparsity", spec.get("sparsity")), ("scope", spec.get("scope")),
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

    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    page.add(_cards([
        ("test accuracy (baseline -> pruned)", f"{base['accuracy']:.2%} -> {pruned['accuracy']:.2%}"),
        ("measured sparsity (requested)", f"{m['sparsity']:.1%} ({m['target_sparsity']:.0%})"),
        ("gzip size reduction", pct(derived.get("size_reduction"))),
        ("effective FLOPs reduction", pct(derived.get("flops_reduction"))),
        ("speedup (latency)", "n/a" if derived.get("speedup") is None else f"{derived['speedup']:.2f}x"),
    ]))
    for note in run.details.get("notes", []):
        page.add(f'<p class="note">{html.escape(note)}</p>')
    page.heading("Baseline vs pruned")
    page.chart(metrics_figure(base, pruned, run.method), "chart-metrics")
    page.table(_metric_table(base, pruned), "metrics")
    page.heading("Per layer")
    page.chart(layer_sparsity_figure(run.layers, run.method), "chart-layer-sparsity")
    columns = ["name", "type", "params", "nonzero_params", "sparsity", "shape_before", "shape_after"]
    page.table(pd.DataFrame(run.layers).reindex(columns=columns), "layers")
    if run.details.get("histograms"):
        page.heading("Weight distributions")
        page.chart(histograms_figure(run.details["histograms"], run.method), "chart-histograms")
    page.heading("Size")
    stages = size_waterfall(run)
    page.chart(waterfall_figure(stages), "chart-size")
    tflite = run.details.get("tflite")
    if tflite:
        page.add(f"<p>TFLite agrees with Keras on {tflite['agreement']:.2%} of {tflite['samples']:,} test "
                 f"predictions (largest output difference {tflite['max_abs_diff']:.2g}).</p>")
    else:
        page.add(f"<p>No TFLite export yet: <code>python -m pruning export {run.id} --format tflite "
                 "--out model.tflite</code> adds its sizes here.</p>")
    if points:
        page.heading("Trade-off")
        page.chart(tradeoff_figure(points, {"sparsity": m["sparsity"], "accuracy": pruned["accuracy"]}),
                   "chart-tradeoff")


def related_sweeps(store: RunStore, run: Run) -> list[tuple[Run, list[dict[str, Any]]]]:
    """Sweeps of the same model and dataset that recorded points (interrupted ones too)."""
    if run.kind != "prune":
        return [(run, store.points(run.id))]
    found = []
    for sweep in store.list(kind="sweep", model=run.model, dataset=run.dataset):
        if sweep.spec.get("model") == run.spec.get("model") and sweep.spec.get("data") == run.spec.get("data"):
            rows = store.points(sweep.id)
            if rows:
                found.append((sweep, rows))
    return found


def write_report(store: RunStore, run_id: int, out: str | Path) -> Path:
    """Build the report of a stored run and write it atomically to `out`."""
    from .export import write_atomic

    run = store.get(run_id)
    text = build_report(run, related_sweeps(store, run))
    return write_atomic(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
