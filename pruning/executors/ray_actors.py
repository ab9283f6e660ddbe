"""The Ray executor: sweep points and sensitivity layers fan out to actors on a Ray cluster (DESIGN §3).

Each actor keeps its models loaded (an Engine), results cross as plain JSON-ready data, and
points reach `on_point` in the calling thread as they finish. `ray` is imported only here.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Optional

import pandas as pd

from ..errors import BadInput
from ..paths import home
from ..reports import BaselineReport, PruneReport, SensitivityReport, SweepReport
from ..specs import (
    DataRef,
    DeploySpec,
    ModelRef,
    PointFn,
    ProgressFn,
    PruneSpec,
    SensitivitySpec,
    SweepSpec,
    file_sha256,
)
from ..sweep_rows import SweepRows
from .errors import Cancelled, WorkerDied, decode_error, encode_error
from .jobs import Job, JobBook, label, prune_label, sensitivity_label, sweep_label
from .operations import OPERATIONS, Operation, convert_args, run_operation
from .wire import dumps, from_wire

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.2  # how often a waiting caller checks for cancellation
MAX_RESTARTS = 3  # an actor whose process dies is restarted this often ...
MAX_TASK_RETRIES = 3  # ... and the call it was running is retried on the restarted actor
# Passed to every Ray worker so it finds this checkout, our home and the Keras 2 switch.
ENV_KEYS = ("PRUNESCOPE_HOME", "TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")


# -- inside a Ray actor ----------------------------------------------------------------------------
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


def _sensitivity_setup(engine, args: Mapping[str, Any], on_progress: ProgressFn, on_point: PointFn) -> list[str]:
    from ..run.sensitivity import check_method

    spec = SensitivitySpec.from_dict(args["spec"])
    check_method(spec.method)
    bench = engine.workbench(spec.model, spec.data, 0)
    return list(dict.fromkeys(pw.layer for pw in bench.select(spec.layers)))  # network order


# The worker's operations (describe, baseline, prune, and a one-layer "sensitivity" scan per
# call) plus Ray's own.
RAY_OPERATIONS: Mapping[str, Operation] = MappingProxyType({
    **OPERATIONS,
    "sweep_setup": _sweep_setup,
    "sweep_point": _sweep_point,
    "sensitivity_setup": _sensitivity_setup,
})


class Slot:
    """One actor per CPU or GPU slot: an Engine whose models stay loaded between calls.

    Every call returns {"value": ...} or {"error": type name, "message", "traceback"}: plain
    data, so an expected error (BadInput) is never confused with the actor dying.
    """

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self.engine = None  # TensorFlow is imported on the first call, not at actor start
        self.files: dict[str, str] = {}  # sha256 -> local path of a shipped model/dataset

    def call(self, op: str, args: Mapping[str, Any], model_blob: Optional[bytes] = None,
             data_blob: Optional[bytes] = None) -> dict[str, Any]:
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
        """Point file references at a copy on this node when the caller's path is not here."""
        spec = args.get("spec")
        for key, blob in (("model", model_blob), ("data", data_blob)):
            raw = spec[key] if spec is not None else args.get(key)
            if blob is None or raw is None or raw.get("path") is None:
                continue
            raw = dict(raw, path=self._local_path(raw["path"], raw["sha256"], blob))
            if spec is not None:
                spec = dict(spec, **{key: raw})
            else:
                args[key] = raw
        if spec is not None:
            args["spec"] = spec
        return args

    def _local_path(self, path: str, sha256: str, blob: bytes) -> str:
        if sha256 not in self.files:
            if Path(path).is_file() and file_sha256(Path(path)) == sha256:
                self.files[sha256] = path  # same node as the caller (or a shared file system)
            else:
                # content-addressed: every actor on a node writes the same bytes to one name
                local = home() / "ray-inputs" / f"{sha256}{Path(path).suffix}"
                if not local.is_file():
                    local.parent.mkdir(parents=True, exist_ok=True)
                    tmp = local.with_suffix(f".{os.getpid()}.part")
                    tmp.write_bytes(blob)
                    tmp.replace(local)
                self.files[sha256] = str(local)
        return self.files[sha256]


