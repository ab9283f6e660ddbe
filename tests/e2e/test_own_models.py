"""Every kind of model a new user brings, in a real browser: uploaded, pruned, downloaded.

One after another, through the home page's uploaders (one session, so the sidebar's links and
not new page loads): a Keras 3 CNN with BatchNorm and squeeze-and-excite, a Keras 3
Embedding -> Conv1D -> GRU text model, a binary and a multi-label sigmoid model, a tf_keras
regression MLP (tests/e2e/own_models.py). Each is pruned with magnitude and a structured method;
the cards must show its headline metric, and the download come back in the format it came in.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from own_models import OwnModel, make_own_models
from test_browser import app_home, app_url, chromium_path, metric_value, page, shots, wait_idle  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COMPANION = {"binary": "ROC AUC", "regression": "R²"}  # shown beside the headline, dense value too
CARD_VALUE = {"Test accuracy": r"\d+\.\d\d%", "Test mean per-label accuracy": r"\d+\.\d\d%",
              "Test MAE": r"\d+(\.\d+)?(e-?\d+)?"}


@pytest.fixture(scope="module")
def own_models(tmp_path_factory) -> list[OwnModel]:
    from pruning._keras import keras as k2
    from pruning.model.keras3 import keras3

    return make_own_models(tmp_path_factory.mktemp("own"), keras3(), k2)


def go(page, name: str) -> None:
    """A sidebar link: the same session (a new page load would forget the uploads)."""
    page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]', has_text=name).first.click()
    wait_idle(page)


def upload(page, own: OwnModel) -> None:
    expander = page.get_by_text("Use your own model or dataset")
    if not page.locator('[data-testid="stFileUploader"]').first.is_visible():
        expander.click()
    uploaders = page.locator('[data-testid="stFileUploader"]')
    uploaders.nth(0).locator('input[type="file"]').set_input_files(str(own.model))
    wait_idle(page)
    uploaders.nth(1).locator('input[type="file"]').set_input_files(str(own.data))
    page.get_by_text(re.compile(rf"^Baseline: {re.escape(own.model.name)} \(file\) on {re.escape(own.data.name)}$")
                     ).wait_for(timeout=180_000)
    wait_idle(page)


def choose_method(page, method: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]', has_text="Method").first
    box.locator("input").click()
    page.keyboard.type(method)
    page.get_by_role("option", name=re.compile(rf"^{re.escape(method)} \(")).first.click()
    wait_idle(page)


def check_cards(page, own: OwnModel, method: str) -> None:
    page.get_by_text("Sparsity (measured)").first.wait_for(timeout=180_000)
    wait_idle(page)
    value = metric_value(page, own.headline)
    assert re.fullmatch(CARD_VALUE[own.headline], value), (own.name, method, value)
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    if own.headline != "Test accuracy":  # a multi-label or regression model never shows plain accuracy
        assert not any(label.strip() == "Test accuracy" for label in labels), (own.name, labels)
    assert page.locator('[data-testid="stAlert"]', has_text="⚠️").count() == 0, (own.name, method)
    if own.name in COMPANION:
        companion = rf"^Test {COMPANION[own.name]} -?\d[\d.e-]* \(dense -?\d[\d.e-]*\)\.$"
        assert page.get_by_text(re.compile(companion)).count() == 1, (own.name, method)


def download(page, folder: Path, own: OwnModel, method: str) -> Path:
    radio = page.locator('[data-testid="stRadio"]', has_text="Download as").first
    checked = radio.locator("label", has=page.locator('input[type="radio"]:checked')).inner_text()
    assert ("Keras 3" if own.saved_by == "keras3" else "Keras 2") in checked, (own.name, checked)
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name="Download pruned model (.keras)").click()
    path = folder / f"{own.name}-{method}.keras"
    info.value.save_as(path)
    return path


def check_download(path: Path, own: OwnModel) -> None:
    """The file is in the format the model came in and loads with that Keras, safe mode on."""
    from pruning.model.safety import saved_by_keras3

    x = np.load(own.data)["x_test"][:8]
    assert saved_by_keras3(path) == (own.saved_by == "keras3"), own.name
    if own.saved_by == "keras3":
        from pruning.model.keras3 import keras3

        model = keras3().saving.load_model(path, safe_mode=True)
    else:
        from pruning._keras import keras

        model = keras.models.load_model(path, safe_mode=True, compile=False)
    assert np.isfinite(np.asarray(model.predict(x, verbose=0))).all()


def test_every_model_type_uploads_prunes_and_downloads(page, app_url, shots, own_models, tmp_path):  # noqa: F811
    page.goto(app_url)
    page.get_by_text("Baseline:").first.wait_for(timeout=180_000)
    wait_idle(page)
    for own in own_models:
        go(page, "Home")
        upload(page, own)
        go(page, "Prune")
        choose_method(page, "magnitude")
        check_cards(page, own, "magnitude")
        check_download(download(page, tmp_path, own, "magnitude"), own)
        choose_method(page, own.structured)
        check_cards(page, own, own.structured)
        page.get_by_text("Layer shapes: the model really shrank").wait_for(timeout=30_000)
        check_download(download(page, tmp_path, own, own.structured), own)
        page.get_by_role("heading", name="Prune").first.scroll_into_view_if_needed()  # the cards, not the download
        page.screenshot(path=str(shots / f"own-{own.name}.png"), full_page=True)
