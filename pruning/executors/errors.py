"""Errors shared by the executors, and how an error crosses a process boundary as plain data.

The worker process and Ray actors encode a failure with `encode_error`; the caller's side
turns it back into an exception with `decode_error`.
"""
from __future__ import annotations

import traceback
from typing import Any, Mapping

from ..errors import BadInput, DiskFull


class JobFailed(RuntimeError):
    """A job did not finish for a reason outside the job itself; the run store marks it interrupted."""

    run_status = "interrupted"


class Cancelled(JobFailed):
    """The job was cancelled before it finished."""


class WorkerDied(JobFailed):
    """The process running the job (the worker, a Ray actor) exited while running it."""


class WorkerError(RuntimeError):
    """An unexpected error inside the worker (a bug, not bad input); carries the worker's traceback."""

    def __init__(self, message: str, worker_traceback: str = ""):
        super().__init__(message)
        self.worker_traceback = worker_traceback


# Errors that cross the boundary as themselves (same type, same message); others arrive as
# WorkerError naming the original type.
ERRORS: dict[str, type[Exception]] = {
    "BadInput": BadInput, "DiskFull": DiskFull, "ValueError": ValueError, "TypeError": TypeError,
    "RuntimeError": RuntimeError, "FileNotFoundError": FileNotFoundError,
}


def encode_error(exc: BaseException) -> dict[str, str]:
    """`exc` as JSON-ready data; call it inside the `except` block, where the traceback is current."""
    return {"error": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}


def decode_error(raw: Mapping[str, Any], where: str) -> Exception:
    """The exception to raise for an encoded error; `where` says where it happened, for a WorkerError.

    >>> decode_error({"error": "BadInput", "message": "no such layer"}, "in the worker")
    BadInput('no such layer')
    >>> str(decode_error({"error": "KeyError", "message": "'x'"}, "in the worker while running a prune"))
    "KeyError in the worker while running a prune: 'x'"
    """
    error = ERRORS.get(raw["error"])
    if error is not None:
        return error(raw["message"])
    return WorkerError(f"{raw['error']} {where}: {raw['message']}", raw.get("traceback", ""))
