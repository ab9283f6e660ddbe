"""Where the e2e tests get Chromium from, on machines this one is not: no browser, no network,
no root. The machine is faked (shutil.which, subprocess.run, euid, /etc/debian_version).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import chromium
import pytest
from chromium import (
    APT_INSTALL,
    APT_UPDATE,
    PLAYWRIGHT_INSTALL,
    ChromiumMissing,
    provide_chromium,
)

PLAYWRIGHT_PATH = "/home/u/.cache/ms-playwright/chromium-1255/chrome-linux/chrome"
NONINTERACTIVE = ("env", "DEBIAN_FRONTEND=noninteractive")


class FakeMachine:
    """What is installed, what the network and sudo allow; records every command run."""

    def __init__(self, monkeypatch, tmp_path: Path, *, debian: bool, root: bool, sudo: str = "",
                 network: bool = False, apt_mirror: bool = True):
        """`sudo`: "" (not installed), "password" (asks for one) or "passwordless"."""
        self.playwright_installed = False
        self.system_installed = False
        self.network, self.sudo, self.apt_mirror = network, sudo, apt_mirror
        self.commands: list[tuple[str, ...]] = []
        marker = tmp_path / "debian_version"
        if debian:
            marker.write_text("12.11\n")
        monkeypatch.setattr(chromium, "DEBIAN_MARKER", marker)
        monkeypatch.setattr(chromium.os, "geteuid", lambda: 0 if root else 1000)
        monkeypatch.setattr(chromium.shutil, "which", self.which)
        monkeypatch.setattr(chromium.subprocess, "run", self.run)
        monkeypatch.setattr(chromium, "playwright_chromium",
                            lambda: PLAYWRIGHT_PATH if self.playwright_installed else None)

    def which(self, name: str):
        present = {"apt-get": True, "sudo": bool(self.sudo), "chromium": self.system_installed}
        return f"/usr/bin/{name}" if present.get(name) else None

    def run(self, command, **kwargs) -> subprocess.CompletedProcess:
        assert kwargs["timeout"] > 0  # every attempt is bounded
        command = tuple(command)
        self.commands.append(command)
        if command == PLAYWRIGHT_INSTALL:
            self.playwright_installed = self.network
            ok = self.network
        elif command == ("sudo", "-n", "true"):
            ok = self.sudo == "passwordless"
        elif command[-len(APT_UPDATE):] == APT_UPDATE:
            ok = self.apt_mirror
        elif command[-len(APT_INSTALL):] == APT_INSTALL:
            self.system_installed = ok = self.apt_mirror
        else:
            raise AssertionError(f"unexpected command {command}")
        return subprocess.CompletedProcess(command, 0 if ok else 1)


def test_playwrights_own_chromium_comes_first_and_installs_nothing(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=True, root=True)
    machine.playwright_installed = machine.system_installed = True
    assert provide_chromium() == PLAYWRIGHT_PATH
    assert machine.commands == []


def test_a_chromium_on_path_is_used_as_it_is(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=True, root=True)
    machine.system_installed = True
    assert provide_chromium() == "/usr/bin/chromium"
    assert machine.commands == []


def test_playwright_downloads_where_the_network_allows(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=False, root=False, network=True)
    assert provide_chromium() == PLAYWRIGHT_PATH
    assert machine.commands == [PLAYWRIGHT_INSTALL]


def test_debian_root_falls_through_a_failed_download_to_apt(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=True, root=True)
    assert provide_chromium() == "/usr/bin/chromium"
    assert machine.commands == [PLAYWRIGHT_INSTALL, NONINTERACTIVE + APT_UPDATE, NONINTERACTIVE + APT_INSTALL]


def test_debian_with_passwordless_sudo_installs_through_sudo(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=True, root=False, sudo="passwordless")
    assert provide_chromium() == "/usr/bin/chromium"
    sudo = ("sudo", "-n") + NONINTERACTIVE
    assert machine.commands == [PLAYWRIGHT_INSTALL, ("sudo", "-n", "true"), sudo + APT_UPDATE, sudo + APT_INSTALL]


def test_debian_without_rights_names_the_apt_command(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=True, root=False, sudo="password")
    with pytest.raises(ChromiumMissing) as missing:
        provide_chromium()
    assert str(missing.value) == ("Chromium is missing and could not be installed here (Playwright's download "
                                  "failed): run `sudo apt-get install -y chromium`, then pytest again")
    assert machine.commands == [PLAYWRIGHT_INSTALL, ("sudo", "-n", "true")]


def test_debian_root_without_a_mirror_names_apt_without_sudo(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=True, root=True, apt_mirror=False)
    with pytest.raises(ChromiumMissing, match="run `apt-get install -y chromium`, then pytest again$"):
        provide_chromium()
    assert machine.commands == [PLAYWRIGHT_INSTALL, NONINTERACTIVE + APT_UPDATE]


def test_elsewhere_names_the_playwright_command(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=False, root=True)
    with pytest.raises(ChromiumMissing) as missing:
        provide_chromium()
    assert str(missing.value) == ("Chromium is missing and could not be installed here (Playwright's download "
                                  "failed): run `python -m playwright install chromium`, then pytest again")
    assert "\n" not in str(missing.value)
    assert machine.commands == [PLAYWRIGHT_INSTALL]


def test_a_command_that_cannot_start_or_hangs_counts_as_failed(monkeypatch):
    def hangs(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    assert not chromium.succeeds(("no-such-program-here",))
    monkeypatch.setattr(chromium.subprocess, "run", hangs)
    assert not chromium.succeeds(("sleep", "1000"), timeout=1)


def test_debian_without_sudo_names_the_sudo_command(monkeypatch, tmp_path):
    machine = FakeMachine(monkeypatch, tmp_path, debian=True, root=False, sudo="")
    with pytest.raises(ChromiumMissing, match="run `sudo apt-get install -y chromium`"):
        provide_chromium()
    assert machine.commands == [PLAYWRIGHT_INSTALL]  # no sudo to ask


def test_a_missing_browser_fails_the_test_rather_than_skipping_it(monkeypatch, tmp_path):
    FakeMachine(monkeypatch, tmp_path, debian=False, root=False)
    with pytest.raises(pytest.fail.Exception) as failed:
        chromium.chromium_or_fail()
    assert str(failed.value) == ("Chromium is missing and could not be installed here (Playwright's download "
                                 "failed): run `python -m playwright install chromium`, then pytest again")
