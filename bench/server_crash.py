"""kill -9 of `streamlit run app.py` during a sweep started on the Sweep page, N times (issue 13, part 2).

Chromium (Playwright) starts the same sweep each round; once the server has stored 1-3 new
points it is killed, restarted, and the next round's identical sweep must resume from them.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from soak import descendants  # noqa: E402  (every process below the server: its worker)
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RATES = ", ".join(str(r) for r in range(0, 90, 3))  # 0-87 % in steps of 3, x magnitude, random: 60 points
POINTS = 60  # enough that 20 rounds of 1-3 new points each fit before the sweep is done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running(pid: int) -> bool:
    """Whether `pid` is alive and not a zombie (an exited child nobody has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_server(home: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PRUNESCOPE_HOME=str(home), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"], cwd=ROOT, env=env, stdout=open(log, "a"),
        stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start in 120 s")


def runs(db: Path) -> list[tuple[int, str, list[dict]]]:
    """(id, status, points) of every sweep run, oldest first, read straight from SQLite."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            out = []
            for run_id, status in conn.execute("SELECT id, status FROM runs WHERE kind = 'sweep' ORDER BY id"):
                rows = conn.execute("SELECT row_json FROM sweep_points WHERE run_id = ? ORDER BY seq", (run_id,))
                out.append((run_id, status, [json.loads(text) for (text,) in rows]))
            return out
    except sqlite3.OperationalError:
        return []


def start_sweep(browser, url: str) -> object:
    """Open the Sweep page in a new session, set the grid and press Run sweep; returns the page."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(url + "/Sweep")
    rates = page.get_by_role("textbox", name="Sparsities (%)")
    rates.wait_for(timeout=300_000)
    rates.fill(RATES)
    rates.press("Enter")
    page.get_by_text(f"{POINTS} points: 2 method(s) x {POINTS // 2} sparsities").wait_for(timeout=120_000)
    page.get_by_role("button", name="Run sweep").click()
    return page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="prunescope-server-crash-"))
    home, log, db = work / "home", work / "streamlit.log", work / "home" / "runs.db"
    rng = random.Random(args.seed)
    totals = {"rounds": 0, "killed_mid_sweep": 0, "interrupted_after_restart": 0, "integrity_ok": 0, "lost": 0,
              "recomputed": 0, "duplicates": 0, "orphans_left": 0, "zombies_left": 0, "orphans_after_6s": 0}
    started = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        port = free_port()
        server = start_server(home, port, log)
        prior: dict[tuple, dict] = {}
        for _ in range(args.rounds):
            want = len(prior) + rng.randint(1, 3)
            if want >= POINTS:
                break
            known = {run_id for run_id, _, _ in runs(db)}
            page = start_sweep(browser, f"http://127.0.0.1:{port}")
            deadline = time.time() + 600
            while True:
                mine = [r for r in runs(db) if r[0] not in known]
                if (mine and len(mine[-1][2]) >= want) or time.time() > deadline:
                    break
                time.sleep(0.05)
            below = descendants(server.pid)
            server.send_signal(signal.SIGKILL)
            server.wait()
            page.close()
            time.sleep(1.0)  # the worker notices its parent is gone (watch_parent polls every 0.5 s)
            alive = [pid for pid in below if running(pid)]
            totals["orphans_left"] += len(alive)
            totals["zombies_left"] += sum(1 for pid in below if Path(f"/proc/{pid}").exists() and not running(pid))
            deadline = time.time() + 5
            while any(running(pid) for pid in alive) and time.time() < deadline:
                time.sleep(0.1)
            totals["orphans_after_6s"] += sum(1 for pid in alive if running(pid))
            for pid in alive:  # ours: the worker of the server we started
                if running(pid):
                    os.kill(pid, signal.SIGKILL)
            totals["rounds"] += 1
            totals["killed_mid_sweep"] += bool(mine) and mine[-1][1] == "running" and len(mine[-1][2]) < POINTS
            port = free_port()
            server = start_server(home, port, log)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30)  # the next start
            run_id, status, points = runs(db)[-1]
            # the app's store reaps on open, which happens on the first page that reads it
            from pruning.runs.store import RunStore

            status = RunStore(db).get(run_id).status
            totals["interrupted_after_restart"] += status == "interrupted"
            with sqlite3.connect(db) as conn:
                totals["integrity_ok"] += conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            keys = [(p["method"], p["target_sparsity"]) for p in points]
            totals["duplicates"] += len(keys) - len(set(keys))
            here = dict(zip(keys, points))
            totals["lost"] += sum(1 for key in prior if key not in here)
            totals["recomputed"] += sum(1 for key, row in prior.items() if key in here and here[key] != row)
            prior = here
        # the last round runs to the end
        known = {run_id for run_id, _, _ in runs(db)}
        page = start_sweep(browser, f"http://127.0.0.1:{port}")
        page.get_by_text("Pareto view").wait_for(timeout=900_000)
        last_id, last_status, last_points = [r for r in runs(db) if r[0] not in known][-1]
        keys = [(p["method"], p["target_sparsity"]) for p in last_points]
        by_key = dict(zip(keys, last_points))
        totals.update(final_status=last_status, final_points=len(last_points),
                      final_duplicates=len(keys) - len(set(keys)),
                      final_lost=sum(1 for key in prior if key not in by_key),
                      final_recomputed=sum(1 for key, row in prior.items() if by_key.get(key) != row),
                      resumed_expected=len(prior),
                      exception_boxes=page.locator('[data-testid="stException"]').count())
        page.close()
        browser.close()
        below = descendants(server.pid)
        server.terminate()
        server.wait(timeout=60)
        for pid in below:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
    totals["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(totals, indent=2))
    ok = (totals["lost"] == totals["recomputed"] == totals["duplicates"] == 0
          and totals["rounds"] == totals["killed_mid_sweep"] == totals["interrupted_after_restart"]
          == totals["integrity_ok"] and totals["final_status"] == "completed" and totals["final_points"] == POINTS
          and totals["final_lost"] == totals["final_recomputed"] == totals["final_duplicates"] == 0
          and totals["exception_boxes"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
