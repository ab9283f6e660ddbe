"""Errors the user can fix, kept apart from bugs.

`BadInput` carries a one-line message that says what was wrong and what to do; the CLI
turns it into exit code 2, the app into an error box, never a traceback.
"""
from __future__ import annotations


class BadInput(ValueError):
    """Input the user gave (model, dataset, spec) cannot be used as it is."""


class DiskFull(BadInput):
    """A write under $PRUNESCOPE_HOME (or an output path) ran out of space; the message names
    the disk and the space the write needed (pruning.disk builds it). Nothing half-written is kept."""
