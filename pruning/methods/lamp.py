"""LAMP (Lee et al. 2021): one global ranking of layer-adaptive magnitude scores.

A weight scores w^2 over the sum of the squares at least as large in its layer: no layer empties.
"""
from __future__ import annotations

import numpy as np

from ..core.masks import global_masks
from ..errors import BadInput
from .base import Method, PruneRequest, PruneResult


def lamp_scores(weights: np.ndarray) -> np.ndarray:
    """LAMP score of every weight of one tensor.

    >>> lamp_scores(np.array([1.0, -2.0, 3.0])).round(3).tolist()
    [0.071, 0.308, 1.0]
    """
    squared = np.square(weights.astype(np.float64)).reshape(-1)
    order = np.argsort(squared, kind="stable")
    ascending = squared[order]
    tail = np.cumsum(ascending[::-1])[::-1]  # sum over this weight and every larger one
    scores = np.empty_like(squared)
    scores[order] = np.divide(ascending, tail, out=np.zeros_like(ascending), where=tail > 0)
    return scores.reshape(weights.shape)


def prune_lamp(request: PruneRequest) -> PruneResult:
    targets = set(request.sparsity.values())
    if len(targets) != 1:
        raise BadInput("lamp ranks all layers together: give it one sparsity, not a per-layer plan")
    scores = {key: lamp_scores(w) for key, w in request.weights.items()}
    notes = ()
    if request.scope == "layer":
        notes = ("LAMP ranks all selected layers together by design, so scope 'layer' acts as 'global'; "
                 "per layer, LAMP would equal magnitude pruning.",)
    return PruneResult(masks=global_masks(scores, targets.pop()), notes=notes)


METHODS = (
    Method(
        name="lamp",
        description="Layer-adaptive magnitude (LAMP, Lee et al. 2021): one global ranking that "
                    "normalises each weight by the larger ones in its layer.",
        granularity="unstructured",
        needs=("weights",),
        prune=prune_lamp,
    ),
)
