"""Widgets every page shares: the dataset and model pickers in the sidebar, uploads, errors.

Choices persist across pages through `ui.state` keys; a page opened by URL in a new
session starts from the defaults (ui.state.DEFAULT_*: digits + mlp).
"""
from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pruning.errors import BadInput
from pruning.paths import home  # not baselines: that imports TensorFlow
from pruning.specs import DataRef, ModelRef

from . import backend, state
from .progress import progress_to  # noqa: F401  (pages import it from here too)

_UNSET = object()


def persistent(widget: Callable, label: str, key: str, default: Any, container=st, **kwargs) -> Any:
    """Render `widget` whose value survives page switches (kept under `key`).

    The widget's own key is seeded from `key` only when the widget is new on this page
    (Streamlit dropped its state on another page) or when code changed `key` since the
    widget last wrote it; otherwise the widget's value wins. Re-seeding on every run
    would let a stale stored value overwrite a newer one the browser sent while an
    earlier run was being interrupted (fast slider moves).
    """
    if key not in st.session_state:
        st.session_state[key] = default
    options: Optional[Sequence] = kwargs.get("options")
    if options is not None and widget is not st.multiselect and st.session_state[key] not in options:
        st.session_state[key] = default
    if widget is st.multiselect and options is not None:
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    wkey, synced, seen_on = state.widget_key(key), f"_synced_{key}", f"_page_{key}"
    page = current_page()
    # a page switch reseeds too: the browser sends the old page's widget values with the switch,
    # and one the server set in the last run (an upload picking "uploaded dataset") comes back stale
    if (wkey not in st.session_state or st.session_state[key] != st.session_state.get(synced, _UNSET)
            or st.session_state.get(seen_on) != page):
        st.session_state[wkey] = st.session_state[key]
    value = getattr(container, widget.__name__)(label, key=wkey, **kwargs)
    st.session_state[key] = st.session_state[synced] = value
    st.session_state[seen_on] = page
    return value


def current_page() -> str:
    """The page script this run is for ("" outside a Streamlit run)."""
    ctx = get_script_run_ctx()
    return getattr(ctx, "page_script_hash", "") if ctx is not None else ""


def session_upload_dir() -> Path:
    """This session's private upload folder, keyed by a random token kept in its state:
    sessions never see each other's uploads, even of identical bytes."""
    if state.UPLOAD_TOKEN not in st.session_state:
        st.session_state[state.UPLOAD_TOKEN] = secrets.token_hex(16)
    return home() / "uploads" / st.session_state[state.UPLOAD_TOKEN]


