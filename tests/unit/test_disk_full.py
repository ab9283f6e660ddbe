"""A disk that fills during a run (issue 13, part 4): one line naming the disk, nothing half kept.

The unit tests inject ENOSPC; the tmpfs tests mount a real 2 MB tmpfs (root only, as in CI)
and fill it while a prune runs, then free it and prune again.
"""
from __future__ import annotations

import doctest
import errno
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from pruning import disk
from pruning.errors import BadInput, DiskFull
from pruning.executors.errors import decode_error
from pruning.runs import records
from pruning.runs import store as store_module
from pruning.runs.store import Outcome, RunStore

SPEC = {"model": {"name": "cnn"}, "data": {"name": "digits"}, "method": "magnitude"}


def test_doctests():
    for module in (disk, records):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_disk_full_names_the_disk_and_the_space_needed(tmp_path):
    device, point, fstype = disk.mount_of(tmp_path / "not" / "there")
    assert os.path.ismount(point) and str(tmp_path).startswith(point)
    error = disk.disk_full(tmp_path / "x.keras", 24_287, "x.keras")
    assert isinstance(error, BadInput) and "\n" not in str(error)
    assert str(error).startswith(f"the disk at {point} ({fstype} {device}, ")
    assert "writing x.keras failed, it needs at least 24.3 kB; free space there" in str(error)
    assert isinstance(decode_error({"error": "DiskFull", "message": str(error)}, "in the worker"), DiskFull)
    with pytest.raises(DiskFull):
        disk.ensure_free(tmp_path, disk.free_bytes(tmp_path) + 1)
    with pytest.raises(PermissionError), disk.writing(tmp_path):
        raise PermissionError(errno.EACCES, "not a full disk: passed on as it is")


def test_an_artifact_that_finds_no_room_fails_the_run_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs.db")
    model = tmp_path / "pruned.keras"
    model.write_bytes(os.urandom(1500))
    earlier, _ = store.record("prune", SPEC, lambda: 1, lambda _: Outcome(metrics={"accuracy": 0.5},
                                                                          artifact=str(model)))
    kept = Path(store.get(earlier).artifact_path).read_bytes()

    def half_then_full(source, target):
        Path(target).write_bytes(Path(source).read_bytes()[:700])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.shutil, "copyfile", half_then_full)
    with pytest.raises(DiskFull) as caught:
        store.record("prune", SPEC, lambda: 2, lambda _: Outcome(metrics={"accuracy": 0.7}, artifact=str(model)))
    assert "\n" not in str(caught.value) and "it needs at least 1.5 kB" in str(caught.value)
    assert "writing run 2's model.keras failed" in str(caught.value)
    failed = store.get(2)
    assert (failed.status, failed.artifact_path, failed.metrics) == ("failed", None, {})
    assert failed.error.startswith("DiskFull: the disk at ")
    assert list((tmp_path / "runs" / "2").iterdir()) == []  # the half copy is gone
    assert store.get(earlier).status == "completed" and Path(store.get(earlier).artifact_path).read_bytes() == kept

    monkeypatch.undo()  # space freed: the next run completes
    again, _ = store.record("prune", SPEC, lambda: 3, lambda _: Outcome(metrics={"accuracy": 0.7}, artifact=str(model)))
    assert store.get(again).status == "completed"
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_model_save_that_finds_no_room_leaves_no_temp_file(tmp_path):
    import numpy as np

    from pruning.measure.metrics import save_model

    class FullDisk:
        def get_weights(self):
            return [np.zeros((10, 10), np.float32)]

        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull, match="writing m.keras failed, it needs at least 400 B"):
        save_model(FullDisk(), tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []


# -- a real small disk --------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs at tmp_path/disk, unmounted afterwards (root only)."""
    point = tmp_path / "disk"
    point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"this sandbox refuses to mount a tmpfs: {done.stderr.strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def fill(point: Path) -> Path:
    """Write a ballast file until the disk is full; returns it."""
    ballast = point / f"ballast-{uuid.uuid4().hex}"
    with open(ballast, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    for size in (4096, 512, 1):  # the last partial blocks too
        try:
            with open(ballast, "ab") as handle:
                while True:
                    handle.write(b"\0" * size)
                    handle.flush()
        except OSError:
            pass
    return ballast


@pytest.mark.slow
def test_a_disk_that_fills_during_a_prune(small_disk, monkeypatch, capsys, tiny_refs):
    from pruning.cli import main
    from pruning.executors.inline import InlineExecutor
    from pruning.specs import PruneSpec

    monkeypatch.setenv("PRUNESCOPE_HOME", str(small_disk / "home"))
    store = RunStore()  # the app's: one store object for the server's life
    executor = InlineExecutor()
    model, data = tiny_refs
    half = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.5)
    first, _ = store.record_prune(half, lambda: executor.prune(half), save=lambda path: executor.save(half, path))
    kept = Path(store.get(first).artifact_path).read_bytes()
    ballasts: list[Path] = []

    def fill_then_prune():
        ballasts.append(fill(small_disk))  # the run has begun: now the disk fills
        return executor.prune(spec)

    spec = PruneSpec(model=model, data=data, method="magnitude", target_sparsity=0.8)
    with pytest.raises(DiskFull) as caught:
        # the prune measures in memory; the model file written for the run meets the full disk
        store.record_prune(spec, fill_then_prune, save=lambda path: executor.save(spec, path))
    line = str(caught.value)
    assert "\n" not in line and line.startswith(f"the disk at {small_disk} (tmpfs tmpfs, ")
    assert "it needs at least" in line

    # the CLI on the full disk: exit 2, one line naming the disk, no traceback
    code = main(["prune", "--model", model.path, "--dataset", data.path, "--method", "random",
                 "--sparsity", "0.5", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: the disk at {small_disk} (tmpfs tmpfs, ")

    for ballast in ballasts:
        ballast.unlink()  # space freed: the same store and executor serve again
    runs = {run.id: run for run in store.list()}
    assert runs[first].status == "completed" and Path(runs[first].artifact_path).read_bytes() == kept
    failed = [run for run in runs.values() if run.id != first]
    assert [(run.status, run.artifact_path) for run in failed] == [("failed", None)]
    assert failed[0].error == f"DiskFull: {line}"
    assert not (small_disk / "home" / "runs" / str(failed[0].id) / store_module.MODEL_FILE).exists()
    assert [p.name for p in (small_disk / "home").rglob("*") if p.name.startswith(".") or "tmp" in p.name] == []
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again, report = store.record_prune(spec, lambda: executor.prune(spec), save=lambda path: executor.save(spec, path))
    assert store.get(again).status == "completed" and report.target_sparsity == 0.8
