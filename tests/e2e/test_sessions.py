"""Several real browser sessions on one server at once (issue 13 part 3): own results, private uploads.

Each Playwright context changes its own spec in one burst (one uploads a model and prunes it);
each must show the numbers of its own stored run, see the queue while it waits, and no exception.
CI runs 4 sessions (2 cores); bench/many_browsers.py runs all 8 and times them.
"""
from __future__ import annotations

import os

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
)
from chromium import LAUNCH_ARGS, chromium_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSIONS = int(os.environ.get("PRUNESCOPE_E2E_SESSIONS", "4"))  # 8: what the benchmark runs


def test_sessions_prune_at_once_and_each_sees_only_its_own(tmp_path, tiny_model_file, tiny_npz):
    from playwright.sync_api import sync_playwright

    from pruning.runs.store import RunStore

    chromium = chromium_or_fail()  # before Playwright starts: it looks for Playwright's own
    home = tmp_path / "home"
    server, url = start_server(home, tmp_path / "streamlit.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=list(LAUNCH_ARGS))
            sessions = [open_session(browser, url, plan, tiny_model_file, tiny_npz) for plan in PLANS[:SESSIONS]]
            for session in sessions:  # the burst: every session's job is queued before most finish
                submit(session)
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

    # jobs queued behind others showed their place while they waited
    ahead = [q["ahead"] for r in records for q in r["queued"]]
    assert ahead and max(ahead) >= 1, records
    times = [s.seconds for s in sessions]
    print(f"{SESSIONS} sessions: time to result p50 {percentile(times, 0.5):.1f} s, "
          f"p95 {percentile(times, 0.95):.1f} s; queue positions seen {sorted(set(ahead))}")
