"""8 real browser sessions on one `streamlit run app.py`, each pruning its own spec at once (issue 13 part 3).

Round 1 is tests/e2e/test_sessions.py's burst with all 8 plans (one uploads the tests' tiny model);
each later round moves every session's slider one step (8 fresh specs at once). Reports p50/p95
time from a session's change to its own result, the queue positions it saw, and the checks.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "e2e")]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from browser_sessions import (
        PLANS,
        Plan,
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
    from chromium import LAUNCH_ARGS
    from crash_rounds import make_files
    from playwright.sync_api import sync_playwright

    from pruning.runs.store import RunStore

    work = Path(tempfile.mkdtemp(prefix="prunescope-many-browsers-"))
    model_file, data_file = make_files(work)  # the tests' tiny CNN and its data, as an upload brings them
    home = work / "home"
    server, url = start_server(home, work / "streamlit.log")
    times: list[list[float]] = []
    mismatches = 0
    started = time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(LAUNCH_ARGS))
            sessions = [open_session(browser, url, plan, model_file, data_file) for plan in PLANS[:args.sessions]]
            opened = time.perf_counter() - started
            for round_no in range(args.rounds):
                for session in sessions:
                    submit(session, None if round_no == 0 else Plan(session.plan.name, steps=1))
                for session in sessions:
                    await_result(session)
                runs = RunStore(home / "runs.db").list(kind="prune")
                mismatches += sum(s.cards != expected_cards(own_run(runs, s)) for s in sessions)
                times.append([round(s.seconds, 2) for s in sessions])
                distinct = len({tuple(s.cards.values()) for s in sessions})
                print(f"round {round_no + 1}: {times[-1]} s; distinct results {distinct}/{len(sessions)}", flush=True)
            options = [model_options(s.page) for s in sessions]
            records = [seen(s.page) for s in sessions]
            exceptions = sum(s.page.locator('[data-testid="stException"]').count() for s in sessions)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    flat = [t for row in times for t in row]
    ahead = [q["ahead"] for r in records for q in r["queued"]]
    result = {
        "sessions": args.sessions, "rounds": args.rounds, "results": len(flat),
        "p50_s": percentile(flat, 0.5), "p95_s": percentile(flat, 0.95), "max_s": max(flat),
        "p50_by_round_s": [percentile(row, 0.5) for row in times], "times_s": times,
        "cards_not_own_run": mismatches,
        "sessions_listing_the_upload": sum("uploaded model" in names for names in options),
        "upload_folders": len(list((home / "uploads").iterdir())),
        "sessions_that_saw_a_queue_position": sum(bool(r["queued"]) for r in records),
        "max_queue_position_seen": max(ahead, default=0),
        "exception_boxes": exceptions + sum(r["exception"] for r in records),
        "open_sessions_s": round(opened, 1), "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))
    ok = (mismatches == 0 and result["sessions_listing_the_upload"] == 1 and result["upload_folders"] == 1
          and result["exception_boxes"] == 0 and result["max_queue_position_seen"] >= 1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
