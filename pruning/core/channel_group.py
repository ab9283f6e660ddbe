"""A channel group: the filters/units structured pruning removes together, and which of them to keep.

Plain data found by surgery.ChannelGraph; the ranked methods choose each group's survivors with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .masks import keep_count


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that must be removed together: the outputs of `producers`, joined by Add & co."""

    producers: tuple[str, ...]  # layers whose filters/units these channels are
    size: int
    kind: str  # "conv", "dense", "lstm", "gru", "rnn" or "mixed"
    kernels: tuple[str, ...]  # the producers' ranking weights, "layer/attr"
    batchnorms: tuple[str, ...]  # BatchNorm layers applied to these channels
    relu_outputs: tuple[str, ...]  # layers whose outputs are these channels after a ReLU
    block: int = 1  # channels go in aligned blocks of this many (they pass a grouped convolution)

    @property
    def joined(self) -> bool:
        return len(self.producers) > 1

    def keep_best(self, scores: Sequence[float], sparsity: float) -> np.ndarray:
        """The channels to keep at `sparsity`: the best-scoring `keep_count(size, sparsity)`, or with
        blocks the best `keep_count(blocks, sparsity)` whole blocks (a block scores its channels' sum).

        Among equal scores the earlier channel (block) stays, so the choice is reproducible.

        >>> group = ChannelGroup(("conv",), 6, "conv", ("conv/kernel",), (), (), block=2)
        >>> group.keep_best([5, 0, 1, 1, 0, 3], 0.5).tolist()  # blocks score 5, 2, 3: two stay
        [0, 1, 4, 5]
        """
        blocks = self.size // self.block
        totals = np.asarray(scores, dtype=np.float64).reshape(blocks, self.block).sum(axis=1)
        best = np.sort(np.argsort(-totals, kind="stable")[:keep_count(blocks, sparsity)])
        return (best[:, None] * self.block + np.arange(self.block)[None, :]).reshape(-1)
