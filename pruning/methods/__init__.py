"""The method registry (DESIGN §4): name -> Method, read-only, one contract for all.

A method receives a `PruneRequest` and returns a `PruneResult`: masks for unstructured
methods, a new smaller model for structured ones. It never mutates its inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..errors import BadInput
from ..core.masks import global_masks, layer_masks

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


def scored(score: Callable[[PruneRequest], Mapping[str, np.ndarray]]) -> Callable[[PruneRequest], PruneResult]:
    """An unstructured method from a score function: the highest scores are kept."""

    def prune(request: PruneRequest) -> PruneResult:
        scores = score(request)
        if request.scope == "global":
            return PruneResult(masks=global_masks(scores, request.global_sparsity))
        return PruneResult(masks=layer_masks(scores, request.sparsity))

    return prune


def _build_registry() -> Mapping[str, Method]:
    from . import apoz, filters, gradual, lamp, magnitude, nm, random, taylor, units  # noqa: F401

    methods: dict[str, Method] = {}
    # each module lists its methods; this order is the order users see them in
    for module in (magnitude, random, lamp, taylor, nm, gradual, filters, units, apoz):
        for method in module.METHODS:
            assert method.granularity in GRANULARITIES, method
            methods[method.name] = method
    return MappingProxyType(methods)


METHODS: Mapping[str, Method] = _build_registry()


def get_method(name: str) -> Method:
    """The method called `name`; the error lists the valid names."""
    try:
        return METHODS[name]
    except KeyError:
        raise BadInput(f"unknown method {name!r}: choose one of {', '.join(METHODS)}") from None
