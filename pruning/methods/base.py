"""What every pruning method is: the request it gets, the result it returns, its record.

The registry in `pruning.methods` holds one `Method` per name; this module is its contract
(DESIGN §4) and imports nothing of the method modules, so they can all import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..core.masks import global_masks, layer_masks
from ..errors import BadInput

GRANULARITIES = ("unstructured", "n:m", "structured")


@dataclass(frozen=True)
class PruneRequest:
    """What a method sees: the selected prunable tensors (read-only) and the targets."""

    weights: Mapping[str, np.ndarray]  # "layer/attr" -> values, network order
    sparsity: Mapping[str, float]  # "layer/attr" -> target (the same value for uniform pruning)
    scope: str  # "layer" or "global"
    seed: int = 0
    model: Any = None  # the working keras model, for methods that need data or gradients
    data: Any = None  # the Dataset, likewise
    finetune_epochs: int = 0  # methods that need "training" run these epochs themselves
    on_progress: Optional[Callable[[float, str], None]] = None  # (fraction, message) per epoch

    @property
    def global_sparsity(self) -> float:
        values = set(self.sparsity.values())
        if len(values) != 1:
            raise BadInput("global scope needs one sparsity for all layers, not a per-layer plan")
        return values.pop()


@dataclass(frozen=True)
class PruneResult:
    masks: Optional[dict[str, np.ndarray]] = None  # unstructured: key -> bool mask (True = keep)
    # a new model: physically smaller (structured), or retrained (gradual). `masks` then
    # says, in the original shapes, which weights survive in it (for the plots)
    model: Any = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Method:
    name: str
    description: str  # one line, shown beside the method in the app and the CLI
    granularity: str
    needs: tuple[str, ...]  # "weights", "data", "gradients", "training"
    prune: Callable[[PruneRequest], PruneResult] = field(repr=False)
    scopes: tuple[str, ...] = ("layer", "global")

    @property
    def structured(self) -> bool:
        """It removes whole filters/units and returns a new, physically smaller model."""
        return self.granularity == "structured"

    @property
    def trains(self) -> bool:
        """It runs the fine-tune epochs itself (gradual): nobody else may fine-tune after it."""
        return "training" in self.needs

    @property
    def masks_only(self) -> bool:
        """It returns masks of the base weights and trains nothing, so one working model can be
        masked in place: sweeps, sensitivity scans and the lean prune path rely on that."""
        return not self.structured and not self.trains

    @property
    def reads_model(self) -> bool:
        """It reads the working model (data or gradients), not only the weights handed to it:
        it must see the dense model, not the last point's masks."""
        return self.needs != ("weights",)


def scored(score: Callable[[PruneRequest], Mapping[str, np.ndarray]]) -> Callable[[PruneRequest], PruneResult]:
    """An unstructured method from a score function: the highest scores are kept."""

    def prune(request: PruneRequest) -> PruneResult:
        scores = score(request)
        if request.scope == "global":
            return PruneResult(masks=global_masks(scores, request.global_sparsity))
        return PruneResult(masks=layer_masks(scores, request.sparsity))

    return prune


