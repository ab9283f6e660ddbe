"""Random pruning: the baseline every real method has to beat."""
from __future__ import annotations

import numpy as np

from .base import Method, PruneRequest, scored


def random_scores(request: PruneRequest) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(request.seed)
    return {key: rng.random(w.shape) for key, w in request.weights.items()}


METHODS = (
    Method(
        name="random",
        description="Remove weights uniformly at random (seeded): the baseline to beat.",
        granularity="unstructured",
        needs=("weights",),
        prune=scored(random_scores),
    ),
)
