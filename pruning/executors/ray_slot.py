"""The Ray actor's side of the Ray executor: a Slot (one Engine per actor) and the calls a sweep or a
sensitivity scan is split into. Runs inside Ray worker processes, on any node of the cluster.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Optional

from ..errors import BadInput
from ..paths import home
from ..specs import PointFn, ProgressFn, SensitivitySpec, SweepSpec
from .errors import encode_error
from .operations import OPERATIONS, Operation, run_operation
from .wire import dumps, to_wire


# Ray's own operations: a sweep or a scan is split into calls, one per point or per layer.
def _sweep_setup(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    from ..run.sweep import check_methods

    spec = SweepSpec.from_dict(args["spec"])
    methods = check_methods(spec)
    bench = engine.workbench(spec.model, spec.data, 0)
    bench.select(spec.layers)  # unknown layers fail here, before any point is sent
    baseline = bench.baseline_metrics(spec.point(next(iter(methods)), 0.0))
    return {"baseline": baseline, "n_test": int(len(bench.dataset.y_test)), "environment": bench.env,
            "task": bench.task.name}


def _sweep_point(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    try:
        report = engine.sweep(SweepSpec.from_dict(args["spec"]))
    except BadInput as exc:  # the method cannot prune this model: run_sweep would skip it
        return {"skipped": str(exc)}
    return {"row": report.rows.to_dict(orient="records")[0]}


def _sensitivity_setup(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    """The layers to scan, in network order, and the dense model's test metric: measured once
    here, so that no per-layer call evaluates the dense model again."""
    from ..run.sensitivity import check_method

    spec = SensitivitySpec.from_dict(args["spec"])
    check_method(spec.method)
    bench = engine.workbench(spec.model, spec.data, 0)
    layers = list(dict.fromkeys(pw.layer for pw in bench.select(spec.layers)))
    bench.reset()
    t0 = time.perf_counter()
    baseline = bench.test_metric()
    return {"layers": layers, "baseline": baseline, "evaluate_s": time.perf_counter() - t0}


def _sensitivity_layer(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> dict[str, Any]:
    """One layer's row of the scan against the dense metric the setup measured."""
    from ..run.sensitivity import check_method, run_sensitivity

    spec = SensitivitySpec.from_dict(args["spec"])
    check_method(spec.method)
    bench = engine.workbench(spec.model, spec.data, 0)
    return to_wire("sensitivity", run_sensitivity(bench, spec, baseline=float(args["baseline"])))


# The worker's operations (describe, baseline, prune, save, deploy, ...) plus Ray's own.
RAY_OPERATIONS: Mapping[str, Operation] = MappingProxyType({
    **OPERATIONS,
    "sweep_setup": _sweep_setup,
    "sweep_point": _sweep_point,
    "sensitivity_setup": _sensitivity_setup,
    "sensitivity_layer": _sensitivity_layer,
})


class Slot:
    """One actor per CPU or GPU slot: an Engine whose models stay loaded between calls.

    Every call returns {"value": ...} or {"error": type name, "message", "traceback"}: plain
    data, so an expected error (BadInput) is never confused with the actor dying.
    """

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self.engine = None  # TensorFlow is imported on the first call, not at actor start
        self.files: dict[str, str] = {}  # sha256 -> this node's copy of a shipped model/dataset
        self.ran: Counter = Counter()  # operation -> calls run by this actor (since its last start)

    def about(self) -> dict[str, Any]:
        """Where this actor runs (Ray node id, process id) and what it has run: cheap, no TensorFlow."""
        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "ran": dict(self.ran)}

    def call(self, op: str, args: Mapping[str, Any], model_blob: Optional[bytes] = None,
             data_blob: Optional[bytes] = None) -> dict[str, Any]:
        self.ran[op] += 1
        try:
            if self.engine is None:
                from ..run.engine import Engine

                self.engine = Engine(self.capacity)
            args = self._localize(dict(args), model_blob, data_blob)
            # a JSON round trip: numpy scalars become Python numbers, as over the worker's pipe
            value = run_operation(RAY_OPERATIONS, self.engine, op, args)
            return {"value": json.loads(dumps({"v": value}))["v"]}
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller as data
            return encode_error(exc)

    def _localize(self, args: dict[str, Any], model_blob: Optional[bytes], data_blob: Optional[bytes]) -> dict:
        """Point file references that came with their bytes at this node's copy of those bytes."""
        spec = args.get("spec")
        for key, blob in (("model", model_blob), ("data", data_blob)):
            raw = spec[key] if spec is not None else args.get(key)
            if blob is None or raw is None or raw.get("path") is None:
                continue
            raw = dict(raw, path=self._local_path(raw["sha256"], Path(raw["path"]).suffix, blob))
            if spec is not None:
                spec = dict(spec, **{key: raw})
            else:
                args[key] = raw
        if spec is not None:
            args["spec"] = spec
        return args

    def _local_path(self, sha256: str, suffix: str, blob: bytes) -> str:
        """The bytes from Ray's object store written once per node, never the caller's path: that
        path names a file on the caller's machine, which another node need not see."""
        if sha256 not in self.files:
            import ray

            if hashlib.sha256(blob).hexdigest() != sha256:
                raise RuntimeError(f"the bytes shipped for {sha256[:12]} do not match their hash")

            # content-addressed, one folder per node: every actor of a node writes the same bytes
            # to one name, and nodes sharing a disk (a test cluster) still keep their own copies
            local = home() / "ray-inputs" / ray.get_runtime_context().get_node_id()[:16] / f"{sha256}{suffix}"
            if not local.is_file():
                local.parent.mkdir(parents=True, exist_ok=True)
                tmp = local.with_suffix(f".{os.getpid()}.part")
                tmp.write_bytes(blob)
                tmp.replace(local)
            self.files[sha256] = str(local)
        return self.files[sha256]
