"""The worker-process executor: a spawned process owns TensorFlow, the GPU and every model load.

Callers queue jobs (one at a time per worker); progress and sweep points stream back as JSON
over a pipe while the job runs; a job can be cancelled; a dead worker is replaced.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import multiprocessing.spawn
import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

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
from .errors import Cancelled, WorkerDied, WorkerError, decode_error, encode_error
from .jobs import Job, label, prune_label, queued_message, sensitivity_label, supersede, sweep_label
from .operations import OPERATIONS, convert_args, run_operation
from .wire import dumps, from_wire

MAX_JOBS = 200  # recycle after this many jobs: TensorFlow's caches only grow
MAX_RSS_BYTES = 8 << 30  # ... or once its resident memory passes this
START_TIMEOUT_S = 180.0  # importing TensorFlow on a busy 2-core machine can take a while
POLL_S = 0.2  # how often a waiting caller checks for cancellation and a dead worker
REPORT_KINDS = ("baseline", "prune", "sweep", "sensitivity")
DRAIN_KINDS = ("baseline", "prune", "save", "convert", "describe")  # short jobs: finished unseen when their caller leaves

WORKER_NAME = "prunescope-worker"
_spawn_lock = threading.Lock()
_preparation_data = None  # multiprocessing's own, kept when the patch below is applied


def _preparation_without_main(name: str) -> dict[str, Any]:
    """What a spawned child sets up first, minus re-running the parent's `__main__` for our worker.

    Streamlit (and AppTest) install each page script as `sys.modules["__main__"]`, so a plain
    spawn would run the page again inside the worker. The worker needs only `pruning.executors.worker.serve`.
    """
    data = _preparation_data(name)
    if name == WORKER_NAME:
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


def patch_spawn() -> None:
    """Make spawned processes named WORKER_NAME skip the parent's `__main__`; idempotent.

    Applied when a worker is started, not on import, so importing this module changes nothing
    in `multiprocessing` for a process that never makes a worker.
    """
    global _preparation_data
    with _spawn_lock:
        if multiprocessing.spawn.get_preparation_data is not _preparation_without_main:
            _preparation_data = multiprocessing.spawn.get_preparation_data
            multiprocessing.spawn.get_preparation_data = _preparation_without_main


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (Linux); 0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _describe_exit(code: Optional[int]) -> str:
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit code {code}"


class WorkerExecutor:
    """The Executor protocol, run in a spawned worker process; safe to share across threads.

    Calls block like InlineExecutor's, and callbacks run in the calling thread (Streamlit
    elements may only be touched from their session's thread).
    """

    name = "worker"

    def __init__(self, capacity: int = 2, max_jobs: int = MAX_JOBS, max_rss_bytes: int = MAX_RSS_BYTES):
        self.capacity = capacity
        self.max_jobs = max_jobs
        self.max_rss_bytes = max_rss_bytes
        self._ctx = multiprocessing.get_context("spawn")
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._running: Optional[Job] = None
        self._ids = itertools.count(1)
        self._process = None
        self._conn = None
        self._jobs_on_worker = 0
        self.starts = 0  # workers started so far (recycled or replaced ones included)

    # -- the queue -------------------------------------------------------------------------
    def pending(self) -> list[Job]:
        """The running job (if any) first, then the queued ones in order."""
        with self._cond:
            return ([self._running] if self._running else []) + list(self._queue)

    def queue_position(self, job: Job) -> int:
        """How many jobs are ahead of `job` (0: it runs now or is next)."""
        with self._cond:
            if job is self._running or job not in self._queue:
                return 0
            return self._queue.index(job) + (1 if self._running else 0)

    def cancel(self, job_id: Optional[int] = None) -> bool:
        """Cancel job `job_id`, or every pending job when None (a running one stops its worker);
        False if there was none to cancel (unknown or done)."""
        with self._cond:
            jobs = [j for j in self.pending() if job_id is None or j.id == job_id]
            for job in jobs:
                job.cancel_requested = True
                if job is self._running:
                    self._kill()  # under the lock: never the worker of the job that runs next
            self._cond.notify_all()
        return bool(jobs)  # the caller's read loop sees the pipe close and raises Cancelled

    @property
    def worker_pid(self) -> Optional[int]:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def _wait_turn(self, job: Job, on_progress: Optional[ProgressFn]) -> None:
        with self._cond:
            supersede(self._queue, job)  # their waits raise Cancelled at once
            self._queue.append(job)
            self._cond.notify_all()
            shown = None
            try:
                while self._running is not None or self._queue[0] is not job:
                    if job.cancel_requested:
                        raise Cancelled(job.waiting_error())
                    ahead = self._queue.index(job) + (1 if self._running else 0)
                    if on_progress and ahead != shown:
                        shown = ahead
                        on_progress(0.0, queued_message(ahead))
                    self._cond.wait(POLL_S)
            except BaseException:
                self._queue.remove(job)
                self._cond.notify_all()
                raise
            self._queue.pop(0)
            job.state = "running"
            self._running = job

    def _release(self, job: Job) -> None:
        with self._cond:
            if self._running is job:
                self._running = None
            self._cond.notify_all()

    # -- the worker process ------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._reap()
        patch_spawn()
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=serve, args=(child, self.capacity), name=WORKER_NAME,
                                    daemon=True)
        process.start()
        child.close()  # only the worker holds its end: its death then closes the pipe here
        self._process, self._conn, self._jobs_on_worker = process, parent, 0
        self.starts += 1
        if not parent.poll(START_TIMEOUT_S):
            self._kill()
            raise WorkerError(f"the worker process did not start within {START_TIMEOUT_S:.0f} s")
        try:
            ready = json.loads(parent.recv_bytes())
        except (EOFError, OSError):
            code = self._reap()
            raise WorkerError(f"the worker process exited while starting ({_describe_exit(code)})") from None
        if ready.get("type") != "ready":
            raise WorkerError(f"the worker process sent {ready!r} instead of ready")

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.is_alive():
            process.kill()

    def _reap(self) -> Optional[int]:
        """Forget the current worker (it has exited or is being replaced); its exit code."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        code = None
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
            code = process.exitcode
            process.close()
        if conn is not None:
            conn.close()
        return code

    def stop(self) -> None:
        """Stop the worker (it finishes nothing further); the next job starts a fresh one."""
        with self._cond:
            while self._running is not None:
                self._cond.wait()
            self._stop_worker()

    def _stop_worker(self) -> None:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            try:
                self._conn.send_bytes(dumps({"op": "stop"}).encode())
            except OSError:
                pass
        self._reap()

    def _maybe_recycle(self) -> None:
        process = self._process
        if process is None:
            return
        if self._jobs_on_worker >= self.max_jobs or rss_bytes(process.pid) > self.max_rss_bytes:
            self._stop_worker()

    # -- running one job -----------------------------------------------------------------------
    def _call(self, kind: str, label: str, args: dict[str, Any], on_progress: Optional[ProgressFn] = None,
              on_point: Optional[PointFn] = None, supersede_key: Optional[str] = None) -> Any:
        job = Job(id=next(self._ids), kind=kind, label=label, supersede_key=supersede_key)
        self._wait_turn(job, on_progress)
        handed_off = False
        try:
            self._send(job, args)
            outcome, value = self._read(job, on_progress, on_point)
            self._maybe_recycle()  # while this job still holds the worker
        except BaseException:
            job.state = "cancelled" if job.cancel_requested else "failed"
            if kind in DRAIN_KINDS and self.worker_pid is not None and not job.cancel_requested:
                # the caller gave up on a short job (a Streamlit rerun raises from its progress
                # callback): let it finish unseen rather than pay a TensorFlow restart
                threading.Thread(target=self._drain, args=(job,), daemon=True).start()
                handed_off = True
            else:
                self._kill()
                self._reap()
            raise
        finally:
            if not handed_off:
                self._release(job)
        if outcome == "error":
            job.state = "failed"
            raise value
        job.state = "done"
        return from_wire(kind, value) if kind in REPORT_KINDS else value

    def _send(self, job: Job, args: dict[str, Any]) -> None:
        request = dumps({"op": job.kind, "job": job.id, "args": args}).encode()
        for attempt in (1, 2):
            self._ensure_started()
            try:
                self._conn.send_bytes(request)
                break
            except OSError:  # it died while idle: the job has not begun, so a fresh worker takes it
                self._reap()
                if attempt == 2:
                    raise
        self._jobs_on_worker += 1

    def _read(self, job: Job, on_progress: Optional[ProgressFn] = None,
              on_point: Optional[PointFn] = None) -> tuple[str, Any]:
        """Messages until the job's end: ("result", wire value) or ("error", the exception to raise)."""
        conn = self._conn
        while True:
            if not conn.poll(POLL_S):  # EOF counts as readable, so a dead worker ends this wait
                if job.cancel_requested:
                    self._kill()
                continue
            try:
                message = json.loads(conn.recv_bytes())
            except (EOFError, OSError):
                code = self._reap()
                if job.cancel_requested:
                    raise Cancelled(f"{job.label} was cancelled; the worker was stopped and will restart") from None
                raise WorkerDied(f"the worker process died ({_describe_exit(code)}) while running {job.label}; "
                                 "the job was not finished — run it again") from None
            kind = message["type"]
            if kind == "progress" and on_progress:
                on_progress(message["fraction"], message["message"])
            elif kind == "point" and on_point:
                on_point(message["row"])
            elif kind == "result":
                return "result", message["value"]
            elif kind == "error":
                return "error", decode_error(message, f"in the worker while running {job.label}")

    def _drain(self, job: Job) -> None:
        """Read an abandoned job's messages to its end, then free the worker for the next job."""
        try:
            self._read(job)
            self._maybe_recycle()
        except BaseException:
            pass  # nobody waits for this job: a dead worker is simply replaced by the next one
        finally:
            self._release(job)

    # -- the Executor protocol -------------------------------------------------------------------
    def baseline(self, model: ModelRef, data: DataRef, on_progress: Optional[ProgressFn] = None) -> BaselineReport:
        return self._call("baseline", label("baseline", model, data),
                          {"model": vars(model), "data": vars(data)}, on_progress)

    def prune(self, spec: PruneSpec, on_progress: Optional[ProgressFn] = None,
              on_evaluated: Optional[Callable[[dict], None]] = None,
              supersede_key: Optional[str] = None) -> PruneReport:
        return self._call("prune", prune_label(spec), {"spec": spec.to_dict()}, on_progress,
                          on_point=on_evaluated, supersede_key=supersede_key)

    def save(self, spec: PruneSpec, path: str, on_progress: Optional[ProgressFn] = None) -> str:
        return self._call("save", label("save", spec.model, spec.data, f"{spec.method} at {spec.target_sparsity:.0%}"),
                          {"spec": spec.to_dict(), "path": str(path)}, on_progress)

    def convert(self, spec: PruneSpec, source: str, path: str, out_format: Optional[str] = None) -> str:
        return self._call("convert", label("convert", spec.model, spec.data, spec.method),
                          convert_args(spec, source, path, out_format), None)

    def sweep(self, spec: SweepSpec, on_point: Optional[PointFn] = None, on_progress: Optional[ProgressFn] = None,
              resume: Iterable[Mapping[str, Any]] = ()) -> SweepReport:
        return self._call("sweep", sweep_label(spec), {"spec": spec.to_dict(), "resume": [dict(r) for r in resume]},
                          on_progress, on_point)

    def sensitivity(self, spec: SensitivitySpec, on_progress: Optional[ProgressFn] = None) -> SensitivityReport:
        return self._call("sensitivity", sensitivity_label(spec), {"spec": spec.to_dict()}, on_progress)

    def deploy(self, spec: PruneSpec, artifact: str, options: DeploySpec,
               on_progress: Optional[ProgressFn] = None) -> dict[str, Any]:
        return self._call("deploy", f"deploy {prune_label(spec)}",
                          {"spec": spec.to_dict(), "artifact": str(artifact), "options": options.to_dict()}, on_progress)

    def describe(self) -> dict[str, Any]:
        """The worker's device and zoo model names (asked of it: this process has no TensorFlow)."""
        return self._call("describe", "environment query", {})


