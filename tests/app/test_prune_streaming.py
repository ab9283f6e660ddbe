"""The Prune page streams a prune (issue 11): its metric cards from the evaluated phase while
sizes and latency are still being measured, then the full report, with the same figures."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui import backend, cards, prune_jobs, state

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180
EVALUATED = ("Test accuracy", "Sparsity (measured)", "Nonzero params", "Robust accuracy")


class Gated:
    """The app's executor, but a prune stops right after its evaluated phase until `gate` is set:
    its measure phase "takes" as long as the test wants."""

    def __init__(self, real):
        self.real, self.gate, self.views, self.specs, self.supersede_keys = real, threading.Event(), [], [], []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def prune(self, spec, on_progress=None, on_evaluated=None, supersede_key=None):
        self.specs.append(spec)
        self.supersede_keys.append(supersede_key)

        def evaluated(view: dict) -> None:
            self.views.append(view)
            on_evaluated(view)
            assert self.gate.wait(120)

        return self.real.prune(spec, on_progress=on_progress, on_evaluated=evaluated, supersede_key=supersede_key)


def prune_page_through(monkeypatch, wrapper, sparsity: float) -> AppTest:
    """The Prune page at `sparsity` (a spec no other test prunes), its executor wrapped by `wrapper`
    (which gets the app's real executor as `real` on first use)."""
    real = backend.get_executor

    def executor():
        wrapper.real = wrapper.real or real()
        return wrapper

    monkeypatch.setattr(backend, "get_executor", executor)
    at = AppTest.from_file(str(ROOT / "pages" / "1_Prune.py"), default_timeout=TIMEOUT)
    at.session_state[state.SPARSITY] = sparsity
    return at


def cards_shown(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


@pytest.mark.slow  # starts the worker and TensorFlow (about 30 s on 2 cores)
def test_cards_come_first_then_sizes_and_latency_fill_in(monkeypatch):
    gated = Gated(None)
    monkeypatch.setattr(prune_jobs, "STREAM_WAIT_S", 3.0)
    at = prune_page_through(monkeypatch, gated, 0.63)  # never a cached report
    at.run()
    assert not at.exception
    first = cards_shown(at)
    key = gated.specs[0].to_json()
    assert len(gated.views) == 1 and gated.specs[0].target_sparsity == 0.63
    # the session's own key: its next slider value replaces this job if it still waits in the queue
    assert gated.supersede_keys == [at.session_state[state.PRUNE_JOBS_KEY]] and len(gated.supersede_keys[0]) == 16
    job = backend.prune_jobs().running(key)
    assert job is not None and job.view == gated.views[0] and job.report is None  # measuring, gated
    assert first["gzip size"][0] == cards.MEASURING and first["Latency (masks ≈ 1x)"][0] == cards.MEASURING
    assert first["Sparsity (measured)"] == (f"{gated.views[0]['sparsity']:.2%}", "requested 63.00%")
    assert first["Nonzero params"][0] == f"{gated.views[0]['pruned']['nonzero_params']:,}"
    assert any(i.value.startswith("Still measuring sizes and latency") for i in at.info)
    assert not at.get("plotly_chart")  # nothing below the cards until the report is in

    gated.gate.set()
    while not job.done:
        job.wait(0.1)
    assert job.error is None and backend.finished_prune(gated.specs[0]) is job.report
    at.run()
    assert not at.exception
    full = cards_shown(at)
    assert {label: full[label] for label in EVALUATED} == {label: first[label] for label in EVALUATED}
    assert full["gzip size"][0].endswith(" KB") and full["Latency (masks ≈ 1x)"][0].endswith(" ms")
    assert len(at.get("plotly_chart")) == 4 and not at.info
    assert len(gated.views) == 1  # the second run drew the cached report: nothing pruned again



class SlowSave:
    """The app's executor, but writing a run's model file waits until `gate` is set."""

    def __init__(self, real):
        self.real, self.gate, self.saved, self.specs = real, threading.Event(), [], []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def prune(self, spec, **kwargs):
        self.specs.append(spec)
        return self.real.prune(spec, **kwargs)

    def save(self, spec, path, on_progress=None):
        assert self.gate.wait(120)
        self.saved.append(path)
        return self.real.save(spec, path)


@pytest.mark.slow  # the worker and TensorFlow, as above
def test_the_full_report_is_drawn_before_its_model_file_is_stored(monkeypatch):
    # on ResNet50 writing the file took about 2 s of the move; the page no longer waits for it,
    # and a download made meanwhile waits for the stored file instead of failing
    slow = SlowSave(None)
    at = prune_page_through(monkeypatch, slow, 0.64)
    at.run()
    assert not at.exception
    full = cards_shown(at)
    assert full["gzip size"][0].endswith(" KB") and len(at.get("plotly_chart")) == 4  # the whole report
    spec = slow.specs[0]
    job = backend.prune_jobs().running(spec.to_json())
    assert job is not None and not job.done and slow.saved == []  # the file is not written yet
    assert job.measured.model_path == "" and job.measured.spec == spec and backend.finished_prune(spec) is None

    got: list[bytes] = []
    download = threading.Thread(target=lambda: got.append(backend.pruned_model_bytes(job.measured, "keras2")))
    download.start()
    download.join(1.0)
    assert download.is_alive() and not got  # waits for the stored file
    slow.gate.set()
    download.join(120)
    assert job.done and job.error is None and len(slow.saved) == 1
    stored = Path(job.report.model_path)
    assert stored.is_file() and got == [stored.read_bytes()] and got[0][:2] == b"PK"  # a .keras zip
    assert backend.finished_prune(spec) is job.report
