"""Several real browser sessions on one server at once (issue 13 part 3): own results, private uploads.

Each Playwright context changes its own spec in one burst (one uploads a model and prunes it);
each must show the numbers of its own stored run, see the queue while it waits, and no exception.
CI runs 4 sessions (2 cores); bench/many_browsers.py runs all 8 and times them.
"""
from __future__ import annotations

import os
import time

import pytest
from browser_sessions import (
    PLANS,
    await_result,
    expected_cards,
    model_options,
    open_session,
    own_run,
    percentile,
    seen,
    start_server,
    submit,
    worker_paused,
)
from chromium import LAUNCH_ARGS, chromium_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSIONS = int(os.environ.get("PRUNESCOPE_E2E_SESSIONS", "4"))  # 8: what the benchmark runs
# one action each (a method pick, a page link): a multi-step slider move may commit twice
ONE_ACTION = [plan for plan in PLANS if not plan.steps]


def test_sessions_prune_at_once_and_each_sees_only_its_own(tmp_path, tiny_model_file, tiny_npz):
    from playwright.sync_api import sync_playwright

    from pruning.runs.store import RunStore

    plans = (ONE_ACTION + [plan for plan in PLANS if plan.steps])[:SESSIONS]
    chromium = chromium_or_fail()  # before Playwright starts: it looks for Playwright's own
    home = tmp_path / "home"
    server, url = start_server(home, tmp_path / "streamlit.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=list(LAUNCH_ARGS))
            sessions = [open_session(browser, url, plan, tiny_model_file, tiny_npz) for plan in plans]
            with worker_paused(server.pid):  # the burst: one job holds the worker, the others queue behind it
                for session in sessions:
                    submit(session)
                deadline = time.time() + 120
                while sum(bool(seen(s.page)["queued"]) for s in sessions) < len(sessions) - 1:
                    assert time.time() < deadline, [seen(s.page)["queued"] for s in sessions]
                    time.sleep(0.2)
            for session in sessions:
                await_result(session)
            options = [model_options(s.page) for s in sessions]
            records = [seen(s.page) for s in sessions]
            exceptions = [s.page.locator('[data-testid="stException"]').count() for s in sessions]
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)

    runs = RunStore(home / "runs.db").list(kind="prune")
    for session in sessions:
        assert session.cards == expected_cards(own_run(runs, session)), session.plan.name
    shown = [tuple(s.cards.values()) for s in sessions]
    assert len(set(shown)) == len(shown)  # distinct specs, distinct numbers: no one sees another's
    assert exceptions == [0] * len(sessions) and not any(r["exception"] for r in records)

    # the upload is the uploader's alone: its picker lists it, no other does, one private folder holds it
    assert [("uploaded model" in names) for names in options] == [s.plan.upload for s in sessions]
    folders = list((home / "uploads").iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.keras"))) == 1

    # every job but the one the worker held showed its place (1, 2, 3 ... ahead), which only went down
    first = sorted(r["queued"][0]["ahead"] for r in records if r["queued"])
    assert first == list(range(1, len(sessions))), records
    for places in ([q["ahead"] for q in r["queued"]] for r in records):
        assert places == sorted(places, reverse=True), places
    ahead = [q["ahead"] for r in records for q in r["queued"]]
    times = [s.seconds for s in sessions]
    print(f"{SESSIONS} sessions: time to result p50 {percentile(times, 0.5):.1f} s, "
          f"p95 {percentile(times, 0.95):.1f} s; queue positions seen {sorted(set(ahead))}")
