"""Chromium for the end-to-end tests: one already here, one installed on the spot, or one line.

`pip install -r requirements-dev.txt && pytest` must work on a fresh machine without a browser.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

PLAYWRIGHT_INSTALL = (sys.executable, "-m", "playwright", "install", "chromium")
APT_UPDATE = ("apt-get", "update", "-qq")
APT_INSTALL = ("apt-get", "install", "-y", "-qq", "chromium")
DEBIAN_MARKER = Path("/etc/debian_version")
SYSTEM_NAMES = ("chromium", "chromium-browser")
LAUNCH_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
# Playwright's download fails within seconds when there is no network; a real one takes minutes.
INSTALL_TIMEOUT_S = 900


class ChromiumMissing(RuntimeError):
    """No Chromium here and none could be installed; the message names the command to run."""


def playwright_chromium() -> Optional[str]:
    """The Chromium that Playwright manages, where `playwright install chromium` has run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        path = pw.chromium.executable_path
    return path if Path(path).is_file() else None


def system_chromium() -> Optional[str]:
    """A Chromium on PATH (Debian's package installs /usr/bin/chromium)."""
    for name in SYSTEM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def succeeds(command: Sequence[str], timeout: float = INSTALL_TIMEOUT_S) -> bool:
    """True when `command` exits 0 within `timeout`; its output is not shown."""
    try:
        done = subprocess.run(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def apt_prefix() -> Optional[tuple[str, ...]]:
    """What runs apt-get as root here: nothing more for root, `sudo -n` where sudo needs no
    password; None off Debian or where this user may not install packages."""
    if not DEBIAN_MARKER.is_file() or shutil.which("apt-get") is None:
        return None
    noninteractive = ("env", "DEBIAN_FRONTEND=noninteractive")
    if os.geteuid() == 0:
        return noninteractive
    if shutil.which("sudo") and succeeds(("sudo", "-n", "true"), timeout=30):
        return ("sudo", "-n") + noninteractive
    return None


def provide_chromium() -> str:
    """The path of a Chromium to drive, installing one where this machine allows.

    Tried in order: Playwright's own Chromium, a Chromium on PATH, `python -m playwright
    install chromium` (needs the network), Debian's `chromium` package (as root or through
    passwordless sudo).

    Raises:
        ChromiumMissing: none of these worked; the one-line message names the command to run.
    """
    found = playwright_chromium() or system_chromium()
    if found:
        return found
    if succeeds(PLAYWRIGHT_INSTALL):
        found = playwright_chromium()
        if found:
            return found
    prefix = apt_prefix()
    if prefix is not None and succeeds(prefix + APT_UPDATE) and succeeds(prefix + APT_INSTALL):
        found = system_chromium()
        if found:
            return found
    if DEBIAN_MARKER.is_file():
        command = "sudo apt-get install -y chromium" if prefix is None else "apt-get install -y chromium"
    else:
        command = "python -m playwright install chromium"
    raise ChromiumMissing(f"Chromium is missing and could not be installed here "
                          f"(Playwright's download failed): run `{command}`, then pytest again")


def chromium_or_fail() -> str:
    """`provide_chromium()`, or the test fails with its one line: a skip would hide it."""
    import pytest

    try:
        return provide_chromium()
    except ChromiumMissing as missing:
        pytest.fail(str(missing), pytrace=False)
