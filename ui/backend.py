"""Cached calls into the backend: the pages' only door to `pruning`.

Specs travel as JSON strings so the cache key is exactly the spec; reports are plain data.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Optional

import streamlit as st

from pruning.executor import Executor, make_executor
from pruning.specs import BaselineReport, DataRef, ModelRef, ProgressFn, PruneReport, PruneSpec


@st.cache_resource(show_spinner=False)
def get_executor() -> Executor:
    """One executor per server process (it owns TensorFlow and the loaded models)."""
    return make_executor(os.environ.get("PRUNESCOPE_EXECUTOR", "inline"))


@st.cache_data(show_spinner=False, max_entries=32)
def _baseline(model_json: str, data_json: str, _on_progress: Optional[ProgressFn] = None) -> BaselineReport:
    model, data = ModelRef(**json.loads(model_json)), DataRef(**json.loads(data_json))
    return get_executor().baseline(model, data, on_progress=_on_progress)


def baseline(model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport:
    return _baseline(json.dumps(asdict(model), sort_keys=True), json.dumps(asdict(data), sort_keys=True), on_progress)


@st.cache_data(show_spinner=False, max_entries=512)
def _prune(spec_json: str, _on_progress: Optional[ProgressFn] = None) -> PruneReport:
    return get_executor().prune(PruneSpec.from_dict(json.loads(spec_json)), on_progress=_on_progress)


def prune(spec: PruneSpec, on_progress: Optional[ProgressFn] = None) -> PruneReport:
    return _prune(spec.to_json(), on_progress)


@st.cache_data(show_spinner=False)
def methods() -> list[dict]:
    """name, description, granularity of every registered method, in registry order."""
    from pruning.methods import METHODS

    return [
        {"name": m.name, "description": m.description, "granularity": m.granularity, "scopes": list(m.scopes)}
        for m in METHODS.values()
    ]


@st.cache_data(show_spinner=False)
def model_names() -> list[str]:
    from pruning.zoo import ZOO

    return list(ZOO)


@st.cache_data(show_spinner=False)
def dataset_names() -> list[str]:
    from pruning.datasets import DATASETS

    return list(DATASETS)


@st.cache_data(show_spinner=False)
def device() -> str:
    from pruning._keras import device_name

    return device_name()


@st.cache_data(show_spinner=False, max_entries=64)
def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()
