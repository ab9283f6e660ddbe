"""Time one move of the Prune page's sparsity slider in a real browser, fresh and cached.

    python bench/slider_latency.py [--moves 7] [--trees A,B] [--model FILE --data FILE]

For each source tree (default: this one) starts `streamlit run app.py` there (the default model
and prune of its ui/state.py, worker executor) with a private PRUNESCOPE_HOME, drives Debian's
Chromium with Playwright, presses the slider's arrow key and measures until the "Sparsity
(measured)" card shows the new requested value (with streaming, the evaluated phase's cards)
and until the gzip card holds a size (the full report): a fresh value (the backend prunes and
measures) and a value already seen (served from the report cache). The card is watched on every animation
frame (`wait_for_function(..., polling="raf")`): Playwright's `expect` retries after 100, 250,
500 and 1000 ms, so it rounds a 0.2 s move up to 0.35 s. The websocket frames the server sends
after the key press are timed too: the last one (the script run's end) against the card shows
server time (script + transfer) apart from the browser's own.

With `--model FILE --data FILE` the session first uploads them on the home page (the user's own
model, e.g. keras.applications ResNet50 from bench/move_cost.py's files) and moves the slider on
that; each fresh move's final caption ("Pruned in … ms, evaluated in … ms") gives the backend's
own prune + evaluate, so every fresh move also says card / (prune + evaluate) and full report /
(prune + evaluate), both in one run (issue 11: cards within about twice the evaluation).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
CARD_JS = """(shown) => [...document.querySelectorAll('[data-testid="stMetric"]')]
    .some(m => m.innerText.includes('Sparsity (measured)') && m.innerText.includes(shown))"""
# the whole report: the gzip card holds a size, not "measuring…" (trees from before streaming never show that)
FULL_JS = """() => [...document.querySelectorAll('[data-testid="stMetric"]')]
    .some(m => m.innerText.includes('gzip size') && !m.innerText.includes('measuring'))"""


def start_value(tree: Path) -> tuple[int, str]:
    """The tree's default sparsity (percent) and a one-line description of its first screen."""
    code = ("import json; from ui import state; print(json.dumps([round(getattr(state, 'DEFAULT_SPARSITY', 0.5) * 100), "
            "f\"{state.DEFAULT_MODEL} on {state.DEFAULT_DATASET}, {getattr(state, 'DEFAULT_SCOPE', 'layer')} scope\"]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
                         capture_output=True, text=True, check=True)
    pct, text = json.loads(out.stdout)
    return pct, text


# the final report's caption on the Prune page (pages/1_Prune.py)
TIMING = re.compile(r"Pruned in (\d+) ms(?:, fine-tuned in [\d.]+ s)?, evaluated in (\d+) ms; ([\d.]+) s in all")


def upload(page, url: str, model: Path, data: Path) -> None:
    """The user's own model and dataset through the home page's uploaders (this session keeps them).

    The dataset first: it is small and quick to check, so the model's upload (seconds of checks
    on a large file) never overlaps another upload's rerun."""
    page.goto(url)
    page.get_by_text("Use your own model or dataset").click()
    inputs = page.locator('[data-testid="stFileUploader"] input[type=file]')
    inputs.nth(1).set_input_files(str(data))
    page.wait_for_timeout(3000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)
    inputs.nth(0).set_input_files(str(model))
    page.get_by_text(f"Baseline: {model.name}").wait_for(timeout=300_000)
    page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]', has_text="Prune").first.click()


def backend_timing(page) -> Optional[dict]:
    """prune + evaluate (s) and the report's total as the page's final caption states them."""
    found = TIMING.search(page.inner_text("body"))
    if not found:
        return None
    prune_ms, evaluate_ms, total_s = found.groups()
    return {"prune_s": int(prune_ms) / 1000, "evaluate_s": int(evaluate_ms) / 1000,
            "prune_evaluate_s": (int(prune_ms) + int(evaluate_ms)) / 1000, "report_total_s": float(total_s)}


