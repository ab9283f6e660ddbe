"""PruneScope's backend: models, pruning methods, measurement, runs and executors."""
from __future__ import annotations

import os


def _numpy_without_hugepages() -> None:
    """numpy asks the kernel for transparent huge pages on every large array (madvise). Where the
    kernel's THP defrag is "madvise", a common default, a fresh 100 MB array can stall in memory
    compaction: on ResNet50 (2 cores, this machine) a global-scope magnitude prune took 0.7-3.0 s
    with numpy's default and 0.48-0.52 s without (BENCHMARKS.md). An explicit
    NUMPY_MADVISE_HUGEPAGE, which numpy itself reads, is left as the user set it."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is not None:
        setter(False)


_numpy_without_hugepages()
