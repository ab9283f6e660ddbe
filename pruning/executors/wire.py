"""Reports as JSON-ready dicts and back, for the worker process boundary (never pickle).

A report rebuilt by `from_wire(kind, to_wire(kind, report))` equals the original field by field,
DataFrames included (values, dtypes, index and column labels).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping

import pandas as pd

from ..plain import to_plain
from ..reports import BaselineReport, PruneReport, SensitivityReport, SweepReport
from ..specs import DataRef, ModelRef, PruneSpec, SensitivitySpec, SweepSpec


def plain(value: Any) -> Any:
    """`json.dumps(default=plain)`: numpy scalars and arrays as Python numbers and lists.

    The one cleaner (`to_plain`) with NaN kept, so a value crosses at full precision and a
    missing metric stays NaN; what it cannot make plain is refused by name.
    """
    cleaned = to_plain(value, keep_nan=True)
    if cleaned is value:  # json calls this hook only for what it cannot write itself
        raise TypeError(f"{type(value).__name__} cannot cross the worker boundary as JSON")
    return cleaned


def dumps(message: Mapping[str, Any]) -> str:
    # NaN stays NaN (Python's json writes and reads it): metrics such as train_accuracy use it
    return json.dumps(message, default=plain, allow_nan=True)


def frame_to_wire(frame: pd.DataFrame) -> dict[str, Any]:
    """Values at full precision (pandas' to_json rounds to 10 digits), dtypes and labels kept."""
    return {
        "columns": [plain(c) if hasattr(c, "item") else c for c in frame.columns],
        "columns_name": frame.columns.name,
        "index": [plain(i) if hasattr(i, "item") else i for i in frame.index],
        "index_name": frame.index.name,
        "range_index": isinstance(frame.index, pd.RangeIndex),
        "dtypes": [str(t) for t in frame.dtypes],
        "data": [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)],
    }


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return value


def frame_from_wire(raw: Mapping[str, Any]) -> pd.DataFrame:
    if raw["range_index"]:
        index = pd.RangeIndex(len(raw["data"]), name=raw["index_name"])
    else:
        index = pd.Index(raw["index"], name=raw["index_name"])
    # built as objects first, so None stays None where the column was object-typed
    frame = pd.DataFrame(raw["data"], columns=range(len(raw["columns"])), index=index, dtype=object)
    for i, dtype in enumerate(raw["dtypes"]):
        if dtype != "object":
            frame[i] = frame[i].astype(dtype)
    frame.columns = pd.Index(raw["columns"], name=raw["columns_name"])
    return frame


def _spec_fields(report: Any) -> dict[str, Any]:
    return {f: getattr(report, f) for f in report.__dataclass_fields__}


def prune_to_wire(report: PruneReport) -> dict[str, Any]:
    raw = _spec_fields(report)
    raw.update(spec=report.spec.to_dict(), layers=frame_to_wire(report.layers), notes=list(report.notes))
    return raw


def prune_from_wire(raw: Mapping[str, Any]) -> PruneReport:
    raw = dict(raw)
    raw.update(spec=PruneSpec.from_dict(raw["spec"]), layers=frame_from_wire(raw["layers"]),
               notes=tuple(raw["notes"]))
    return PruneReport(**raw)


def baseline_to_wire(report: BaselineReport) -> dict[str, Any]:
    raw = _spec_fields(report)
    raw.update(model=dict(vars(report.model)), data=dict(vars(report.data)), layers=frame_to_wire(report.layers))
    return raw


def baseline_from_wire(raw: Mapping[str, Any]) -> BaselineReport:
    raw = dict(raw)
    raw.update(model=ModelRef(**raw["model"]), data=DataRef(**raw["data"]), layers=frame_from_wire(raw["layers"]))
    return BaselineReport(**raw)


def sweep_to_wire(report: SweepReport) -> dict[str, Any]:
    raw = _spec_fields(report)
    raw.update(spec=report.spec.to_dict(), rows=frame_to_wire(report.rows), notes=list(report.notes))
    return raw


def sweep_from_wire(raw: Mapping[str, Any]) -> SweepReport:
    raw = dict(raw)
    raw.update(spec=SweepSpec.from_dict(raw["spec"]), rows=frame_from_wire(raw["rows"]), notes=tuple(raw["notes"]))
    return SweepReport(**raw)


def sensitivity_to_wire(report: SensitivityReport) -> dict[str, Any]:
    raw = _spec_fields(report)
    raw.update(spec=report.spec.to_dict(), accuracy=frame_to_wire(report.accuracy), drop=frame_to_wire(report.drop))
    return raw


def sensitivity_from_wire(raw: Mapping[str, Any]) -> SensitivityReport:
    raw = dict(raw)
    raw.update(spec=SensitivitySpec.from_dict(raw["spec"]), accuracy=frame_from_wire(raw["accuracy"]),
               drop=frame_from_wire(raw["drop"]))
    return SensitivityReport(**raw)


# kind -> (to wire, from wire); the worker and WorkerExecutor dispatch on the job kind.
CODECS: dict[str, tuple[Callable[[Any], dict], Callable[[Mapping[str, Any]], Any]]] = {
    "baseline": (baseline_to_wire, baseline_from_wire),
    "prune": (prune_to_wire, prune_from_wire),
    "sweep": (sweep_to_wire, sweep_from_wire),
    "sensitivity": (sensitivity_to_wire, sensitivity_from_wire),
}


def to_wire(kind: str, report: Any) -> dict[str, Any]:
    return CODECS[kind][0](report)


def from_wire(kind: str, raw: Mapping[str, Any]) -> Any:
    return CODECS[kind][1](raw)


def reports_equal(a: Any, b: Any) -> bool:
    """Field by field; DataFrames compared exactly, NaN equal to NaN (tests and benches use it)."""
    if type(a) is not type(b):
        return False
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, pd.DataFrame):
            try:
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            except AssertionError:
                return False
        elif not _same(x, y):
            return False
    return True


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        # a tuple field must come back a tuple (reports stay hashable where they were)
        return type(x) is type(y) and len(x) == len(y) and all(_same(i, j) for i, j in zip(x, y))
    return bool(x == y)  # numbers by value: numpy float64 and float are the same measurement
