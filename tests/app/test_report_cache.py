"""The UI's report cache: a spec seen before is served without running the backend again."""
from __future__ import annotations

import threading

from ui.backend import ReportCache


def test_second_call_is_served_from_cache():
    cache, calls = ReportCache(capacity=8), []
    compute = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert cache.get_or_compute("prune", '{"s": 0.5}', compute) == 1
    assert cache.get_or_compute("prune", '{"s": 0.9}', compute) == 2
    assert cache.get_or_compute("prune", '{"s": 0.5}', compute) == 1
    assert cache.get_or_compute("sweep", '{"s": 0.5}', compute) == 3  # kinds do not collide
    assert len(calls) == 3


def test_least_recently_used_is_dropped():
    cache = ReportCache(capacity=2)
    cache.get_or_compute("k", "a", lambda: "A")
    cache.get_or_compute("k", "b", lambda: "B")
    cache.get_or_compute("k", "a", lambda: "A2")  # touch a: b is now the oldest
    cache.get_or_compute("k", "c", lambda: "C")
    assert cache.get_or_compute("k", "a", lambda: "A3") == "A"
    assert cache.get_or_compute("k", "b", lambda: "B2") == "B2"


def test_concurrent_sessions_get_consistent_values():
    cache, results = ReportCache(), []

    def session(i: int) -> None:
        results.append(cache.get_or_compute("prune", str(i % 4), lambda: f"report-{i % 4}"))

    threads = [threading.Thread(target=session, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(results)) == ["report-0", "report-1", "report-2", "report-3"]
