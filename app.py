"""PruneScope home page: pick a dataset and a model, see the dense baseline and its layers.

Run with `streamlit run app.py`; the pages in pages/ build on the choice made here.
"""
from __future__ import annotations

import streamlit as st

from pruning.errors import BadInput
from pruning.model.safety import inspect_model_file
from pruning.specs import DataRef, ModelRef, file_sha256
from ui import cards, state
from ui.sidebar import load_baseline, save_upload, select_model_and_data, show_error

st.set_page_config(page_title="PruneScope", page_icon="✂️", layout="wide")


def handle_uploads() -> None:
    with st.expander("Use your own model or dataset"):
        left, right = st.columns(2)
        model_file = left.file_uploader("Model (.keras or .h5)", type=["keras", "h5"], key="upload_model")
        data_file = right.file_uploader(
            "Dataset (.npz with x_test, y_test; x_train, y_train to train or fine-tune)", type=["npz"],
            key="upload_data",
        )
        try:
            if model_file is not None:
                # checked on arrival, so a hostile file gets its one-line message at once
                path = save_upload(model_file, (".keras", ".h5"), check=inspect_model_file)
                ref = ModelRef(name=model_file.name, path=str(path), sha256=file_sha256(path))
                if st.session_state.get(state.MODEL_FILE) != ref.__dict__:
                    st.session_state[state.MODEL_FILE] = dict(ref.__dict__)
                    st.session_state[state.MODEL] = state.UPLOADED_MODEL
            if data_file is not None:
                path = save_upload(data_file, (".npz",))
                ref = DataRef(name=data_file.name, path=str(path), sha256=file_sha256(path))
                if st.session_state.get(state.DATA_FILE) != ref.__dict__:
                    st.session_state[state.DATA_FILE] = dict(ref.__dict__)
                    st.session_state[state.DATASET] = state.UPLOADED_DATA
        except BadInput as exc:
            show_error(exc)


st.title("✂️ PruneScope")
st.caption(
    "Prune a Keras model and see, honestly, what it costs and what it buys: accuracy, measured "
    "sparsity, size and latency, layer by layer."
)
handle_uploads()
model_ref, data_ref = select_model_and_data()

baseline = load_baseline(model_ref, data_ref)
if baseline is not None:
    ds = baseline.dataset
    st.subheader(f"Baseline: {model_ref.label} on {ds['name']}")
    st.caption(
        f"{baseline.description}. Inputs {tuple(ds['input_shape'])}, {ds['classes']} classes, "
        f"{ds['n_train']:,} train / {ds['n_test']:,} test samples. Device: {baseline.environment['device']}."
    )
    cards.baseline_cards(baseline.metrics, baseline.task)
    st.subheader("Layers")
    st.dataframe(
        baseline.layers.rename(columns={"output_shape": "output shape", "reason": "pruned?"}),
        hide_index=True, width="stretch", key="baseline_layers",
    )
    prunable = int(baseline.layers["prunable"].sum())
    st.info(f"{prunable} prunable layers. Open **Prune** in the sidebar to prune this model.")
    with st.expander("Environment"):
        st.json(baseline.environment)
