"""A new user's path in a real browser: Chromium (Playwright) against `streamlit run app.py`.

Starts the app on a free localhost port with a private PRUNESCOPE_HOME, fails on any
Streamlit exception box, and screenshots every page it visits: into a temporary folder,
or into the README's docs/ with `pytest tests/e2e --screenshots docs`.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from chromium import LAUNCH_ARGS, chromium_or_fail

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


PAGE_NAMES = ("Home", "Prune", "Sweep", "Sensitivity", "Runs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """A Chromium to drive, installed first where needed; a missing one fails (never skips)."""
    return chromium_or_fail()


@pytest.fixture(scope="module")
def shots(request, tmp_path_factory) -> Path:
    """Where screenshots go: `--screenshots DIR` (the README's docs/), else a temporary folder."""
    chosen = request.config.getoption("screenshots")
    folder = Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def app_home(tmp_path_factory) -> Path:
    """The app's private PRUNESCOPE_HOME (a CLI run against it sees the app's runs)."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def app_url(chromium_path, app_home, tmp_path_factory):
    port = free_port()
    env = dict(os.environ, PRUNESCOPE_HOME=str(app_home), PYTHONPATH=str(ROOT))
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start in 90 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def page(app_url, chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=list(LAUNCH_ARGS))
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        yield page
        browser.close()


def wait_idle(page, timeout: float = 180_000) -> None:
    """Until Streamlit has finished running the script (no 'Running...' status widget)."""
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )
    assert page.locator('[data-testid="stException"]').count() == 0, "Streamlit showed an exception"


def metric_locator(page, label: str):
    card = page.locator('[data-testid="stMetric"]', has_text=label).first
    return card.locator('[data-testid="stMetricValue"]')


def metric_value(page, label: str) -> str:
    return metric_locator(page, label).inner_text()


def test_new_user_path(page, app_url, shots):
    from playwright.sync_api import expect

    from ui import state

    start = round(state.DEFAULT_SPARSITY * 100)
    page.goto(app_url)
    page.get_by_text(f"Baseline: {state.DEFAULT_MODEL} on digits").wait_for(timeout=180_000)
    wait_idle(page)
    assert re.fullmatch(r"\d+\.\d\d%", metric_value(page, "Test accuracy"))
    assert metric_value(page, "Parameters") == "50,826"  # the mlp: 64-256-128-10
    # the sidebar's page list calls the entry page Home
    nav = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]')
    assert nav.all_inner_texts() and [t.strip() for t in nav.all_inner_texts()][0].endswith("Home")
    page.screenshot(path=str(shots / "home.png"), full_page=True)

    page.goto(app_url + "/Prune")
    page.get_by_text("Sparsity (measured)").wait_for(timeout=120_000)
    wait_idle(page)
    assert metric_value(page, "Sparsity (measured)") == f"{start}.00%"
    before = metric_value(page, "Nonzero params")
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.nth(3).wait_for(timeout=30_000)  # plotly renders after the script finishes
    assert charts.count() == 4  # the trade-off, per-layer sparsity, histogram, mask

    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(20):  # the default 0.70 -> 0.90 in steps of 0.01
        slider.press("ArrowRight")
    expect(metric_locator(page, "Sparsity (measured)")).to_have_text(f"{start + 20}.00%", timeout=240_000)
    wait_idle(page)
    assert metric_value(page, "Nonzero params") != before
    page.screenshot(path=str(shots / "prune.png"), full_page=True)

    # a click on the trade-off chart's first point (the lowest sparsity visited: the default) goes back
    charts.first.locator(".scatterlayer .trace").first.locator("path.point").first.click(force=True)
    expect(metric_locator(page, "Sparsity (measured)")).to_have_text(f"{start}.00%", timeout=60_000)
    wait_idle(page)

    # a 3-point sweep (magnitude and random, the default methods)
    page.goto(app_url + "/Sweep")
    rates = page.get_by_role("textbox", name="Sparsities (%)")
    rates.wait_for(timeout=120_000)
    wait_idle(page)
    rates.fill("0, 50, 90")
    rates.press("Enter")
    page.get_by_text("6 points: 2 method(s) x 3 sparsities").wait_for(timeout=60_000)
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_role("heading", name="Pareto view").wait_for(timeout=300_000)
    wait_idle(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 7
    page.screenshot(path=str(shots / "sweep.png"), full_page=True)

    page.goto(app_url + "/Sensitivity")
    rates = page.get_by_role("textbox", name="Sparsities (%)")
    rates.wait_for(timeout=120_000)
    wait_idle(page)
    rates.fill("50, 90")
    rates.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Run scan").click()
    page.get_by_role("heading", name="Per-layer sparsity plan").wait_for(timeout=300_000)
    wait_idle(page)
    page.screenshot(path=str(shots / "sensitivity.png"), full_page=True)

    # the run history holds what this session did: prunes, the sweep, the scan
    page.goto(app_url + "/Runs")
    page.get_by_role("heading", name="Pareto front").wait_for(timeout=120_000)
    wait_idle(page)
    caption = page.get_by_text(re.compile(r"^\d+ of \d+ runs\.$")).inner_text()
    shown, total = (int(n) for n in re.findall(r"\d+", caption))
    assert shown == total >= 4  # the default and 90% prunes at least, the sweep, the scan
    # every page lists every page: none is a dead end
    links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]').all_inner_texts()
    assert [t.strip()[-len(name):] for t, name in zip(links, PAGE_NAMES)] == list(PAGE_NAMES)
    page.screenshot(path=str(shots / "runs.png"), full_page=True)
