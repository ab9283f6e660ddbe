"""The Ray executor: sweep points and sensitivity layers fan out to actors on a Ray cluster (DESIGN §3).

Each actor (executors/ray_slot.py) keeps its models loaded, results cross as plain JSON-ready
data, and points reach `on_point` in the calling thread as they finish. `ray` is imported only
here and in ray_slot.py. A point whose actor dies (its node lost) is sent again to a live actor;
a cancelled job's running points end with the actors running them.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import pandas as pd

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
)
from ..sweep_rows import SweepRows
from .errors import Cancelled, WorkerDied, decode_error
from .jobs import Job, JobBook, label, prune_label, sensitivity_label, sweep_label
from .operations import convert_args
from .ray_slot import RAY_OPERATIONS, Slot
from .wire import from_wire

__all__ = ["RAY_OPERATIONS", "RayExecutor"]

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.2  # how often a waiting caller checks for cancellation
MAX_RESTARTS = 3  # Ray restarts an actor whose process dies this often (its node still up) ...
MAX_POINT_TRIES = 3  # ... and we send a point whose actor died to any live actor, up to this often
PROBE_S = 1.0  # how often an actor that failed a call is asked whether it is back
RECOVER_S = 60.0  # with points left and no actor answering for this long, the job fails
CANCEL_GRACE_S = 0.5  # a cancelled call not ended after this is running: its actor is killed
# Passed to every Ray worker so it finds this checkout, our home and the Keras 2 switch.
ENV_KEYS = ("PRUNESCOPE_HOME", "TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")


# -- in the calling process ------------------------------------------------------------------------
class RayExecutor:
    """The Executor protocol on a Ray cluster (RAY_ADDRESS) or a local Ray instance started here.

    Sweep points and per-layer sensitivity rows are calls on a pool of actors, one per GPU
    (or per CPU when the cluster has no GPU), each handed its next call as soon as it is
    free. Safe to share across threads: an actor runs one call at a time.

    Losing a node: its actors' calls fail, their points go to the live actors (a point at most
    `MAX_POINT_TRIES` times), and an actor is handed work again only once it answers `about()`
    (Ray restarts it where a CPU is free). Cancelling: queued calls are cancelled, and the
    actors still running one of the job's calls after `CANCEL_GRACE_S` are killed and replaced
    (Ray cannot interrupt a running call of a threaded actor).
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
        self.started_ray = False  # a local instance started here
        self.connected = False  # ray.init was called here (to start or to join)
        self.retried = 0  # points sent again after the actor running them died
        self._lock = threading.RLock()
        self._actors: list = []
        self._slot_class: Any = None
        self._proven: dict[int, Any] = {}  # id(handle) -> handle of actors known to answer now
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
                self.connected = True
        return ray

    def resources(self) -> dict[str, Any]:
        """Nodes, CPUs and GPUs the cluster reports now."""
        ray = self._ray()
        total = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        return {"nodes": nodes, "cpus": float(total.get("CPU", 0.0)), "gpus": float(total.get("GPU", 0.0))}

    def _pool(self) -> list:
        """The actors now (a fresh pool sized to the cluster when every one was lost)."""
        ray = self._ray()
        with self._lock:
            if not self._actors:
                found = self.resources()
                gpus = int(found["gpus"])
                count = self.workers or gpus or max(int(found["cpus"]), 1)
                # no task retries of Ray's own: a call that dies with its actor is sent again by
                # `_map` to a live actor, not queued on one that may never come back
                self._slot_class = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=MAX_RESTARTS,
                                              max_task_retries=0)(Slot)
                self._actors = [self._slot_class.remote(self.capacity) for _ in range(count)]
            return list(self._actors)

    def slots(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """`Slot.about()` of every actor answering within `timeout`: node, pid, calls run."""
        ray = self._ray()
        refs = [actor.about.remote() for actor in self._pool()]
        ready, found = ray.wait(refs, num_returns=len(refs), timeout=timeout)[0], []
        for ref in (ref for ref in refs if ref in ready):
            try:
                found.append(ray.get(ref))
            except ray.exceptions.RayActorError:  # lost with its node, or restarting
                continue
        return found

    def _drop(self, ray, actor: Any, replace: bool = False) -> None:
        """Kill `actor` for good and take it out of the pool (a fresh one in its place if asked)."""
        with self._lock:
            self._proven.pop(id(actor), None)
            at = next((i for i, a in enumerate(self._actors) if a is actor), None)
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone: nothing left to kill
                pass
            if at is not None:
                if replace and self._slot_class is not None:
                    self._actors[at] = self._slot_class.remote(self.capacity)
                else:
                    del self._actors[at]

    def shutdown(self) -> None:
        """Stop the actors, and leave Ray (stopping it if this executor started it)."""
        import ray

        with self._lock:
            for actor in self._actors:
                try:
                    ray.kill(actor)
                except Exception:  # noqa: BLE001 - an actor lost with its node
                    pass
            self._actors, self._proven, self._blobs, self._device = [], {}, {}, None
        if self.connected:
            ray.shutdown()
            self.started_ray = self.connected = False

    # -- the jobs ------------------------------------------------------------------------------------
    def pending(self) -> list[Job]:
        """The calls running now (each on the pool at once: none waits in a queue of ours)."""
        return self.jobs.pending()

    def cancel(self, job_id: Optional[int] = None) -> bool:
        """Cancel job `job_id`, or every running one when None: its queued Ray calls are cancelled
        and its running ones stopped (their actors killed and replaced), finished points kept.
        False if there was none to cancel."""
        return self.jobs.cancel(job_id)

    def _job(self, kind: str, name: str):
        return self.jobs.track(kind, name, state="running")

    # -- running calls ---------------------------------------------------------------------------
    def _blobs_for(self, model: ModelRef, data: DataRef) -> tuple:
        """ObjectRefs of the files' bytes for a multi-node cluster (None where a path is shared):
        the actors write them to a copy on their own node."""
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
        runs here, in the calling thread, once per key as each finishes (in finishing order)."""
        ray = self._ray()
        waiting = list(reversed(calls))  # popped from the end: in the given order
        running: dict[Any, tuple[Any, str, dict, Any]] = {}  # call ref -> (key, op, args, actor)
        probes: dict[Any, Any] = {}  # about() ref -> actor not yet known to answer
        later: list[tuple[float, Any]] = []  # (when, actor) to ask again
        tries: Counter = Counter()
        stalled = None
        try:
            while waiting or running:
                now = time.monotonic()
                actors = self._pool()
                asked = list(probes.values()) + [a for _, a in later]
                for due, actor in [item for item in later if item[0] <= now]:
                    later.remove((due, actor))
                    asked.remove(actor)
                for actor in actors:
                    if id(actor) not in self._proven and not any(actor is a for a in asked):
                        probes[actor.about.remote()] = actor
                busy = [entry[3] for entry in running.values()]
                idle = [a for a in actors if id(a) in self._proven and not any(a is b for b in busy)]
                while waiting and idle:
                    key, op, args = waiting.pop()
                    actor = idle.pop(0)
                    running[actor.call.remote(op, args, *blobs)] = (key, op, args, actor)
                stalled = (stalled or now) if waiting and not running else None
                if stalled is not None and now - stalled > RECOVER_S:
                    raise WorkerDied(f"no Ray actor answered for {RECOVER_S:.0f} s while running {job.label}; "
                                     "finished points are kept — run it again once the cluster is back")
                refs = list(running) + list(probes)
                ready = ray.wait(refs, num_returns=1, timeout=POLL_S)[0] if refs else time.sleep(POLL_S) or []
                if job.cancel_requested:
                    raise Cancelled(f"{job.label} was cancelled; finished points are kept")
                for ref in ready:
                    if ref in probes:
                        self._probed(ray, ref, probes.pop(ref), later)
                        continue
                    key, op, args, actor = running.pop(ref)
                    outcome = self._outcome(ray, ref, actor, job.label)
                    if outcome is not None:
                        on_result(key, outcome["value"])
                        continue
                    tries[key] += 1
                    if tries[key] >= MAX_POINT_TRIES:
                        raise WorkerDied(f"a Ray actor died under the same call of {job.label} {tries[key]} times; "
                                         "finished points are kept — run it again")
                    with self._lock:
                        self.retried += 1
                    waiting.append((key, op, args))  # next to go, to whichever actor is free
        except BaseException:
            self._stop(ray, running)
            raise
        finally:
            for ref in probes:
                ray.cancel(ref)

    def _probed(self, ray, ref, actor: Any, later: list) -> None:
        """An actor answered `about()` (it joins the work), is still away (ask again), or is gone."""
        try:
            ray.get(ref)
        except ray.exceptions.ActorDiedError:
            self._drop(ray, actor)  # restarts used up, or killed: it never comes back
        except ray.exceptions.RayActorError:
            later.append((time.monotonic() + PROBE_S, actor))  # restarting, or its node not yet seen dead
        else:
            with self._lock:
                self._proven[id(actor)] = actor

    def _outcome(self, ray, ref, actor: Any, name: str) -> Optional[dict[str, Any]]:
        """{"value": ...} of a finished call; None when its actor died under it (send it again)."""
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayActorError:
            with self._lock:
                self._proven.pop(id(actor), None)  # handed no work until it answers again
            return None
        if "error" in outcome:
            raise decode_error(outcome, f"on a Ray actor while running {name}")
        return outcome

    def _stop(self, ray, running: Mapping[Any, tuple]) -> None:
        """Cancel every call of `running`; kill (and replace) the actors still running one after
        `CANCEL_GRACE_S`: a queued call ends at once, a running one only with its process."""
        if not running:
            return
        for ref in running:
            ray.cancel(ref)
        ended, _ = ray.wait(list(running), num_returns=len(running), timeout=CANCEL_GRACE_S)
        for ref, entry in running.items():
            if ref not in ended:
                self._drop(ray, entry[3], replace=True)

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
        """The dense model evaluated once (the setup call), then one call per layer (its row of
        cells) against that metric: `timing_s["evaluations"]` counts each evaluation once."""
        start = time.perf_counter()
        parts: dict[str, SensitivityReport] = {}
        with self._job("sensitivity", sensitivity_label(spec)) as job:
            blobs = self._blobs_for(spec.model, spec.data)
            setup = self._one(job, "sensitivity_setup", {"spec": spec.to_dict()}, blobs)
            layers = setup["layers"]

            def arrived(layer: str, raw: dict[str, Any]) -> None:
                parts[layer] = from_wire("sensitivity", raw)
                if on_progress:
                    on_progress(len(parts) / len(layers), f"{layer} scanned ({len(parts)}/{len(layers)} layers)")

            calls = [(layer, "sensitivity_layer", {"spec": dataclasses.replace(spec, layers=(layer,)).to_dict(),
                                                   "baseline": setup["baseline"]})
                     for layer in layers]
            self._map(job, calls, blobs, arrived)
        first = parts[layers[0]]
        timing = {"prune": float(sum(p.timing_s["prune"] for p in parts.values())),
                  "evaluate": setup["evaluate_s"] + float(sum(p.timing_s["evaluate"] for p in parts.values())),
                  "total": time.perf_counter() - start,
                  "evaluations": 1 + sum(int(p.timing_s["evaluations"]) for p in parts.values())}
        return SensitivityReport(
            spec=spec, baseline_accuracy=setup["baseline"], n_test=first.n_test,
            accuracy=pd.concat([parts[layer].accuracy for layer in layers]),
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
