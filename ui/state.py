"""Session-state keys, in one place: pages use these constants, never string literals.

Keys starting with `ps_` persist across pages; widget keys are derived from them.
"""
from __future__ import annotations

DATASET = "ps_dataset"  # a dataset name, or UPLOADED_DATA
MODEL = "ps_model"  # a zoo name, or UPLOADED_MODEL
MODEL_FILE = "ps_model_file"  # dict(ModelRef) of this session's uploaded model
DATA_FILE = "ps_data_file"  # dict(DataRef) of this session's uploaded dataset
METHOD = "ps_method"
SPARSITY = "ps_sparsity"
SCOPE = "ps_scope"
EXCLUDE = "ps_exclude"
FINETUNE = "ps_finetune"
HIST_LAYER = "ps_hist_layer"

UPLOADED_MODEL = "uploaded model"
UPLOADED_DATA = "uploaded dataset"

DEFAULT_DATASET = "digits"
DEFAULT_MODEL = "cnn"


def widget_key(key: str) -> str:
    """The widget's own key: Streamlit drops widget state on pages that don't render it,
    so the value lives under `key` and is copied into the widget on every run."""
    return f"_w_{key}"
