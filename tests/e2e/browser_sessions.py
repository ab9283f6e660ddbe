"""Several people on one `streamlit run app.py`: each a Playwright context pruning its own spec.

Shared by tests/e2e/test_sessions.py (a few sessions) and bench/many_browsers.py (8): start the
server, open the sessions, change each one's spec at once, time each until its own result shows.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1300, "height": 1100}
QUEUED = re.compile(r"Queued: (\d+) jobs? ahead of yours")  # ui.progress.queue_text

# Every page records, with its own clock (Date.now(), the same wall clock as time.time() here):
# each queue position it showed, each new result (the "Pruned in ..." caption and the requested
# sparsity of the cards) and any exception box. A MutationObserver sees states a poll would miss.
OBSERVER_JS = r"""
(() => {
  const ps = window.__ps = {queued: [], results: [], exception: false};
  let scheduled = false, lastQueued = null, lastKey = null;
  const check = () => {
    scheduled = false;
    const text = document.body ? document.body.textContent : "";
    const q = text.match(/Queued: (\d+) jobs? ahead of yours/);
    const queued = q ? Number(q[1]) : null;
    if (queued !== lastQueued) { lastQueued = queued; if (queued !== null) ps.queued.push({t: Date.now(), ahead: queued}); }
    const caption = (text.match(/Pruned in [^;]*; [\d.]+ s in all/) || [null])[0];
    const requested = (text.match(/requested (\d+\.\d\d)%/) || [null, null])[1];
    const key = caption + "|" + requested;
    if (caption && key !== lastKey) { lastKey = key; ps.results.push({t: Date.now(), caption, requested}); }
    if (document.querySelector('[data-testid="stException"]')) ps.exception = true;
  };
  new MutationObserver(() => { if (!scheduled) { scheduled = true; setTimeout(check, 20); } })
    .observe(document, {subtree: true, childList: true, characterData: true});
})();
"""


@contextmanager
def worker_paused(server_pid: int) -> Iterator[int]:
    """SIGSTOP the server's worker process for the block (SIGCONT after): the job it holds cannot
    finish, so every job sent meanwhile queues behind it, however fast this machine is."""
    sys.path.insert(0, str(ROOT / "bench"))
    from soak import descendants

    workers = [pid for pid in descendants(server_pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
               and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGSTOP)
    try:
        yield workers[0]
    finally:
        os.kill(workers[0], signal.SIGCONT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, log: Path, timeout_s: float = 120) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free localhost port with its own PRUNESCOPE_HOME; (process, url)."""
    port = free_port()
    env = dict(os.environ, PRUNESCOPE_HOME=str(home), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"], cwd=ROOT, env=env, stdout=open(log, "a"),
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"streamlit did not start in {timeout_s:.0f} s")


@dataclass(frozen=True)
class Plan:
    """What one session changes on the Prune page: a method (None: keep magnitude), slider steps
    of 0.01 from the default (negative: down), or, for the uploading session, nothing: its
    own model's first prune is its job."""

    name: str
    method: Optional[str] = None
    steps: int = 0
    upload: bool = False


# Each changes one thing, so each session queues exactly one fresh prune when the burst comes.
PLANS = (
    Plan("upload", upload=True),
    Plan("magnitude+5", steps=5),
    Plan("random", method="random"),
    Plan("nm", method="nm"),
    Plan("magnitude-10", steps=-10),
    Plan("lamp", method="lamp"),
    Plan("taylor", method="taylor"),
    Plan("magnitude+20", steps=20),
)


@dataclass
class Session:
    """One browser context on the app and what it saw."""

    plan: Plan
    page: object
    model: str  # the model's name in the run store: "mlp", or the uploaded file's
    method: str = "magnitude"  # the method in effect after the latest submit
    before: Optional[str] = None  # the "Pruned in" caption before the burst
    submitted_ms: float = 0.0
    result_ms: Optional[float] = None
    requested: Optional[str] = None  # the slider's value after the burst, as the card prints it
    cards: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.result_ms - self.submitted_ms) / 1000


