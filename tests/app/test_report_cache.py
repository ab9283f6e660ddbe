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


def test_concurrent_sessions_get_consistent_values_then_hits():
    cache, calls = ReportCache(), []

    def compute(k: int):
        def make() -> str:
            calls.append(k)
            return f"report-{k}"
        return make

    def sessions(count: int) -> list[str]:
        results: list[str] = []
        threads = [threading.Thread(target=lambda i=i: results.append(
            cache.get_or_compute("prune", str(i % 4), compute(i % 4)))) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    # racing misses may each compute (computing holds no lock), but all agree on the value
    assert sorted(set(sessions(32))) == ["report-0", "report-1", "report-2", "report-3"]
    assert set(calls) == {0, 1, 2, 3}
    # every spec is now cached: 32 more concurrent sessions compute nothing
    calls.clear()
    assert sorted(sessions(32)) == [f"report-{k}" for k in range(4) for _ in range(8)]
    assert calls == []
