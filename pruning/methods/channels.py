"""Structured pruning from a channel ranking: score each removable group, keep the best.

Not a method module: the filter, unit and activation criteria build their methods with it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence, Union

import numpy as np

from ..core.masks import keep_count
from ..errors import BadInput
from .base import PruneRequest, PruneResult

if TYPE_CHECKING:
    from ..core.surgery import ChannelGroup

# Scores for each group (higher = keep), or a string saying why the group cannot be ranked.
Scorer = Callable[[PruneRequest, Sequence["ChannelGroup"]], list[Union[np.ndarray, str]]]


def unit_vectors(request: PruneRequest, producer: str) -> np.ndarray:
    """(units, weights per unit): each filter/unit's incoming weights as one row.

    An LSTM unit owns its four gates' columns in both the kernel and the recurrent kernel.
    """
    kernel = request.weights[f"{producer}/kernel"]
    recurrent = request.weights.get(f"{producer}/recurrent_kernel")
    if recurrent is None:
        return kernel.reshape(-1, kernel.shape[-1]).T
    units = recurrent.shape[0]
    gates = [w.reshape(w.shape[0], 4, units) for w in (kernel, recurrent)]
    return np.concatenate([g.transpose(2, 0, 1).reshape(units, -1) for g in gates], axis=1)


def ranked(name: str, kinds: tuple[str, ...], score: Scorer) -> Callable[[PruneRequest], PruneResult]:
    """A structured method: in every group of `kinds` ("conv", "dense", "lstm") whose
    producers are all selected, remove the `sparsity` fraction of channels that score lowest."""

    def prune(request: PruneRequest) -> PruneResult:
        from ..core.surgery import ChannelGraph  # TensorFlow only when run

        graph = ChannelGraph(request.model)  # once: groups, the smaller model and its masks read it
        selected = {key.split("/")[0] for key in request.weights}
        groups, notes = [], []
        for group in graph.groups():
            if group.kind not in kinds:
                continue
            chosen = [p for p in group.producers if p in selected]
            if len(chosen) == len(group.producers):
                groups.append(group)
            elif chosen:
                notes.append(f"not pruned: {', '.join(chosen)} share channels through Add with "
                             f"{', '.join(p for p in group.producers if p not in selected)}; select them all")
        if not groups:
            raise BadInput(f"{name} found nothing to remove: the model has no selected "
                           f"{' / '.join(kinds)} layer whose outputs can shrink; pick another method")
        keep, removed, unranked = {}, [], []
        for group, scores in zip(groups, score(request, groups)):
            if isinstance(scores, str):
                unranked.append(f"{', '.join(group.producers)}: {scores}")
                continue
            # one target per group: the mean of its producers' targets (equal unless planned apart)
            target = float(np.mean([request.sparsity[f"{p}/kernel"] for p in group.producers]))
            k = keep_count(group.size, target)
            # stable order: among equal scores the earlier channel stays (reproducible)
            keep[group.producers[0]] = np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])
            if group.joined:
                removed.append(f"{' + '.join(group.producers)} (joined by Add): {group.size} -> {k}")
        if not keep:
            raise BadInput(f"{name} could not rank any layer ({'; '.join(unranked)}): pick another method")
        notes += [f"not pruned: {reason}" for reason in unranked]
        if removed:
            notes.insert(0, "residual groups pruned together: " + "; ".join(removed))
        return PruneResult(model=graph.prune(keep), masks=graph.kept_masks(keep), notes=tuple(notes))

    return prune