def wait_idle(page, timeout: float = 180_000) -> None:
    """Until Streamlit has finished running the script (no 'Running...' status widget)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def card(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def open_session(browser, url: str, plan: Plan, model_file: Path, data_file: Path) -> Session:
    """A new context: the uploader lands on Home and uploads its model and dataset, the others
    open the Prune page (the default spec, pruned once and then shared through the report cache)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(OBSERVER_JS)
    page = context.new_page()
    if plan.upload:
        page.goto(url)
        page.get_by_text("Use your own model or dataset").click()
        inputs = page.locator('[data-testid="stFileUploader"] input[type=file]')
        inputs.nth(0).set_input_files(str(model_file))
        wait_idle(page)
        inputs.nth(1).set_input_files(str(data_file))
        page.get_by_text(f"Baseline: {model_file.name}").wait_for(timeout=300_000)
    else:
        page.goto(url + "/Prune")
        page.get_by_text("Sparsity (measured)", exact=True).first.wait_for(timeout=300_000)
    wait_idle(page)
    return Session(plan, page, model_file.name if plan.upload else "mlp")


def caption_now(page) -> Optional[str]:
    results = page.evaluate("() => window.__ps.results")
    return results[-1]["caption"] if results else None


def submit(session: Session, plan: Optional[Plan] = None) -> None:
    """The session's change (its own plan, or `plan`), without waiting for its result."""
    page, plan = session.page, plan or session.plan
    session.method = plan.method or session.method
    session.before = caption_now(page)
    session.submitted_ms = page.evaluate("() => Date.now()")
    if plan.upload and "/Prune" not in page.url:
        page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]', has_text="Prune").click()
    elif plan.method:
        page.locator('[data-testid="stSelectbox"]', has_text="Method").click()
        page.get_by_role("option", name=re.compile(f"^{re.escape(plan.method)} ")).click()
    else:
        slider = page.get_by_role("slider").first
        slider.focus()
        for _ in range(abs(plan.steps)):
            slider.press("ArrowRight" if plan.steps > 0 else "ArrowLeft")


def await_result(session: Session, timeout: float = 300_000) -> None:
    """Until the session shows a new result for its own requested sparsity; records when it came."""
    page = session.page
    if session.before is None:  # the uploader's first visit of the Prune page
        page.get_by_text("Sparsity (measured)", exact=True).first.wait_for(timeout=timeout)
    thumb = page.locator('[data-testid="stSliderThumbValue"]').first  # the control, not the result
    session.requested = f"{float(thumb.inner_text()) * 100:.2f}"
    args = {"t0": session.submitted_ms, "before": session.before, "req": session.requested}
    found = ("(a) => window.__ps.results.find(r => r.t >= a.t0 && r.caption !== a.before "
             "&& r.requested === a.req)")
    page.wait_for_function(f"(a) => !!({found})(a)", arg=args, timeout=timeout)
    session.result_ms = page.evaluate(f"(a) => ({found})(a).t", args)
    wait_idle(page, timeout)
    session.cards = {label: card(page, label) for label in ("Test accuracy", "Sparsity (measured)", "Nonzero params")}


def expected_cards(run) -> dict:
    """The cards a session must show for its stored run (ui.cards' formats)."""
    pruned = run.metrics["pruned"]
    return {"Test accuracy": f"{pruned['accuracy']:.2%}", "Sparsity (measured)": f"{run.metrics['sparsity']:.2%}",
            "Nonzero params": f"{pruned['nonzero_params']:,}"}


def own_run(runs: list, session: Session):
    """The one completed run of the session's latest spec: its model, method and requested sparsity."""
    target = round(float(session.requested) / 100, 4)
    mine = [r for r in runs if r.model == session.model and r.method == session.method
            and round(r.target_sparsity, 4) == target and r.status == "completed"]
    assert len(mine) == 1, (session.plan.name, [(r.model, r.method, r.target_sparsity) for r in runs])
    return mine[0]


def model_options(page) -> list[str]:
    """The sidebar model picker's choices, read by opening it (Escape closes it unchanged)."""
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]', has_text="Model").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=30_000)
    names = [text.strip() for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return names


def seen(page) -> dict:
    """What the page's observer recorded: queue positions, results, an exception box."""
    return page.evaluate("() => window.__ps")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below it.

    >>> percentile([4.0, 1.0, 3.0, 2.0], 0.5), percentile([4.0, 1.0, 3.0, 2.0], 0.95)
    (2.0, 4.0)
    """
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n q), at least the first
    return ordered[int(rank) - 1]
