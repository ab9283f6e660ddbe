"""Issue 12's new-user trial in a real browser: prune on the Prune page, open the run on the Runs page,
deploy it, see the waterfall with the headline metric at every step, download the int8 model and check
it here with `tf.lite.Interpreter`: its accuracy on the test split equals the page's and the CLI's.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from test_browser import (  # noqa: F401  (fixtures)
    ROOT,
    app_home,
    app_url,
    chromium_path,
    page,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def interpreter_accuracy(path) -> float:
    """Accuracy of the .tflite at `path` on the digits test split, one sample at a time."""
    from pruning._keras import tf
    from pruning.model.datasets import load_dataset
    from pruning.specs import DataRef

    data = load_dataset(DataRef("digits"))
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert (inp["dtype"], out["dtype"]) == (np.float32, np.float32)  # the default float interface
    hits = 0
    for x, y in zip(data.x_test, data.y_test):
        interpreter.set_tensor(inp["index"], x[None].astype(np.float32))
        interpreter.invoke()
        hits += int(interpreter.get_tensor(out["index"])[0].argmax() == y)
    return hits / len(data.y_test)


def test_prune_deploy_download_and_check_the_int8_model(page, app_url, app_home, tmp_path):
    from ui import state

    page.goto(app_url + "/Prune")
    page.get_by_text("Sparsity (measured)").wait_for(timeout=180_000)
    wait_idle(page)
    assert page.locator('[data-testid="stMetric"]', has_text="Inference memory").count() == 1
    assert page.locator('[data-testid="stMetric"]', has_text="accuracy per MFLOP").count() == 1

    page.goto(app_url + "/Runs")
    page.get_by_role("heading", name="Export").wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Convert to TFLite (float32 + int8)").click()
    page.get_by_role("button", name="TFLite int8 (.tflite)").wait_for(timeout=240_000)
    wait_idle(page)
    success = page.locator('[data-testid="stAlertContentSuccess"]').inner_text()
    shown = re.search(r"int8 \(interface: float\) scores accuracy (\d+\.\d\d)% under the TFLite interpreter", success)
    assert shown, success

    # the waterfall: eight bars (both int8 encodings), each with its size and its accuracy
    waterfall = page.locator('[data-testid="stPlotlyChart"]').last
    waterfall.locator("text.bartext").first.wait_for(timeout=30_000)
    bars = waterfall.locator("text.bartext").evaluate_all("els => els.map(e => e.textContent)")  # SVG text
    assert len(bars) == 8 and all(re.fullmatch(r"[\d,.]+ KB · \d+\.\d%", b.strip()) for b in bars), bars

    with page.expect_download() as download:
        page.get_by_role("button", name="TFLite int8 (.tflite)").click()
    path = tmp_path / "int8.tflite"
    download.value.save_as(path)
    mine = interpreter_accuracy(path)
    assert f"{mine * 100:.2f}" == shown.group(1)

    run_id = re.search(r"^run(\d+)-", download.value.suggested_filename).group(1)
    env = dict(os.environ, PRUNESCOPE_HOME=str(app_home), PYTHONPATH=str(ROOT))
    cli = subprocess.run([sys.executable, "-m", "pruning", "export", run_id, "--format", "tflite-int8", "--out",
                          str(tmp_path / "cli.tflite"), "--json"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    result = json.loads(cli.stdout)
    assert result["int8"]["accuracy"] == mine  # the same file, the same test split: exactly
    assert (tmp_path / "cli.tflite").read_bytes() == path.read_bytes()
    assert state.DEFAULT_MODEL in download.value.suggested_filename
