"""Time one move of the Prune page's sparsity slider in a real browser, fresh and cached.

    python bench/slider_latency.py [--moves 5]

Starts `streamlit run app.py` (the default model and prune of ui/state.py, worker executor)
with a private PRUNESCOPE_HOME, drives Debian's Chromium with Playwright, presses the slider's
arrow key and measures until the "Sparsity (measured)" card shows the new requested value: a
fresh value (the backend prunes and measures) and a value already seen (served from the
report cache).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    sys.path.insert(0, str(ROOT))
    from ui import state

    start_pct = round(getattr(state, "DEFAULT_SPARSITY", 0.5) * 100)  # trees before issue 11 started at 50%
    print(f"default: {state.DEFAULT_MODEL} on {state.DEFAULT_DATASET}, "
          f"{getattr(state, 'DEFAULT_SCOPE', 'layer')} scope, from {start_pct}%")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PRUNESCOPE_HOME=tempfile.mkdtemp(prefix="prunescope-slider-"), PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/Prune")
            # the requested value, shown under the measured one, names the spec the card is for
            card = page.locator('[data-testid="stMetric"]', has_text="Sparsity (measured)").first \
                .locator('[data-testid="stMetricDelta"]')
            expect(card).to_have_text(f"requested {start_pct}.00%", timeout=300_000)
            print(f"first load (worker start, cnn trained on first use): {time.perf_counter() - start:.1f} s")
            slider = page.get_by_role("slider").first
            slider.focus()

            def move(key: str, shown: str) -> float:
                t0 = time.perf_counter()
                slider.press(key)
                expect(card).to_have_text(shown, timeout=120_000)
                return time.perf_counter() - t0

            fresh, cached = [], []
            for i in range(1, args.moves + 1):
                fresh.append(move("ArrowRight", f"requested {start_pct + i}.00%"))
            for i in range(args.moves - 1, -1, -1):
                cached.append(move("ArrowLeft", f"requested {start_pct + i}.00%"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"fresh value  (prune + measure): median {statistics.median(fresh):.2f} s, "
          f"max {max(fresh):.2f} s over {len(fresh)} moves")
    print(f"cached value (seen before):     median {statistics.median(cached):.2f} s, "
          f"max {max(cached):.2f} s over {len(cached)} moves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