def time_tree(tree: Path, moves: int, own: Optional[tuple[Path, Path]] = None) -> dict:
    from playwright.sync_api import sync_playwright

    start_pct, first_screen = start_value(tree)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PRUNESCOPE_HOME=tempfile.mkdtemp(prefix="prunescope-slider-"), PYTHONPATH=str(tree))
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    frames: list[float] = []
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
            page.on("websocket", lambda ws: ws.on("framereceived", lambda _: frames.append(time.perf_counter())))
            start = time.perf_counter()
            if own:
                upload(page, f"http://127.0.0.1:{port}", *own)
            else:
                page.goto(f"http://127.0.0.1:{port}/Prune")
            page.wait_for_function(CARD_JS, arg=f"requested {start_pct}.00%", polling="raf", timeout=300_000)
            first_load = time.perf_counter() - start
            slider = page.get_by_role("slider").first
            slider.focus()
            page.wait_for_timeout(3000)  # let the first screen's last frames land

            def move(key: str, shown: str, fresh: bool) -> dict:
                frames.clear()
                t0 = time.perf_counter()
                slider.press(key)
                page.wait_for_function(CARD_JS, arg=shown, polling="raf", timeout=120_000)
                card = time.perf_counter() - t0
                page.wait_for_function(FULL_JS, polling="raf", timeout=120_000)
                full = time.perf_counter() - t0
                page.wait_for_timeout(1500)  # the rest of the run's frames (charts below the card)
                sent = [t - t0 for t in frames]
                out = {"card_s": card, "full_s": full, "first_frame_s": sent[0] if sent else None,
                       "last_frame_s": sent[-1] if sent else None, "frames": len(sent)}
                timing = backend_timing(page) if fresh else None  # a cached move shows the old report's
                if timing:
                    out.update(timing, card_ratio=card / timing["prune_evaluate_s"],
                               full_ratio=full / timing["prune_evaluate_s"])
                return out

            fresh = [move("ArrowRight", f"requested {start_pct + i}.00%", True) for i in range(1, moves + 1)]
            cached = [move("ArrowLeft", f"requested {start_pct + i}.00%", False) for i in range(moves - 1, -1, -1)]
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    if own:
        first_screen = f"{own[0].name} on {own[1].name} (uploaded), the default method and scope"
    return {"tree": str(tree), "first_screen": f"{first_screen}, from {start_pct}%", "first_load_s": first_load,
            "load_avg": os.getloadavg(), "fresh": fresh, "cached": cached}


def summary(name: str, moves: list[dict]) -> str:
    def median(key: str) -> float:
        return statistics.median(m[key] for m in moves if m[key] is not None)

    return (f"{name}: card median {median('card_s'):.3f} s (max {max(m['card_s'] for m in moves):.3f}), "
            f"full report {median('full_s'):.3f} s, "
            f"first frame {median('first_frame_s'):.3f} s, last frame {median('last_frame_s'):.3f} s, "
            f"{statistics.median(m['frames'] for m in moves):.0f} frames, over {len(moves)} moves"
            + ("" if "card_ratio" not in moves[0] else
               f"; card / (prune + evaluate) median {median('card_ratio'):.2f} "
               f"(max {max(m['card_ratio'] for m in moves):.2f}), full report / (prune + evaluate) median "
               f"{median('full_ratio'):.2f}, prune + evaluate median {median('prune_evaluate_s'):.3f} s "
               f"(prune {median('prune_s'):.3f} s, evaluate {median('evaluate_s'):.3f} s)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=7)
    parser.add_argument("--trees", default=str(ROOT), help="comma-separated source trees, timed one after another")
    parser.add_argument("--model", type=Path, help="upload this model file first (with --data)")
    parser.add_argument("--data", type=Path, help="the dataset file uploaded with --model")
    args = parser.parse_args()
    if bool(args.model) != bool(args.data):
        parser.error("--model and --data go together")
    own = (args.model.resolve(), args.data.resolve()) if args.model else None
    for tree in args.trees.split(","):
        before = os.getloadavg()[0]
        result = time_tree(Path(tree).resolve(), args.moves, own)
        print(json.dumps(result), flush=True)
        print(f"{tree} ({result['first_screen']}; load average {before:.2f} -> {result['load_avg'][0]:.2f}; "
              f"first load {result['first_load_s']:.1f} s)")
        print("  " + summary("fresh value  (prune + measure)", result["fresh"]))
        print("  " + summary("cached value (seen before)    ", result["cached"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
