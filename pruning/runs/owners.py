"""Who owns a `running` row of the run store: a token naming the process, and whether it lives.

A row whose owner is gone (killed, crashed, a zombie not yet reaped) can only be interrupted.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path


def _process_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (Linux); [] where unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks (Linux), so a recycled pid is not mistaken for it."""
    fields = _process_stat(pid)
    return fields[19] if fields else ""


def owner_token() -> str:
    """This process as a row's owner: host, pid and start time."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def owner_alive(token: str) -> bool:
    """Whether the process that marked a row `running` still runs (unknown hosts count as alive)."""
    try:
        host, pid_text, start = token.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False  # rows from before owners were recorded
    if host != socket.gethostname():
        return True  # another machine sharing the file: we cannot tell, so leave its rows alone
    if pid == os.getpid():
        return start == _process_start(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    fields = _process_stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent: it will write nothing more
    return not start or not fields or fields[19] == start
