"""An upload stored while a rerun stores it again (the dataset uploaded while a large model is
still being checked: Streamlit starts the new run before the old one ends)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from ui import sidebar


class Uploaded:
    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_two_runs_storing_the_same_upload_at_once_both_succeed(tmp_path, monkeypatch):
    monkeypatch.setattr(sidebar, "session_upload_dir", lambda: tmp_path)
    data = bytes(range(256)) * 64
    checked: list[bytes] = []

    def slow_check(path: Path, name: str) -> None:  # reads the file at the end, as a model check does
        time.sleep(0.4)
        checked.append(path.read_bytes())

    results: list[Path] = []
    errors: list[BaseException] = []

    def store() -> None:
        try:
            results.append(sidebar.save_upload(Uploaded("model.keras", data), (".keras",), check=slow_check))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    first = threading.Thread(target=store)
    first.start()
    time.sleep(0.1)  # the second run starts while the first still checks
    second = threading.Thread(target=store)
    second.start()
    first.join(10)
    second.join(10)
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert results[0].read_bytes() == data and checked == [data, data]
    assert sorted(p.name for p in tmp_path.iterdir()) == [results[0].name]  # no temp file left
