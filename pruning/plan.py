"""Per-layer sparsity plans from a sensitivity scan: sensitive layers less, robust ones more.

`plan_from_drops` hits an overall target exactly, counted in weights, or an accuracy-drop
budget; `plan_spec` turns a plan into the PruneSpec that applies it. No TensorFlow here.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .core.masks import keep_count
from .errors import BadInput
from .reports import SensitivityReport
from .specs import PruneSpec, validate_sparsity

# Added to each drop curve (times sparsity) so it rises strictly: a drop level then maps to
# one sparsity, and layers that are equally robust end up equally sparse.
TIE_BREAK = 1e-9


def plan_sparsity(report: SensitivityReport, target_overall_sparsity: Optional[float] = None,
                  accuracy_drop_budget: Optional[float] = None) -> dict[str, float]:
    """A per-layer sparsity plan from a scan: layer -> sparsity (see `plan_from_drops`)."""
    return plan_from_drops(report.drop, report.layer_sizes, target_overall_sparsity, accuracy_drop_budget)


def plan_from_drops(drops: pd.DataFrame, sizes: Mapping[str, Sequence[int]],
                    target_overall_sparsity: Optional[float] = None,
                    accuracy_drop_budget: Optional[float] = None) -> dict[str, float]:
    """Equal-drop allocation: every layer is pruned up to the same accuracy drop.

    Give exactly one of `target_overall_sparsity` and `accuracy_drop_budget`.

    1. Each layer's drop curve d(s) is the scan's drops, linear between scanned rates and
       0 at s = 0, made non-decreasing (a running maximum; negative drops count as 0) and
       strictly increasing by a tie-break of 1e-9 * s. Its inverse s(t) is the sparsity at
       which the layer alone costs t; beyond its last scanned rate a layer is never pushed.
    2. Target: the tolerance t is bisected until the weight-weighted mean of s_l(t) equals
       the target. Layers whose drop rises fast (sensitive) stop early; flat (robust) ones
       go far. Budget: drops are assumed to add up, so t is bisected until the sum over
       layers of d_l(s_l(t)) equals the budget (an estimate: evaluate the plan to check it).
    3. Counts: the target's zeros, `Z = N - keep_count(N, target)` over all N weights, are
       split by largest remainder of n_l * s_l, and each layer's sparsity is its zero count
       over its size. Pruning each layer at its planned sparsity with the masks' keep-count
       rule then leaves exactly Z zeros: the plan's measured overall sparsity equals that of
       one global prune at the target. (A layer of several tensors, an LSTM, may round by one
       weight per tensor; that is settled on the largest single-tensor layer.)

    Worked example: layer `a` (1,000 weights) drops 10 points at 50 % and 40 at 90 %; layer
    `b` (9,000) drops 0 at 50 % and 2 at 90 %. Overall target 80 %: for t <= 0.02,
    s_a = 5t and s_b = 0.5 + 20t, so 0.1 * 5t + 0.9 * (0.5 + 20t) = 0.8 gives t = 0.35/18.5
    = 0.0189, s_a = 9.46 %, s_b = 87.84 %. Z = 8,000 zeros; 94.59 + 7,905.41 rounds by largest
    remainder to 95 + 7,905, so `a` gets 9.5 % and `b` 87.83 %: the sensitive layer keeps
    most of its weights, and both together lose an estimated 2 * 1.89 = 3.8 points where
    uniform 80 % would lose 32.5 + 1.5 = 34 points.

    >>> drops = pd.DataFrame({0.5: [0.10, 0.0], 0.9: [0.40, 0.02]}, index=["a", "b"])
    >>> plan = plan_from_drops(drops, {"a": [1000], "b": [9000]}, target_overall_sparsity=0.8)
    >>> {k: round(v, 6) for k, v in plan.items()}
    {'a': 0.095, 'b': 0.878333}
    >>> round(1000 * plan["a"] + 9000 * plan["b"])
    8000
    """
    if (target_overall_sparsity is None) == (accuracy_drop_budget is None):
        raise BadInput("give either a target overall sparsity or an accuracy-drop budget, not both or neither")
    layers = list(drops.index)
    missing = [layer for layer in layers if layer not in sizes]
    if missing:
        raise BadInput(f"no weight count for layer(s) {', '.join(map(str, missing))}")
    xs, curves = _drop_curves(drops)
    n = {layer: int(sum(sizes[layer])) for layer in layers}

    def sparsity_at(layer: str, t: float) -> float:
        return float(np.interp(t, curves[layer], xs))  # clamps to [0, last scanned rate]

    top = max(float(curve[-1]) for curve in curves.values())
    if target_overall_sparsity is not None:
        target = validate_sparsity(target_overall_sparsity)
        if target > xs[-1] + 1e-12:
            raise BadInput(f"target overall sparsity {target:.2%} is above the largest scanned sparsity "
                           f"{xs[-1]:.2%}: scan higher sparsities or lower the target")
        total = sum(n.values())

        def overall(t: float) -> float:
            return sum(n[layer] * sparsity_at(layer, t) for layer in layers) / total

        t = _bisect(overall, target, top)
        ideal = {layer: n[layer] * sparsity_at(layer, t) for layer in layers}
        zeros = _largest_remainder(ideal, {l: _max_zeros(sizes[l]) for l in layers},
                                   total - keep_count(total, target))
        return _settle({layer: _sparsity_for(sizes[layer], zeros[layer]) for layer in layers},
                       sizes, total - keep_count(total, target))
    budget = float(accuracy_drop_budget)
    if not math.isfinite(budget) or budget < 0:
        raise BadInput(f"accuracy-drop budget must be a number >= 0, not {accuracy_drop_budget!r}")

    def estimated_drop(t: float) -> float:
        return sum(min(t, float(curve[-1])) for curve in curves.values())

    t = top if estimated_drop(top) <= budget else _bisect(estimated_drop, budget, top)
    plan = {}
    for layer in layers:
        z = min(int(round(n[layer] * sparsity_at(layer, t))), _max_zeros(sizes[layer]))
        plan[layer] = _sparsity_for(sizes[layer], z)
    return plan


def _drop_curves(drops: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    columns = sorted((float(c), c) for c in drops.columns if float(c) > 0)
    if not columns:
        raise BadInput("the scan has no sparsity above 0: scan at least one rate in (0, 1)")
    xs = np.array([0.0] + [rate for rate, _ in columns])
    curves = {}
    for layer in drops.index:
        ys = np.array([0.0] + [float(drops.loc[layer, label]) for _, label in columns])
        if not np.isfinite(ys).all():
            raise BadInput(f"layer {layer} has a missing accuracy drop: rerun the scan")
        curves[layer] = np.maximum.accumulate(np.maximum(ys, 0.0)) + TIE_BREAK * xs
    return xs, curves


def _bisect(fn, goal: float, hi: float) -> float:
    """The smallest t in [0, hi] with fn(t) >= goal, for a continuous non-decreasing fn."""
    lo = 0.0
    if fn(lo) >= goal:
        return lo
    for _ in range(200):
        mid = (lo + hi) / 2
        if fn(mid) < goal:
            lo = mid
        else:
            hi = mid
    return hi


def _max_zeros(sizes: Sequence[int]) -> int:
    return sum(size - 1 for size in sizes)  # every tensor keeps at least one weight


def _zeros_at(sizes: Sequence[int], sparsity: float) -> int:
    return sum(size - keep_count(size, sparsity) for size in sizes)


def _largest_remainder(ideal: Mapping[str, float], cap: Mapping[str, int], goal: int) -> dict[str, int]:
    """Integers near `ideal`, each within [0, cap], summing to `goal` (Hamilton's method)."""
    zeros = {k: min(max(int(math.floor(v)), 0), cap[k]) for k, v in ideal.items()}
    rest = goal - sum(zeros.values())
    by_remainder = sorted(ideal, key=lambda k: ideal[k] - math.floor(ideal[k]), reverse=True)
    while rest > 0:
        grew = False
        for k in by_remainder:
            if rest and zeros[k] < cap[k]:
                zeros[k], rest, grew = zeros[k] + 1, rest - 1, True
        if not grew:
            break
    while rest < 0:
        shrank = False
        for k in reversed(by_remainder):
            if rest and zeros[k] > 0:
                zeros[k], rest, shrank = zeros[k] - 1, rest + 1, True
        if not shrank:
            break
    return zeros


def _sparsity_for(sizes: Sequence[int], zeros: int) -> float:
    """A sparsity at which `keep_count` leaves `zeros` zeros (exact for one tensor)."""
    total = sum(sizes)
    sparsity = zeros / total
    if len(sizes) == 1 and _zeros_at(sizes, sparsity) != zeros:
        # float32 rounding inside keep_count can miss by one on huge tensors: aim mid-step
        for nudge in (0.25, -0.25, 0.45, -0.45):
            candidate = min(max((zeros + nudge) / total, 0.0), (total - 1) / total)
            if _zeros_at(sizes, candidate) == zeros:
                return candidate
    return sparsity


def _settle(plan: dict[str, float], sizes: Mapping[str, Sequence[int]], goal: int) -> dict[str, float]:
    """Move the rounding slack of multi-tensor layers onto the largest single-tensor layer."""
    diff = goal - sum(_zeros_at(sizes[layer], s) for layer, s in plan.items())
    if diff == 0:
        return plan
    singles = sorted((layer for layer in plan if len(sizes[layer]) == 1), key=lambda l: -sizes[l][0])
    for layer in singles:
        z = _zeros_at(sizes[layer], plan[layer]) + diff
        if 0 <= z <= _max_zeros(sizes[layer]):
            plan[layer] = _sparsity_for(sizes[layer], z)
            break
    return plan


def plan_spec(base: PruneSpec, plan: Mapping[str, float]) -> PruneSpec:
    """`base` with the plan as its per-layer sparsities (other layers keep `base.target_sparsity`)."""
    return dataclasses.replace(base, layer_sparsity=tuple((str(k), float(v)) for k, v in plan.items()))
