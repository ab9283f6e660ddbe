"""The method registry (DESIGN §4): name -> Method, read-only, one contract for all.

A method receives a `PruneRequest` and returns a `PruneResult`: masks for unstructured
methods, a new smaller model for structured ones. It never mutates its inputs.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from ..errors import BadInput
from . import apoz, filters, gradual, lamp, magnitude, nm, random, taylor, units
from .base import GRANULARITIES, Method, PruneRequest, PruneResult, scored

__all__ = ["GRANULARITIES", "METHODS", "Method", "PruneRequest", "PruneResult", "get_method", "scored"]


def _build_registry() -> Mapping[str, Method]:
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
