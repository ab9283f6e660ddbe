"""Dense neuron and RNN unit pruning (LSTM, GRU, SimpleRNN) by the L1 norm of each unit's weights.

An RNN unit goes with its gates' columns, its recurrent row and the next layer's input.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .base import Method, PruneRequest
from .channels import ranked, unit_vectors

if TYPE_CHECKING:
    from ..core.surgery import ChannelGroup


def l1_unit_scores(request: PruneRequest, groups: Sequence[ChannelGroup]):
    return [sum(np.abs(unit_vectors(request, k)).sum(axis=1) for k in g.kernels) for g in groups]


METHODS = (
    Method(
        name="neurons",
        description="Remove whole Dense units with the smallest L1 norm of their weights, and the next "
                    "layer's matching inputs; sparsity = fraction of units removed per layer.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("neurons", ("dense",), l1_unit_scores),
        scopes=("layer",),
    ),
    Method(
        name="lstm-units",
        description="Remove LSTM hidden units (all four gates, kernel and recurrent kernel) with the "
                    "smallest L1 norm; sparsity = fraction of units removed per layer.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("lstm-units", ("lstm",), l1_unit_scores),
        scopes=("layer",),
    ),
    Method(
        name="gru-units",
        description="Remove GRU hidden units (update, reset and candidate gates together, kernel, recurrent "
                    "kernel and bias in either reset_after layout) with the smallest L1 norm; sparsity = "
                    "fraction of units removed per layer.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("gru-units", ("gru",), l1_unit_scores),
        scopes=("layer",),
    ),
    Method(
        name="rnn-units",
        description="Remove SimpleRNN hidden units (kernel column, recurrent row and column) with the smallest "
                    "L1 norm; sparsity = fraction of units removed per layer.",
        granularity="structured",
        needs=("weights",),
        prune=ranked("rnn-units", ("rnn",), l1_unit_scores),
        scopes=("layer",),
    ),
)
