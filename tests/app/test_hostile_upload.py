"""AppTest: a hostile model upload gets one error line at once and the app keeps serving;
uploads live in a per-session folder, so sessions never see each other's files.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import INPUT_SHAPE
from streamlit.testing.v1 import AppTest

from ui import state

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("canary") / "code-ran.txt"


@pytest.fixture(scope="module")
def lambda_h5(tmp_path_factory, canary) -> bytes:
    """An .h5 whose Lambda writes the canary when Keras loads it (safe mode does not stop it)."""
    from pruning._keras import keras

    L = keras.layers
    inputs = L.Input(INPUT_SHAPE)
    x = L.Lambda(lambda t, p=str(canary): (open(p, "w").write("ran"), t)[1], name="evil")(inputs)
    model = keras.Model(inputs, L.Dense(10, name="out")(L.Flatten()(x)))
    canary.unlink()  # building called the Lambda once; from here on it must never run
    path = tmp_path_factory.mktemp("evil") / "evil.h5"
    model.save(path)
    return path.read_bytes()


def upload_model(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload_model").set_value((name, data, "application/octet-stream"))
    return at.run()


def session_dir(at: AppTest) -> Path:
    from pruning.paths import home

    return home() / "uploads" / at.session_state[state.UPLOAD_TOKEN]


def test_hostile_upload_one_error_line_and_the_app_keeps_serving(lambda_h5, canary):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    for name, data, fragment in [
        ("evil.h5", lambda_h5, "layer evil of evil.h5 is a Lambda layer"),
        ("evil.keras", lambda_h5, "evil.keras holds HDF5 data, not a .keras archive: rename it to .h5"),
    ]:
        upload_model(at, name, data)
        assert not at.exception
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and fragment in errors[0] and "\n" not in errors[0], errors
        assert not canary.exists()  # 0 code executed
        assert list(session_dir(at).iterdir()) == []  # a refused upload is not kept
        # the default digits + model is still selected, and still served
        assert state.UPLOADED_MODEL not in at.selectbox(key=state.widget_key(state.MODEL)).options
        assert at.selectbox(key=state.widget_key(state.MODEL)).value == state.DEFAULT_MODEL
        assert {m.label for m in at.metric} >= {"Test accuracy", "Parameters"}
        assert at.subheader[0].value == f"Baseline: {state.DEFAULT_MODEL} on digits"


def test_uploads_are_private_to_their_session(tiny_model_file):
    data = tiny_model_file.read_bytes()
    sessions = [AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT) for _ in range(2)]
    stored = []
    for at in sessions:
        at.session_state[state.MODEL] = "mlp"  # skip the default baseline: this test is about files
        upload_model(at.run(), "tiny.keras", data)
        assert not at.exception
        path = Path(at.session_state[state.MODEL_FILE]["path"])
        assert path.parent == session_dir(at) and path.read_bytes() == data
        stored.append(path)
        # the uploaded model is checked against the dataset: 4 outputs cannot score digits' 10 classes
        assert any("labels go up to 9 but the model has 4 outputs" in e.value for e in at.error)
    assert stored[0].name == stored[1].name  # keyed by content hash ...
    assert stored[0].parent != stored[1].parent  # ... inside each session's own folder
    assert [p.name for p in stored[0].parent.iterdir()] == [stored[0].name]
