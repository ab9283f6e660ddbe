"""Magnitude pruning (Han et al. 2015): the smallest |w| go, per layer or globally."""
from __future__ import annotations

import numpy as np

from .base import Method, PruneRequest, scored


def magnitude_scores(request: PruneRequest) -> dict[str, np.ndarray]:
    return {key: np.abs(w) for key, w in request.weights.items()}


METHODS = (
    Method(
        name="magnitude",
        description="Remove the weights with the smallest absolute value (one shot).",
        granularity="unstructured",
        needs=("weights",),
        prune=scored(magnitude_scores),
    ),
)
