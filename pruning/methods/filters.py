"""Conv filter pruning by a per-filter criterion: L1 / L2 norm, FPGM, or BatchNorm scale.

Each removes whole filters (and the consumers' matching inputs); the model physically shrinks.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

from .base import Method, PruneRequest
from .channels import ranked, unit_vectors

if TYPE_CHECKING:
    from ..core.surgery import ChannelGroup

CONV = ("conv",)
MEANING = "sparsity = fraction of filters removed per layer (residual groups together)"


def _per_producer(request, groups, criterion) -> list[Union[np.ndarray, str]]:
    # a residual group's channels are scored by the sum over all the convs that write them
    return [sum(criterion(unit_vectors(request, k)) for k in g.kernels) for g in groups]


def l1_scores(request: PruneRequest, groups: Sequence[ChannelGroup]):
    return _per_producer(request, groups, lambda v: np.abs(v).sum(axis=1))


def l2_scores(request: PruneRequest, groups: Sequence[ChannelGroup]):
    return _per_producer(request, groups, lambda v: np.sqrt(np.square(v).sum(axis=1)))


def fpgm_distances(vectors: np.ndarray) -> np.ndarray:
    """Sum of Euclidean distances from each filter to all others: filters near the
    geometric median score low, as the others can stand in for them (He et al. 2019).

    >>> fpgm_distances(np.array([[0.0], [1.0], [3.0]])).tolist()
    [4.0, 3.0, 5.0]
    """
    v = vectors.astype(np.float64)
    squared = np.square(v).sum(axis=1)
    gram = squared[:, None] + squared[None, :] - 2.0 * v @ v.T
    return np.sqrt(np.maximum(gram, 0.0)).sum(axis=1)


def fpgm_scores(request: PruneRequest, groups: Sequence[ChannelGroup]):
    return _per_producer(request, groups, fpgm_distances)


def bn_scale_scores(request: PruneRequest, groups: Sequence[ChannelGroup]):
    """|gamma| of the BatchNorm layers on each group's channels (network slimming)."""
    out: list[Union[np.ndarray, str]] = []
    for group in groups:
        gammas = [np.abs(request.model.get_layer(b).gamma.numpy()) for b in group.batchnorms
                  if request.model.get_layer(b).scale]
        out.append(sum(gammas) if gammas else "no BatchNorm with a scale follows these filters")
    return out


METHODS = (
    Method(
        name="filters-l1",
        description=f"Remove whole Conv filters with the smallest L1 norm (Li et al. 2017); {MEANING}.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("filters-l1", CONV, l1_scores),
        scopes=("layer",),
    ),
    Method(
        name="filters-l2",
        description=f"Remove whole Conv filters with the smallest L2 norm; {MEANING}.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("filters-l2", CONV, l2_scores),
        scopes=("layer",),
    ),
    Method(
        name="filters-fpgm",
        description=f"Remove the Conv filters nearest the geometric median of their layer (FPGM, "
                    f"He et al. 2019), the most replaceable ones; {MEANING}.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("filters-fpgm", CONV, fpgm_scores),
        scopes=("layer",),
    ),
    Method(
        name="bn-scale",
        description=f"Remove the Conv filters whose following BatchNorm has the smallest |gamma| "
                    f"(network slimming, Liu et al. 2017); {MEANING}.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("bn-scale", CONV, bn_scale_scores),
        scopes=("layer",),
    ),
)
