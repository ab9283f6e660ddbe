"""Values as plain JSON data: the one cleaner the CLI, the run store, reports and the wire use.

numpy scalars and arrays become Python numbers and lists, tuples become lists, and
non-finite floats become null unless the caller keeps them (the worker's wire does).
"""
from __future__ import annotations

import math
from typing import Any


def to_plain(value: Any, keep_nan: bool = False) -> Any:
    """`value` with every container and number made JSON-ready.

    >>> import numpy as np
    >>> to_plain({"a": np.float32(0.5), "b": (1, float("nan")), 2: np.arange(2)})
    {'a': 0.5, 'b': [1, None], '2': [0, 1]}
    >>> to_plain([float("inf")], keep_nan=True)
    [inf]
    """
    if isinstance(value, dict):
        return {str(k): to_plain(v, keep_nan) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, keep_nan) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return to_plain(value.tolist(), keep_nan)
    if isinstance(value, float) and not keep_nan and not math.isfinite(value):
        return None
    return value
