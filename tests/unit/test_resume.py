"""Sweep reuse and resume (pruning.runs.resume): which stored points a new identical sweep gets.

A fake runner stands in for the executor, so these need no TensorFlow and run in seconds.
"""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException

from pruning.reports import ROW_KEYS, SweepReport
from pruning.runs import resume
from pruning.runs.store import RunStore
from pruning.specs import DataRef, ModelRef, SweepSpec

SPEC = SweepSpec(model=ModelRef("cnn"), data=DataRef("digits"), methods=("magnitude",), sparsities=(0.0, 0.5, 0.9))
BASE = {"accuracy": 0.9}


def row(rate: float, accuracy: float) -> dict:
    return {**{key: None for key in ROW_KEYS}, "method": "magnitude", "target_sparsity": rate, "sparsity": rate,
            "accuracy": accuracy, "n_test": 100}


class FakeRunner:
    """Emits one row per point, re-emitting the resumed ones as the engine does; can stop after `stop_after`."""

    def __init__(self, spec: SweepSpec = SPEC, stop_after: int | None = None):
        self.spec, self.stop_after, self.calls = spec, stop_after, []

    def __call__(self, on_point, resume_rows):
        self.calls.append([dict(r) for r in resume_rows])
        done = {(r["method"], r["target_sparsity"]): r for r in resume_rows}
        rows, resumed = [], 0
        for i, (method, rate) in enumerate(self.spec.points()):
            if self.stop_after is not None and i == self.stop_after:
                raise RerunException(None)  # the user moved a slider: Streamlit stops the script
            got = done.get((method, rate))
            resumed += got is not None
            rows.append(got or row(rate, 1.0 - rate))
            on_point(dict(rows[-1]))
        return SweepReport(spec=self.spec, baseline=dict(BASE), rows=pd.DataFrame(rows, columns=list(ROW_KEYS)),
                           timing_s={"total": 1.0, "points": len(rows), "resumed": resumed}, n_test=100,
                           environment={"device": "CPU"})


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs.db")


def test_an_empty_store_has_nothing_to_reuse(store):
    assert resume.find_prior_sweep(store, SPEC) == resume.PriorSweep()
    runner, seen = FakeRunner(), []
    got = resume.run_stored_sweep(store, SPEC, runner, on_point=seen.append, source="cli")
    assert runner.calls == [[]]
    assert (got.reused, got.resumed_points, got.resumed_from) == (False, 0, None)
    assert [p["target_sparsity"] for p in seen] == [0.0, 0.5, 0.9]
    run = store.get(got.run_id)
    assert (run.status, run.source, run.metrics["points"]) == ("completed", "cli", 3)


def test_an_interrupted_sweep_is_resumed_from_its_finished_points(store):
    with pytest.raises(RerunException):
        resume.run_stored_sweep(store, SPEC, FakeRunner(stop_after=2))
    stopped = store.list(kind="sweep")[0]
    assert stopped.status == "interrupted" and len(store.points(stopped.id)) == 2

    prior = resume.find_prior_sweep(store, SPEC)
    assert prior.completed is None and prior.resume_from.id == stopped.id
    assert [p["target_sparsity"] for p in prior.resume] == [0.0, 0.5]

    runner = FakeRunner()
    got = resume.run_stored_sweep(store, SPEC, runner, reuse_completed=False)
    assert [[p["target_sparsity"] for p in call] for call in runner.calls] == [[0.0, 0.5]]
    assert (got.reused, got.resumed_points, got.resumed_from) == (False, 2, stopped.id)
    assert got.run_id != stopped.id
    assert [p["target_sparsity"] for p in store.points(got.run_id)] == [0.0, 0.5, 0.9]  # resumed ones stored too


def test_a_completed_sweep_is_reused_by_the_page_and_measured_again_by_the_cli(store):
    first = resume.run_stored_sweep(store, SPEC, FakeRunner())
    runner = FakeRunner()
    again = resume.run_stored_sweep(store, SPEC, runner)  # the page: nothing computed, no new run
    assert runner.calls == [] and again.reused and again.run_id == first.run_id
    assert again.report.rows["accuracy"].tolist() == [1.0, 0.5, pytest.approx(0.1)]
    assert again.report.baseline == BASE and again.report.n_test == 100
    assert len(store.list(kind="sweep")) == 1

    cli = resume.run_stored_sweep(store, SPEC, runner, reuse_completed=False)
    assert runner.calls == [[]] and not cli.reused and cli.resumed_points == 0
    assert len(store.list(kind="sweep")) == 2


def test_only_identical_specs_count(store):
    other = SweepSpec(model=ModelRef("cnn"), data=DataRef("digits"), methods=("magnitude",), sparsities=(0.0, 0.5))
    with pytest.raises(RerunException):
        resume.run_stored_sweep(store, other, FakeRunner(other, stop_after=1))
    legacy = store.begin("sweep", {"model": {"name": "cnn"}, "data": {"name": "digits"}, "methods": []})
    store.fail(legacy, "from an older spec version", status="interrupted")  # unparsable now: skipped
    assert resume.same_spec_runs(store, "sweep", SPEC, SweepSpec.from_dict) == []
    assert resume.find_prior_sweep(store, SPEC) == resume.PriorSweep()
    assert [r.id for r in resume.same_spec_runs(store, "sweep", other, SweepSpec.from_dict)] == [
        store.list(kind="sweep")[1].id]


def test_the_newest_resumable_run_wins_and_a_failed_one_counts(store):
    with pytest.raises(RerunException):
        resume.run_stored_sweep(store, SPEC, FakeRunner(stop_after=1))
    newer = store.begin("sweep", SPEC)
    for point in (row(0.0, 0.25), row(0.5, 0.125)):
        store.add_sweep_point(newer, point)
    store.fail(newer, "RuntimeError: a bug", status="failed")
    prior = resume.find_prior_sweep(store, SPEC)
    assert prior.resume_from.id == newer and [p["accuracy"] for p in prior.resume] == [0.25, 0.125]
    got = resume.run_stored_sweep(store, SPEC, FakeRunner())
    assert got.resumed_points == 2 and got.report.rows["accuracy"].tolist()[:2] == [0.25, 0.125]
