"""The one progress component every page shows long work in: a bar, or the job's place in the queue.

Pages pass `progress_to(slot)` as a backend call's `on_progress`; the executor's queue messages
(pruning.executors.jobs.queued_message) are drawn as a queue notice, everything else as a bar.
"""
from __future__ import annotations

from pruning.executors.jobs import queued_ahead
from pruning.specs import ProgressFn

QUEUE_ICON = "⏳"


def queue_text(ahead: int) -> str:
    """What a waiting session reads while `ahead` jobs (other sessions' too) run or wait before its own.

    >>> queue_text(3)
    'Queued: 3 jobs ahead of yours. Yours starts when the worker is free.'
    """
    return f"Queued: {ahead} job{'s' if ahead != 1 else ''} ahead of yours. Yours starts when the worker is free."


def progress_to(slot) -> ProgressFn:
    """An `on_progress(fraction, message)` callback drawing into the placeholder `slot`: the queue
    position while the job waits (updated as jobs ahead finish), then a progress bar."""

    def on_progress(fraction: float, message: str) -> None:
        ahead = queued_ahead(message)
        if ahead is not None:
            slot.info(queue_text(ahead), icon=QUEUE_ICON)
        else:
            slot.progress(min(max(fraction, 0.0), 1.0), text=message)

    return on_progress
