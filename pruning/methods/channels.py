"""Structured pruning from a channel ranking: score each removable group, keep the best.

Not a method module: the filter, unit and activation criteria build their methods with it.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Sequence, Union

import numpy as np

from ..errors import BadInput
from .base import PruneRequest, PruneResult

if TYPE_CHECKING:
    from ..core.surgery import ChannelGroup

# Scores for each group (higher = keep), or a string saying why the group cannot be ranked.
Scorer = Callable[[PruneRequest, Sequence["ChannelGroup"]], list[Union[np.ndarray, str]]]


def unit_vectors(request: PruneRequest, kernel_key: str) -> np.ndarray:
    """(units, weights per unit): each filter/unit's incoming weights as one row.

    `kernel_key` is the producer's ranking weight ("conv/kernel", "sep/pointwise_kernel"). An
    RNN unit owns its gates' columns (LSTM 4, GRU 3, SimpleRNN 1) in both the kernel and the
    recurrent kernel.
    """
    kernel = request.weights[kernel_key]
    recurrent = request.weights.get(f"{kernel_key.rsplit('/', 1)[0]}/recurrent_kernel")
    if recurrent is None:
        return kernel.reshape(-1, kernel.shape[-1]).T
    units = recurrent.shape[0]
    gates = recurrent.shape[1] // units
    split = [w.reshape(w.shape[0], gates, units) for w in (kernel, recurrent)]
    return np.concatenate([g.transpose(2, 0, 1).reshape(units, -1) for g in split], axis=1)


def ranked(name: str, kinds: tuple[str, ...], score: Scorer) -> Callable[[PruneRequest], PruneResult]:
    """A structured method: in every group of `kinds` ("conv", "dense", "lstm") whose
    producers are all selected, remove the `sparsity` fraction of channels that score lowest."""

    def prune(request: PruneRequest) -> PruneResult:
        from ..core.surgery import ChannelGraph  # TensorFlow only when run

        graph = ChannelGraph(request.model)  # once: groups, the smaller model and its masks read it
        selected = {key.rsplit("/", 1)[0] for key in request.weights}
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
        left = left_alone_notes(graph, kinds, selected)
        if not groups:
            why = f" ({'; '.join(left)})" if left else ""
            raise BadInput(f"{name} found nothing to remove: the model has no selected "
                           f"{' / '.join(kinds)} layer whose outputs can shrink{why}; pick another method")
        keep, removed, unranked, blocked = {}, [], [], []
        for group, scores in zip(groups, score(request, groups)):
            if isinstance(scores, str):
                unranked.append(f"{', '.join(group.producers)}: {scores}")
                continue
            # one target per group: the mean of its producers' targets (equal unless planned apart)
            target = float(np.mean([request.sparsity[k] for k in group.kernels]))
            keep[group.producers[0]] = group.keep_best(scores, target)  # whole blocks through grouped convs
            k = len(keep[group.producers[0]])
            if group.block > 1:
                blocked.append(f"{', '.join(group.producers)}: {group.size} -> {k} in groups of {group.block}")
            if group.joined:
                removed.append(f"{' + '.join(group.producers)} (joined by Add or Multiply): {group.size} -> {k}")
        if not keep:
            raise BadInput(f"{name} could not rank any layer ({'; '.join(unranked)}): pick another method")
        notes += [f"not pruned: {reason}" for reason in unranked] + left
        if removed:
            notes.insert(0, "residual groups pruned together: " + "; ".join(removed))
        if blocked:
            notes.insert(0, "grouped convolutions pruned in whole groups: " + "; ".join(blocked))
        return PruneResult(model=graph.prune(keep), masks=graph.kept_masks(keep), notes=tuple(notes))

    return prune


def left_alone_notes(graph, kinds: tuple[str, ...], selected: set[str], examples: int = 3) -> list[str]:
    """One note per reason why selected layers of `kinds` keep all their channels, naming a few.

    >>> class G:  # a stand-in graph: two convs stop at one LayerNormalization
    ...     def kind(self, producer): return "conv"
    ...     def left_alone(self): return [(("a",), "a LayerNorm (ln1): mixes"), (("b", "c"), "a LayerNorm (ln2): mixes")]
    >>> left_alone_notes(G(), ("conv",), {"a", "b", "c"})
    ['channels kept: 3 layers (a, b, c): their channels reach a LayerNorm: mixes']
    """
    by_reason: dict[str, list[str]] = {}
    for producers, why in graph.left_alone():
        chosen = [p for p in producers if p in selected and graph.kind(p) in kinds]
        # one note per kind of blocker: "a Conv2D (conv_3x3): grouped ..." -> "a Conv2D: grouped ..."
        general = re.sub(r" \([^()]*\)(: )", r"\1", why, count=1) if why.startswith("a ") else why
        by_reason.setdefault(general, []).extend(chosen)
    notes = []
    for why, layers in by_reason.items():
        if not layers:
            continue
        shown = ", ".join(layers[:examples]) + (f", ... {len(layers) - examples} more" if len(layers) > examples else "")
        count = f"{len(layers)} layer{'s' if len(layers) > 1 else ''}"
        what = why if why.startswith("they") else f"their channels reach {why}"
        notes.append(f"channels kept: {count} ({shown}): {what}")
    return notes
