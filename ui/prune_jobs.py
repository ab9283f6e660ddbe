"""Prunes running in threads of the server process, for the Prune page: the metric cards come
with the evaluated phase, sizes and latency after, and a slider move never waits for either.

Plain threading, no Streamlit: a job's thread only stores what the executor sends; the page's
script thread reads it (Streamlit elements may only be touched from their session's thread).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

# How long the page waits in one run for a job to end before it says "still measuring" and
# stops (a slider move or Refresh looks again); generous: fine-tuning epochs take minutes.
STREAM_WAIT_S = 600.0
POLL_S = 0.1  # a waiting page looks at its job this often; each look lets a newer move interrupt


class PruneJob:
    """One prune in a thread of this process (the work itself runs in the executor's worker).

    `view` (`reports.evaluated_view`) arrives first, then `measured` (the full report, before
    its model file is written into the run store), then `report` (the stored run's, naming that
    file) or `error`; `progress` is the last (fraction, message) the executor reported. Written
    by the job's thread, read by pages: a page draws the report once the job is `ready`.
    """

    def __init__(self, key: str):
        self.key = key
        self.view: Optional[dict] = None
        self.report: Any = None
        self.measured: Any = None
        self.error: Optional[BaseException] = None
        self.progress: tuple[float, str] = (0.0, "starting")
        self.started = time.monotonic()
        self._changed = threading.Condition()

    @property
    def done(self) -> bool:
        return self.report is not None or self.error is not None

    @property
    def ready(self) -> bool:
        """The report can be drawn: measured (its file may still be being written), or the job ended."""
        return self.done or self.measured is not None

    def shown(self) -> Any:
        """The report to draw once `ready`: the stored one if in, else the measured one."""
        return self.report if self.report is not None else self.measured

    def wait(self, timeout: float) -> None:
        """Until the job reports something new or ends, at most `timeout` seconds."""
        with self._changed:
            if not self.done:
                self._changed.wait(timeout)

    def on_measured(self, report: Any) -> None:
        self._set(measured=report)

    def on_progress(self, fraction: float, message: str) -> None:
        self._set(progress=(float(fraction), str(message)))

    def on_evaluated(self, view: dict) -> None:
        self._set(view=dict(view))

    def _set(self, **values: Any) -> None:
        with self._changed:
            for name, value in values.items():
                setattr(self, name, value)
            self._changed.notify_all()


class PruneJobs:
    """The running jobs of this server process by key (the spec's JSON): one per spec, shared
    by sessions; a job leaves the table when it ends (its report is in the report cache by then)."""

    def __init__(self) -> None:
        self._jobs: dict[str, PruneJob] = {}
        self._lock = threading.Lock()

    def running(self, key: str) -> Optional[PruneJob]:
        with self._lock:
            return self._jobs.get(key)

    def start(self, key: str, run: Callable[[PruneJob], Any]) -> PruneJob:
        """The running job for `key`, or a new one: `run(job)` in a daemon thread, its return
        value the job's report and its exception the job's error."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                return job
            job = self._jobs[key] = PruneJob(key)
        threading.Thread(target=self._run, args=(job, run), name="prune-job", daemon=True).start()
        return job

    def _run(self, job: PruneJob, run: Callable[[PruneJob], Any]) -> None:
        try:
            report = run(job)
        except BaseException as exc:  # the page that waits shows it; nobody else would see it
            with self._lock:
                self._jobs.pop(job.key, None)
            job._set(error=exc)
        else:
            with self._lock:
                self._jobs.pop(job.key, None)
            job._set(report=report)