# -- inside the worker process ---------------------------------------------------------------------
PARENT_POLL_S = 0.5  # how often a worker checks that the process it serves is still alive


def watch_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> threading.Thread:
    """A daemon thread that ends this process once `parent_pid` is gone (we were reparented).

    A closed pipe stops an idle worker; one busy with a sweep would run on for minutes after
    a kill -9 of the server, holding the CPU and the GPU, so it also watches its parent.
    """
    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(poll_s)
        os._exit(0)  # nobody is left to read the result: no cleanup worth waiting for

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def serve(conn, capacity: int = 2) -> None:
    """The worker's main loop: one JSON request in, progress/point messages and one result out."""
    # The parent may be interrupted with Ctrl-C; the worker stops when its pipe closes instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(os.getppid())
    from ..run.engine import Engine  # TensorFlow is imported here, in the worker only

    engine = Engine(capacity)

    def emit(message: dict) -> None:
        conn.send_bytes(dumps(message).encode())

    emit({"type": "ready", "pid": os.getpid()})
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the parent went away
        if request.get("op") == "stop":
            return
        try:
            value = run_operation(OPERATIONS, engine, request["op"], request.get("args", {}), emit)
            emit({"type": "result", "value": value})
        except Exception as exc:  # every failure goes back to the caller, the worker serves on
            emit({"type": "error", **encode_error(exc)})
