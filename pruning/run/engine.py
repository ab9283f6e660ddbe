"""The engine: workbenches by (model, dataset, seed) in an LRU, and the operations on them.

Every executor runs specs through one Engine: baseline, prune (and save), sweep and sensitivity.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from ..methods import get_method
from ..reports import BaselineReport, PruneReport, SensitivityReport, SweepReport
from ..specs import (
    DataRef,
    ModelRef,
    PointFn,
    ProgressFn,
    PruneSpec,
    SensitivitySpec,
    SweepSpec,
)
from .layers import base_histogram
from .prune import EvaluatedFn, Pruned, prune_once, prune_report, save_pruned
from .sensitivity import check_method, run_sensitivity
from .sweep import check_methods, run_sweep
from .workbench import Workbench


def numpy_without_hugepages() -> None:
    """numpy asks the kernel for transparent huge pages on every large array (madvise). Where the
    kernel's THP defrag is "madvise", a common default, a fresh 100 MB array can stall in memory
    compaction: on ResNet50 (2 cores) a global-scope magnitude prune took 0.7-3.0 s with numpy's
    default and 0.48-0.52 s without (BENCHMARKS.md). Only where an Engine prunes (the worker, the
    CLI, a Ray actor): the app's server process holds no large arrays (an interleaved browser run
    showed no difference there either way). An explicit NUMPY_MADVISE_HUGEPAGE, which numpy reads,
    is kept."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is not None:
        setter(False)


class Engine:
    """Workbenches by (model, dataset, seed), least recently used dropped first."""

    def __init__(self, capacity: int = 2, kept_prunes: int = 2):
        numpy_without_hugepages()
        self.capacity = capacity
        self.kept_prunes = kept_prunes
        self._benches: OrderedDict[tuple, Workbench] = OrderedDict()
        # the last prunes' models, so that a download or store right after writes the file
        # without pruning again
        self._pruned: OrderedDict[PruneSpec, Pruned] = OrderedDict()

    def workbench(self, model: ModelRef, data: DataRef, seed: int = 0,
                  on_progress: Optional[ProgressFn] = None) -> Workbench:
        key = (model, data, seed)
        if key in self._benches:
            self._benches.move_to_end(key)
            return self._benches[key]
        bench = Workbench(model, data, seed=seed, on_progress=on_progress)
        self._benches[key] = bench
        while len(self._benches) > self.capacity:
            self._benches.popitem(last=False)
        return bench

    def baseline(self, model: ModelRef, data: DataRef, seed: int = 0,
                 on_progress: Optional[ProgressFn] = None) -> BaselineReport:
        bench = self.workbench(model, data, seed, on_progress)
        report = bench.baseline_report(seed)
        # the histograms' "before" half (and each base weight's bin) once per model, here with the
        # model's opening: on ResNet50 it is about a second, which the first slider move paid otherwise
        for layer in bench.by_layer():
            base_histogram(bench, layer)
        return report

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None,
              on_evaluated: Optional[EvaluatedFn] = None) -> PruneReport:
        """The report of `spec` (see `prune.prune_report`); `on_evaluated` gets its first phase."""
        get_method(spec.method)  # an unknown name fails before any model is trained
        # baselines are seeded by 0 so that every prune seed compares against one model
        report, done = prune_report(self.workbench(spec.model, spec.data, 0, on_progress), spec, on_progress,
                                    on_evaluated)
        self._keep(spec, done)
        return report

    def _keep(self, spec: PruneSpec, done: Pruned) -> None:
        self._pruned[spec] = done
        self._pruned.move_to_end(spec)
        while len(self._pruned) > self.kept_prunes:
            self._pruned.popitem(last=False)

    def save(self, spec: PruneSpec, path: str | Path, on_progress: Optional[ProgressFn] = None) -> str:
        """Write the pruned model of `spec` as `.keras` to `path`; the path written.

        One of the last prunes is written as it is; any other spec is pruned again first
        (without measuring: the same seed gives the same model).
        """
        get_method(spec.method)
        bench = self.workbench(spec.model, spec.data, 0, on_progress)
        done = self._pruned.get(spec)
        if done is None:
            try:
                done = prune_once(bench, spec, on_progress=on_progress, measure=False)
            finally:
                bench.reset()
        return str(save_pruned(bench, done, path))

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport:
        """Every (method, rate) of `spec` on one workbench; see `sweep.run_sweep`."""
        check_methods(spec)  # a bad method name fails before a baseline is trained
        bench = self.workbench(spec.model, spec.data, 0, on_progress)
        return run_sweep(bench, spec, on_point=on_point, on_progress=on_progress, resume=resume)

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport:
        """Each prunable layer pruned alone at each rate; see `sensitivity.run_sensitivity`."""
        check_method(spec.method)
        bench = self.workbench(spec.model, spec.data, 0, on_progress)
        return run_sensitivity(bench, spec, on_progress=on_progress)
