"""The shared progress component: a waiting job shows its place in the queue, a running one a bar."""
from __future__ import annotations

import doctest

from pruning.executors.jobs import queued_message
from ui import progress


class Slot:
    """A placeholder that records what was drawn into it."""

    def __init__(self) -> None:
        self.drawn: list[tuple] = []

    def info(self, text: str, icon: str = "") -> None:
        self.drawn.append(("info", text))

    def progress(self, value: float, text: str = "") -> None:
        self.drawn.append(("progress", value, text))


def test_queue_messages_become_a_queue_notice_and_the_rest_a_bar():
    slot = Slot()
    on_progress = progress.progress_to(slot)
    on_progress(0.0, queued_message(3))
    on_progress(0.0, queued_message(1))
    on_progress(0.5, "pruning hidden")
    on_progress(1.5, "done")  # clamped: st.progress refuses values above 1
    assert slot.drawn == [
        ("info", "Queued: 3 jobs ahead of yours. Yours starts when the worker is free."),
        ("info", "Queued: 1 job ahead of yours. Yours starts when the worker is free."),
        ("progress", 0.5, "pruning hidden"),
        ("progress", 1.0, "done"),
    ]


def test_docstring_examples_run():
    result = doctest.testmod(progress)
    assert result.attempted > 0 and result.failed == 0
