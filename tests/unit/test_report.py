"""The one-file HTML report: it holds the charts' data and loads nothing from the network.

Charts are read back from the Plotly.newPlot calls in the file, as a browser would.
"""
from __future__ import annotations

import json
import re

import pytest

from pruning.cli import main
from pruning.runs.history import related_sweeps
from pruning.runs.report import build_report, write_report
from pruning.runs.store import RunStore
from pruning.specs import PruneSpec


def charts(page: str) -> dict[str, list[dict]]:
    """div id -> traces, decoded from each `Plotly.newPlot("id", [traces], ...)` call."""
    decoder = json.JSONDecoder()
    found = {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        traces, _ = decoder.raw_decode(page, match.end())
        found[match.group(1)] = traces
    return found


@pytest.fixture(scope="module")
def stored(tmp_path_factory, engine, tiny_refs):
    model, data = tiny_refs
    store = RunStore(tmp_path_factory.mktemp("report") / "runs.db")
    spec = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.5)
    run_id, _ = store.record_prune(spec, lambda: engine.prune(spec), save=lambda path: engine.save(spec, path))
    store.set_note(run_id, "for the <script>alert(1)</script> demo")
    sweep_spec = {"model": spec.to_dict()["model"], "data": spec.to_dict()["data"], "methods": ["magnitude"]}
    rows = [{"method": "magnitude", "target_sparsity": r, "sparsity": r, "accuracy": 1.0 - r / 2} for r in (0.0, 0.5, 0.9)]
    sweep_id, _ = store.record_points("sweep", sweep_spec, lambda on_point: [on_point(r) for r in rows])
    return store, run_id, sweep_id, rows


def test_report_holds_the_charts_data(stored):
    store, run_id, sweep_id, rows = stored
    run = store.get(run_id)
    page = build_report(run, related_sweeps(store, run))
    figures = charts(page)
    assert {"chart-metrics", "chart-layer-sparsity", "chart-histograms", "chart-size", "chart-tradeoff"} <= set(figures)

    measured = [r for r in run.layers if r["sparsity"] is not None]
    bars = figures["chart-layer-sparsity"][0]
    assert bars["x"] == [r["name"] for r in measured] == ["conv", "hidden", "out"]
    assert bars["y"] == pytest.approx([r["sparsity"] for r in measured])

    hist = run.details["histograms"]["hidden"]
    counts = [t["y"] for t in figures["chart-histograms"]]
    assert hist["before"] in counts and hist["after"] in counts

    accuracy = figures["chart-metrics"]
    assert run.metrics["baseline"]["accuracy"] in accuracy[0]["y"]
    assert run.metrics["pruned"]["accuracy"] in accuracy[1]["y"]

    curve, star = figures["chart-tradeoff"]
    assert curve["x"] == [r["sparsity"] for r in rows] and curve["y"] == [r["accuracy"] for r in rows]
    assert f"sweep #{sweep_id}" in curve["name"]
    assert star["x"] == [run.metrics["sparsity"]] and star["y"] == [run.metrics["pruned"]["accuracy"]]

    waterfall = figures["chart-size"][0]
    assert waterfall["x"][0] == "dense .keras" and waterfall["y"][0] == run.metrics["baseline"]["size_bytes"]
    assert sum(waterfall["y"]) == run.metrics["pruned"]["gzip_bytes"]  # no TFLite export yet


def test_report_loads_nothing_from_the_network(stored):
    store, run_id, _, _ = stored
    page = build_report(store.get(run_id))
    assert "Plotly.newPlot" in page
    assert re.search(r"<script[^>]*\bsrc\s*=", page, re.I) is None  # plotly.js is inline
    assert re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", page, re.I) is None
    assert re.search(r"@import", page) is None
    # the bundle is there once, not once per chart
    assert len(page) > 1_000_000 and page.count("<script>/**") == 1
    # the note is shown as text, never run
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "chart-tradeoff" not in page  # no sweep passed: no trade-off section


def test_sweep_report_and_cli(stored, tmp_path, monkeypatch, capsys):
    store, run_id, sweep_id, rows = stored
    sweep_page = build_report(store.get(sweep_id), related_sweeps(store, store.get(sweep_id)))
    assert charts(sweep_page)["chart-tradeoff"][0]["y"] == [r["accuracy"] for r in rows]

    monkeypatch.setenv("PRUNESCOPE_HOME", str(store.path.parent))
    out = tmp_path / "report.html"
    assert main(["report", str(run_id), "--out", str(out)]) == 0
    assert "chart-layer-sparsity" in charts(out.read_text())
    assert main(["report", "12345", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: there is no run 12345: list them with `python -m pruning runs`"]


def test_write_report_refuses_a_failed_run(stored, tmp_path):
    store, _, _, _ = stored
    run_id = store.begin("prune", PruneSpec(target_sparsity=0.5))
    store.fail(run_id, "boom")
    from pruning.errors import BadInput

    with pytest.raises(BadInput, match="failed"):
        write_report(store, run_id, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