# -- in the calling process ------------------------------------------------------------------------
class RayExecutor:
    """The Executor protocol on a Ray cluster (RAY_ADDRESS) or a local Ray instance started here.

    Sweep points and per-layer sensitivity rows are calls on a pool of actors, one per GPU
    (or per CPU when the cluster has no GPU), each handed its next call as soon as it is
    free. Safe to share across threads: an actor runs one call at a time.
    """

    name = "ray"

    def __init__(self, address: Optional[str] = None, num_cpus: Optional[int] = None,
                 workers: Optional[int] = None, object_store_memory: Optional[int] = None,
                 ship_files: Optional[bool] = None, log_to_driver: bool = True, capacity: int = 2):
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.num_cpus = num_cpus
        self.workers = workers  # None: one actor per GPU, or per CPU without GPUs
        self.object_store_memory = object_store_memory
        self.ship_files = ship_files  # None: ship model/data bytes only to a multi-node cluster
        self.log_to_driver = log_to_driver
        self.capacity = capacity
        self.started_ray = False
        self._lock = threading.RLock()
        self._actors: list = []
        self._blobs: dict[str, Any] = {}  # sha256 -> ObjectRef of the file's bytes (put once)
        self.jobs = JobBook()  # calls running now, in the order they began
        self._device: Optional[dict[str, Any]] = None

    # -- the cluster ---------------------------------------------------------------------------
    def _ray(self):
        import ray

        with self._lock:
            if not ray.is_initialized():
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home unless asked
                env = {key: os.environ[key] for key in ENV_KEYS if key in os.environ}
                env.setdefault("TF_USE_LEGACY_KERAS", "1")
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
                options: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": self.log_to_driver}
                if self.address:
                    ray.init(address=self.address, **options)
                else:
                    ray.init(num_cpus=self.num_cpus, include_dashboard=False,
                             object_store_memory=self.object_store_memory, **options)
                    self.started_ray = True
        return ray

    def resources(self) -> dict[str, Any]:
        """Nodes, CPUs and GPUs the cluster reports now."""
        ray = self._ray()
        total = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        return {"nodes": nodes, "cpus": float(total.get("CPU", 0.0)), "gpus": float(total.get("GPU", 0.0))}

    def _pool(self) -> list:
        ray = self._ray()
        with self._lock:
            if not self._actors:
                found = self.resources()
                gpus = int(found["gpus"])
                count = self.workers or gpus or max(int(found["cpus"]), 1)
                actor = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=MAX_RESTARTS,
                                   max_task_retries=MAX_TASK_RETRIES)(Slot)
                self._actors = [actor.remote(self.capacity) for _ in range(count)]
            return list(self._actors)

    def shutdown(self) -> None:
        """Stop the actors, and Ray itself if this executor started it."""
        import ray

        with self._lock:
            for actor in self._actors:
                ray.kill(actor)
            self._actors, self._blobs, self._device = [], {}, None
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False

    # -- the jobs ------------------------------------------------------------------------------------
    def pending(self) -> list[Job]:
        """The calls running now (each on the pool at once: none waits in a queue of ours)."""
        return self.jobs.pending()

    def cancel(self, job_id: Optional[int] = None) -> bool:
        """Cancel job `job_id`, or every running one when None: its outstanding Ray tasks are
        cancelled, finished points kept. False if there was none to cancel."""
        return self.jobs.cancel(job_id)

    def _job(self, kind: str, name: str):
        return self.jobs.track(kind, name, state="running")

    # -- running calls ---------------------------------------------------------------------------
    def _blobs_for(self, model: ModelRef, data: DataRef) -> tuple:
        """ObjectRefs of file bytes for actors on other nodes (None where a path is shared)."""
        ship = self.ship_files if self.ship_files is not None else self.resources()["nodes"] > 1
        if not ship:
            return None, None
        ray = self._ray()
        refs = []
        for ref in (model, data):
            if ref.path is None:
                refs.append(None)
                continue
            if ref.sha256 not in self._blobs:  # the bytes travel once per executor, not per call
                self._blobs[ref.sha256] = ray.put(Path(ref.path).read_bytes())
            refs.append(self._blobs[ref.sha256])
        return tuple(refs)

    def _map(self, job: Job, calls: list[tuple[Any, str, dict]], blobs: tuple,
             on_result: Callable[[Any, Any], None]) -> None:
        """Run (key, op, args) calls on the pool, one per free actor; `on_result(key, value)`
        runs here, in the calling thread, as each finishes (in finishing order)."""
        ray = self._ray()
        actors = self._pool()
        waiting = list(reversed(calls))
        running: dict[Any, tuple[Any, Any]] = {}  # ObjectRef -> (key, actor)
        try:
            while waiting or running:
                idle = [a for a in actors if all(a is not b for _, b in running.values())]
                while waiting and idle:
                    key, op, args = waiting.pop()
                    actor = idle.pop(0)
                    running[actor.call.remote(op, args, *blobs)] = (key, actor)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                if job.cancel_requested:
                    raise Cancelled(f"{job.label} was cancelled; finished points are kept")
                for ref in ready:
                    key, _ = running.pop(ref)
                    on_result(key, self._value(ray, ref, job.label))
        except BaseException:
            for ref in running:
                ray.cancel(ref)  # queued calls never start; a running point finishes unseen
            raise

    def _value(self, ray, ref, name: str) -> Any:
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            with self._lock:
                self._actors = []  # its restarts are used up: the next call starts a fresh pool
            raise WorkerDied(f"a Ray actor died while running {name} and could not be restarted "
                             f"({type(exc).__name__}); finished points are kept — run it again") from None
        if "error" in outcome:
            raise decode_error(outcome, f"on a Ray actor while running {name}")
        return outcome["value"]

    def _one(self, job: Job, op: str, args: dict, blobs: tuple) -> Any:
        found: list = []
        self._map(job, [(0, op, args)], blobs, lambda _, value: found.append(value))
        return found[0]

    # -- the Executor protocol ---------------------------------------------------------------------
    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport:
        with self._job("baseline", label("baseline", model, data)) as job:
            raw = self._one(job, "baseline", {"model": vars(model), "data": vars(data)}, self._blobs_for(model, data))
        # the actor may have read a node-local copy: the report names the caller's files
        return dataclasses.replace(from_wire("baseline", raw), model=model, data=data)

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None,
              on_evaluated: Optional[Callable[[dict], None]] = None,
              supersede_key: Optional[str] = None) -> PruneReport:
        """One call on an actor. Jobs start at once (no queue), so nothing is superseded, and the
        first phase reaches `on_evaluated` with the whole report (actors do not stream it)."""
        with self._job("prune", prune_label(spec)) as job:
            raw = self._one(job, "prune", {"spec": spec.to_dict()}, self._blobs_for(spec.model, spec.data))
        report = dataclasses.replace(from_wire("prune", raw), spec=spec)
        if on_evaluated:
            on_evaluated(report.evaluated())
        return report

    def save(self, spec: PruneSpec, path: str, on_progress: Optional[ProgressFn] = None) -> str:
        """The model of `spec` written to `path` by an actor: a path on the actor's node (the
        same filesystem on a local Ray instance)."""
        with self._job("save", label("save", spec.model, spec.data, spec.method)) as job:
            return self._one(job, "save", {"spec": spec.to_dict(), "path": str(path)},
                             self._blobs_for(spec.model, spec.data))

    def convert(self, spec: PruneSpec, source: str, path: str, out_format: Optional[str] = None) -> str:
        """The file converted by an actor: both paths on the actor's node (as for `save`)."""
        with self._job("convert", label("convert", spec.model, spec.data, spec.method)) as job:
            return self._one(job, "convert", convert_args(spec, source, path, out_format),
                             self._blobs_for(spec.model, spec.data))

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport:
        """Every (method, rate) of `spec` as one call each; rows come back in the spec's point order.

        As in `run_sweep`, a method that cannot prune this model is skipped with a note: its
        points after the first that failed are dropped (those already streamed stay streamed).
        """
        rows = SweepRows(spec, resume, on_point, on_progress)
        with self._job("sweep", sweep_label(spec)) as job:
            blobs = self._blobs_for(spec.model, spec.data)
            setup = self._one(job, "sweep_setup", {"spec": spec.to_dict()}, blobs)
            rows.replay()

            def arrived(i: int, value: dict[str, Any]) -> None:
                if "skipped" in value:
                    rows.skip(i, value["skipped"])
                else:
                    rows.add(i, value["row"])

            calls = [(i, "sweep_point", {"spec": dataclasses.replace(spec, methods=(m,), sparsities=(r,)).to_dict()})
                     for i, m, r in rows.todo()]
            self._map(job, calls, blobs, arrived)
            return rows.report(setup["baseline"], setup["n_test"], setup["environment"], setup.get("task", "multiclass"))

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport:
        """One call per layer (its row of cells): each repeats the dense evaluation once, a cost of
        1/len(rates), so that `run_sensitivity` itself computes every cell."""
        start = time.perf_counter()
        parts: dict[str, SensitivityReport] = {}
        with self._job("sensitivity", sensitivity_label(spec)) as job:
            blobs = self._blobs_for(spec.model, spec.data)
            layers = self._one(job, "sensitivity_setup", {"spec": spec.to_dict()}, blobs)

            def arrived(layer: str, raw: dict[str, Any]) -> None:
                parts[layer] = from_wire("sensitivity", raw)
                if on_progress:
                    on_progress(len(parts) / len(layers), f"{layer} scanned ({len(parts)}/{len(layers)} layers)")

            calls = [(layer, "sensitivity", {"spec": dataclasses.replace(spec, layers=(layer,)).to_dict()})
                     for layer in layers]
            self._map(job, calls, blobs, arrived)
        first = parts[layers[0]]
        accuracy = pd.concat([parts[layer].accuracy for layer in layers])
        timing = {key: float(sum(p.timing_s[key] for p in parts.values())) for key in ("prune", "evaluate")}
        # each part counted its own dense evaluation; the scan has one
        timing.update(total=time.perf_counter() - start,
                      evaluations=1 + sum(int(p.timing_s["evaluations"]) - 1 for p in parts.values()))
        return SensitivityReport(
            spec=spec, baseline_accuracy=first.baseline_accuracy, n_test=first.n_test, accuracy=accuracy,
            drop=pd.concat([parts[layer].drop for layer in layers]), task=first.task,
            layer_sizes={layer: parts[layer].layer_sizes[layer] for layer in layers},
            layer_types={layer: parts[layer].layer_types[layer] for layer in layers}, timing_s=timing,
        )

    def deploy(self, spec: PruneSpec, artifact: str, options: DeploySpec,
               on_progress: Optional[ProgressFn] = None) -> dict[str, Any]:
        """The deploy step on an actor: the pruned model's path must be readable there (a local
        Ray instance, or a shared file system); the app's default is the worker executor."""
        with self._job("deploy", f"deploy {prune_label(spec)}") as job:
            return self._one(job, "deploy", {"spec": spec.to_dict(), "artifact": str(artifact),
                                             "options": options.to_dict()}, self._blobs_for(spec.model, spec.data))

    def describe(self) -> dict[str, Any]:
        """Executor name and cluster resources, plus `device` and `models` as an actor sees them."""
        if self._device is None:
            with self._job("describe", "environment query") as job:
                self._device = self._one(job, "describe", {}, self._blobs_for(ModelRef(), DataRef()))
        return {**self._device, "executor": self.name, **self.resources()}
