"""The Ray executor's dispatch (`RayExecutor._map`) against a scripted stand-in for Ray: fast, no cluster.

Actors here answer, die under a call, stay away, or never finish, as `ray.cluster_utils` nodes do in
test_ray_cluster.py (slow); these pin the rules: a lost point is sent again, each result once, a
point that kills every actor fails, a pool that never answers fails, cancel kills what runs.
"""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Optional

import pytest

from pruning.executors import ray_actors
from pruning.executors.errors import Cancelled, WorkerDied
from pruning.executors.ray_actors import MAX_POINT_TRIES, RayExecutor


class RayActorError(Exception):
    pass


class ActorDiedError(RayActorError):
    pass


class ActorUnavailableError(RayActorError):
    pass


class Ref:
    def __init__(self, value: Any = None, error: Optional[Exception] = None, after: float = 0.0):
        self.value, self.error, self.at, self.cancelled = value, error, time.monotonic() + after, False

    def ready(self) -> bool:
        return self.at <= time.monotonic()


class FakeRay:
    """The few calls `_map` makes: wait, get, cancel, kill, and the exception classes."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        RayActorError, ActorDiedError, ActorUnavailableError = RayActorError, ActorDiedError, ActorUnavailableError

    def __init__(self) -> None:
        self.killed: list[Actor] = []

    def wait(self, refs, num_returns=1, timeout=None):
        end = time.monotonic() + (timeout or 0)
        while True:
            ready = [r for r in refs if r.ready()]
            if len(ready) >= num_returns or time.monotonic() >= end:
                return ready[:max(num_returns, len(ready))], [r for r in refs if r not in ready]
            time.sleep(0.005)

    def get(self, ref: Ref):
        if ref.error is not None:
            raise ref.error
        return ref.value

    def cancel(self, ref: Ref) -> None:
        ref.cancelled = True

    def kill(self, actor: "Actor", no_restart: bool = True) -> None:
        self.killed.append(actor)


class Method:
    def __init__(self, run):
        self.remote = run


class Actor:
    """`calls`: how each call ends in turn ("ok", "dies", "hangs"); later calls end "ok".
    `away`: whether about() says the actor is unavailable (its node lost)."""

    def __init__(self, name: str, calls: tuple[str, ...] = (), away: bool = False):
        self.name, self.script, self.away, self.ran = name, list(calls), away, []
        self.call, self.about = Method(self._call), Method(self._about)

    def _about(self) -> Ref:
        return Ref(error=ActorUnavailableError("away")) if self.away else Ref({"node": self.name, "pid": 1, "ran": {}})

    def _call(self, op: str, args: dict, *blobs) -> Ref:
        how = self.script.pop(0) if self.script else "ok"
        self.ran.append((args["key"], how))
        if how == "dies":
            self.away = True  # its node is gone: it answers nothing from now on
            return Ref(error=ActorUnavailableError("socket closed"), after=0.02)
        if how == "hangs":
            return Ref({"value": args["key"]}, after=3600)
        return Ref({"value": args["key"]}, after=0.02)


def make(*actors: Actor) -> tuple[RayExecutor, FakeRay]:
    fake = FakeRay()
    executor = RayExecutor()
    executor._ray = lambda: fake  # type: ignore[method-assign]
    executor._actors = list(actors)
    executor._slot_class = SimpleNamespace(remote=lambda capacity: Actor("replacement"))
    return executor, fake


def run(executor: RayExecutor, keys) -> list:
    got: list = []
    with executor._job("sweep", "sweep of tiny") as job:
        executor._map(job, [(k, "sweep_point", {"key": k}) for k in keys], (None, None),
                      lambda key, value: got.append((key, value)))
    return got


def test_a_point_whose_actor_dies_runs_on_another_once():
    lost, live = Actor("lost", calls=("dies",)), Actor("live")
    executor, _ = make(lost, live)
    got = run(executor, range(6))
    assert sorted(got) == [(k, k) for k in range(6)]  # every result exactly once
    assert executor.retried == 1
    (died,) = [k for k, how in lost.ran if how == "dies"]
    assert (died, "ok") in live.ran and len(lost.ran) == 1  # sent again to the live actor, never back
    assert id(lost) not in executor._proven and lost in executor._actors  # asked again on the next job


def test_a_point_that_kills_every_actor_it_meets_fails_after_its_tries():
    actors = [Actor(f"a{i}", calls=("dies",)) for i in range(MAX_POINT_TRIES + 1)]
    for actor in actors:
        actor.away = False
    executor, _ = make(*actors)
    with pytest.raises(WorkerDied, match=f"the same call of sweep of tiny {MAX_POINT_TRIES} times"):
        run(executor, [0])
    assert sum(len(a.ran) for a in actors) == MAX_POINT_TRIES


def test_no_actor_answering_fails_the_job_after_recover_s(monkeypatch):
    monkeypatch.setattr(ray_actors, "RECOVER_S", 0.3)
    executor, _ = make(Actor("a", away=True), Actor("b", away=True))
    started = time.monotonic()
    with pytest.raises(WorkerDied, match="no Ray actor answered"):
        run(executor, [0, 1])
    assert 0.3 <= time.monotonic() - started < 3.0


def test_cancel_kills_and_replaces_the_actor_running_a_point_only():
    stuck, free = Actor("stuck", calls=("hangs",)), Actor("free")
    executor, fake = make(stuck, free)
    got: list = []

    def on_result(key, value) -> None:
        got.append(key)
        executor.cancel()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        with executor._job("sweep", "sweep of tiny") as job:
            executor._map(job, [(0, "sweep_point", {"key": 0}), (1, "sweep_point", {"key": 1})], (None, None),
                          on_result)
    assert got == [1] and time.monotonic() - started < 2.0
    assert fake.killed == [stuck]  # the actor running point 0; the free one kept
    assert [a.name for a in executor._actors] == ["replacement", "free"]