def save_upload(uploaded, suffixes: tuple[str, ...], check: Optional[Callable[[Path, str], Any]] = None) -> Path:
    """Store an upload in this session's folder under its content hash (never under the
    user's name); `check(path, name)` vets it first and a refused file is not kept."""
    data = uploaded.getvalue()
    suffix = Path(uploaded.name).suffix.lower()
    if suffix not in suffixes:
        raise BadInput(f"{uploaded.name} is not a {' or '.join(suffixes)} file")
    digest = hashlib.sha256(data).hexdigest()
    path = session_upload_dir() / f"{digest}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # same suffix as the final name: the check reads the file as Keras will. A name of its own
        # per call: a rerun (the dataset uploaded while a large model is still being checked) runs
        # this again in another thread, and one shared temp name let each remove the other's file
        tmp = path.with_name(f".{digest}.{secrets.token_hex(4)}.part{suffix}")
        tmp.write_bytes(data)
        try:
            if check is not None:
                check(tmp, uploaded.name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(path)
    return path


# The sidebar's page list (Streamlit's own is hidden: .streamlit/config.toml showSidebarNavigation):
# the pages/ mechanism names the entry page after its file, "app"; this list calls it Home.
# Material icons ship with Streamlit's frontend: emoji need a font the browser may lack.
PAGES = (("app.py", "Home", ":material/home:"), ("pages/1_Prune.py", "Prune", ":material/content_cut:"),
         ("pages/2_Sweep.py", "Sweep", ":material/show_chart:"),
         ("pages/3_Sensitivity.py", "Sensitivity", ":material/grid_on:"),
         ("pages/4_Runs.py", "Runs", ":material/history:"))


def page_nav() -> None:
    """Links to every page in the sidebar, the entry page named Home."""
    try:
        for path, label, icon in PAGES:
            st.sidebar.page_link(path, label=label, icon=icon)
    except StreamlitAPIException:
        # a page run on its own (AppTest.from_file on a page) has no app around it to link to
        return
    st.sidebar.divider()


def select_model_and_data() -> tuple[ModelRef, DataRef]:
    """The page list, then the sidebar's dataset and model pickers; returns the chosen references."""
    page_nav()
    sidebar = st.sidebar
    sidebar.header("Model and data")
    datasets = backend.dataset_names() + ([state.UPLOADED_DATA] if state.DATA_FILE in st.session_state else [])
    models = backend.model_names() + ([state.UPLOADED_MODEL] if state.MODEL_FILE in st.session_state else [])
    dataset = persistent(st.selectbox, "Dataset", state.DATASET, state.DEFAULT_DATASET, sidebar, options=datasets)
    model = persistent(st.selectbox, "Model", state.MODEL, state.DEFAULT_MODEL, sidebar, options=models)
    data_ref = DataRef(**st.session_state[state.DATA_FILE]) if dataset == state.UPLOADED_DATA else DataRef(dataset)
    model_ref = ModelRef(**st.session_state[state.MODEL_FILE]) if model == state.UPLOADED_MODEL else ModelRef(model)
    sidebar.caption(f"Device: {backend.device()}")
    executor = backend.get_executor()
    if executor.name == "ray":  # only there is describe() cheap: the worker's would queue behind jobs
        about = executor.describe()
        sidebar.caption(f"Executor: ray, {about['nodes']} node(s), {about['cpus']:g} CPUs, {about['gpus']:g} GPUs")
    return model_ref, data_ref


def show_error(exc: BadInput) -> None:
    """A user-fixable problem: one line, no traceback; the app keeps serving."""
    st.error(str(exc), icon="⚠️")


def run_gate(spec_json: str, key: str, noun: str) -> None:
    """Run/Cancel for long jobs: nothing runs until the button stores the spec under `key`.

    Cancel forgets the spec; its click reruns the page, which stops the job in the worker
    (finished points stay stored, the run is marked interrupted) and keeps it from resuming.
    """
    if st.button(f"Run {noun}", type="primary", key=f"run_{noun}"):
        st.session_state[key] = spec_json
    if st.session_state.get(key) != spec_json:
        st.info(f"Choose the settings above, then press **Run {noun}**.")
        st.stop()
    st.button(f"Cancel {noun}", key=f"cancel_{noun}", on_click=st.session_state.pop, args=(key, None),
              help=f"Stops the running {noun}; finished points are kept.")


def load_baseline(model: ModelRef, data: DataRef):
    """The baseline report, with a progress bar while a zoo model trains on first use."""
    bar = st.empty()
    on_progress = progress_to(bar)
    try:
        with st.spinner(f"Loading {model.label} on {data.name} (trained once on first use)..."):
            report = backend.baseline(model, data, on_progress)
    except BadInput as exc:
        bar.empty()
        show_error(exc)
        return None
    bar.empty()
    return report


# Static CSS only (no user strings): larger metric values and a wider canvas for demos.
_PRESENTATION_CSS = """
<style>
[data-testid="stMetricValue"] { font-size: 2.6rem; }
[data-testid="stMetricLabel"] p { font-size: 1.05rem; }
.block-container { max-width: 100%; padding-left: 2rem; padding-right: 2rem; }
</style>
"""
PRESENTATION_CHART_HEIGHT = 620


def presentation_toggle() -> bool:
    """Presentation mode: controls fold away, charts and numbers grow (a stakeholder demo)."""
    on = persistent(st.toggle, "Presentation mode", state.PRESENTATION, False, st.sidebar,
                    help="Hide the page's controls and enlarge the charts and numbers.")
    if on:
        st.markdown(_PRESENTATION_CSS, unsafe_allow_html=True)
    return bool(on)


def controls_area(presenting: bool):
    """Where a page puts its controls: folded away while presenting."""
    return st.expander("Controls", expanded=False) if presenting else st.container()


def chart_height(presenting: bool) -> Optional[int]:
    """A chart's height in presentation mode (None: plotly's own)."""
    return PRESENTATION_CHART_HEIGHT if presenting else None
